//! The chunked decoder never panics, and what it decodes (body, end, error) does not
//! depend on where reads split the input.
#![no_main]

use aiperf_runtime::http::{ChunkedDecoder, ChunkedError};
use libfuzzer_sys::fuzz_target;

mod split;

/// Body, done, bytes consumed, error.
fn decode(reads: &[(u64, &[u8])]) -> (Vec<u8>, bool, usize, Option<ChunkedError>) {
    let mut decoder = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut consumed = 0;
    for &(_, bytes) in reads {
        match decoder.decode(bytes, |b| body.extend_from_slice(b)) {
            Ok(d) => {
                assert!(d.consumed <= bytes.len());
                assert!(d.done || d.consumed == bytes.len(), "stops early only when done");
                consumed += d.consumed;
                if d.done {
                    break;
                }
            }
            Err(e) => return (body, false, consumed, Some(e)),
        }
    }
    assert_eq!(decoder.body_len(), body.len() as u64);
    (body, decoder.is_done(), consumed, None)
}

fuzz_target!(|data: &[u8]| {
    let (cuts, stream) = split::split(data);
    let whole = decode(&[(1, stream)]);
    let pieces = decode(&split::reads(stream, &cuts));
    match (&whole.3, &pieces.3) {
        // An error is found at the same byte however the input is cut, so the body
        // before it is the same; the consumed count of a failed read is not reported.
        (Some(a), Some(b)) => {
            assert_eq!(a, b, "cuts {cuts:?}");
            assert_eq!(whole.0, pieces.0, "cuts {cuts:?}");
        }
        _ => assert_eq!(whole, pieces, "cuts {cuts:?}"),
    }
});
