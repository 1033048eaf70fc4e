//! The SSE framer never panics, and the events it frames do not depend on where reads
//! split the stream: only their timestamps may.
#![no_main]

use aiperf_runtime::http::SseFramer;
use aiperf_runtime::record::ResponseChunk;
use libfuzzer_sys::fuzz_target;

mod split;

fn frame(reads: &[(u64, &[u8])]) -> Vec<ResponseChunk> {
    let mut framer = SseFramer::new();
    let mut out = Vec::new();
    let mut last = 0;
    for &(t, bytes) in reads {
        let before = out.len();
        let n = framer.feed(bytes, t, &mut out);
        assert_eq!(n, out.len() - before, "feed counts what it appends");
        last = t;
    }
    framer.finish(last + 1, &mut out);
    for e in &out {
        assert!(e.first_byte_ns <= e.recv_ns, "{e:?}");
    }
    assert!(out.windows(2).all(|w| w[0].recv_ns <= w[1].recv_ns));
    out
}

fuzz_target!(|data: &[u8]| {
    let (cuts, stream) = split::split(data);
    let whole = frame(&[(1, stream)]);
    let pieces = frame(&split::reads(stream, &cuts));
    let strip = |events: &[ResponseChunk]| -> Vec<(Option<String>, Vec<u8>)> {
        events.iter().map(|e| (e.event.clone(), e.data.clone())).collect()
    };
    assert_eq!(strip(&whole), strip(&pieces), "cuts {cuts:?}");
});
