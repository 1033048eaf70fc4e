//! Request and session ids as AIPerf sends them: random (version 4) UUIDs, one per request
//! (`X-Request-ID`) and one per session (`X-Correlation-ID`), also written to each record.
//!
//! They identify, they do not sample anything, so they come from a per-thread generator
//! seeded from the clock and the thread rather than from `--random-seed`: two runs with
//! the same seed must still tell their requests apart in a server's logs.
//!
//! Unseeded runs name their conversations with UUIDs too ([`crate::dataset::SessionIds`]),
//! derived from a process key and the conversation's index so that a conversation that
//! is not held gets the same id in `inputs.json` and in the records.

use std::cell::Cell;
use std::hash::{BuildHasher, Hash, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // RandomState is keyed per process by the OS's random source; the clock and thread
    // id keep threads of one process apart.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::thread::current().id().hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    h.finish()
}

/// wyrand: one multiply per 64 bits, plenty for ids.
fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let m = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        (m as u64) ^ ((m >> 64) as u64)
    })
}

/// A random UUID, lower-case and hyphenated (`8-4-4-4-12`), as Python's `uuid4()` prints.
pub(crate) fn uuid4() -> String {
    let out = uuid_bytes(next_u64(), next_u64());
    // SAFETY: every byte is a hyphen or a digit from HEX_PAIRS, all ASCII, so the bytes
    // are UTF-8 (the tests check every id's characters); checking it again cost each
    // request 70 instructions per id.
    unsafe { String::from_utf8_unchecked(out.to_vec()) }
}

/// A process-wide random key, drawn once: ids derived from it differ between runs yet
/// agree between the threads of one.
pub(crate) fn process_key() -> u64 {
    static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| splitmix64(seed()))
}

/// Appends a version 4 UUID that is a function of `key` and `index`: the same pair always
/// gives the same id, distinct indices give unrelated ones (the first 64 bits are a
/// bijection of `index` before the version bits are set; the last 64 are mixed from them).
pub(crate) fn write_keyed_uuid(key: u64, index: u64, out: &mut Vec<u8>) {
    let hi = splitmix64(key ^ splitmix64(index));
    let lo = splitmix64(hi ^ key.rotate_left(32));
    out.extend_from_slice(&uuid_bytes(hi, lo));
}

/// The UUID of these 128 bits, its version set to 4 and its variant to RFC 4122.
fn uuid_bytes(hi: u64, lo: u64) -> [u8; 36] {
    // Version 4 in the top nibble of the third group, variant 10 in the fourth.
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
    let bytes = ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes();
    // Where each byte's two digits go, past the hyphens: with the positions constant the
    // loop unrolls into table loads and stores, no branch (every request takes one or
    // two ids, and a digit at a time with a hyphen test per byte cost 190 instructions).
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = [b'-'; 36];
    for (b, at) in bytes.iter().zip(AT) {
        out[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
    out
}

/// Each byte's two lower-case hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    pairs
};

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The value of the last `--header` named `name` (case-insensitive; `Name:Value` or a
/// JSON object, as the transport reads them): a user who sets `X-Request-ID` or
/// `X-Correlation-ID` sends that value instead of ours, and the records must carry the id
/// that was sent. Later headers win, as in AIPerf's header dict.
pub fn given_header(headers: &[String], name: &str) -> Option<String> {
    given_headers(headers)
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .next_back()
}

/// Every `--header` as `(name, value)`, trimmed, in the order given (a JSON object's
/// entries in its order); arguments that are neither form are skipped.
pub fn given_headers(headers: &[String]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for arg in headers {
        let arg = arg.trim();
        if arg.starts_with('{') {
            let Ok(serde_json::Value::Object(map)) = serde_json::from_str(arg) else {
                continue;
            };
            for (n, v) in map {
                let value = match v {
                    serde_json::Value::String(s) => s.trim().to_owned(),
                    other => other.to_string(),
                };
                found.push((n.trim().to_owned(), value));
            }
        } else if let Some((n, v)) = arg.split_once(':') {
            found.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_header_of_a_name_is_the_given_one_in_either_form() {
        let headers = |h: &[&str]| h.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(given_header(&headers(&["X-Foo: 1"]), "x-request-id"), None);
        assert_eq!(
            given_header(
                &headers(&["x-request-id: one ", "X-Request-ID:two"]),
                "x-request-id"
            ),
            Some("two".to_owned())
        );
        assert_eq!(
            given_header(
                &headers(&[r#"{"X-Request-ID": "json", "Other": 1}"#]),
                "x-request-id"
            ),
            Some("json".to_owned())
        );
        assert_eq!(
            given_header(&headers(&["X-Request-ID:a:b"]), "x-request-id"),
            Some("a:b".to_owned())
        );
    }

    fn keyed(key: u64, index: u64) -> String {
        let mut out = Vec::new();
        write_keyed_uuid(key, index, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keyed_uuids_repeat_for_their_key_and_index() {
        assert_eq!(keyed(7, 3), keyed(7, 3));
        assert_ne!(keyed(7, 3), keyed(8, 3));
        assert_ne!(keyed(7, 3), keyed(7, 4));
    }

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let mut ids: Vec<String> = (0..1000).map(|_| uuid4()).collect();
        ids.extend((0..1000).map(|i| keyed(process_key(), i)));
        for id in &ids {
            assert_eq!(id.len(), 36, "{id}");
            let groups: Vec<&str> = id.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{id}"
            );
            assert!(groups[2].starts_with('4'), "{id}");
            assert!(matches!(&groups[3][..1], "8" | "9" | "a" | "b"), "{id}");
            assert!(id
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
