//! HTTP/1.1 client and SSE framing for the measuring path.
//!
//! Hand-written on monoio's `TcpStream` rather than a general HTTP client because timing
//! is the product: one write per request, every read timed by the kernel's receive stamp
//! (or, where there is none, as the worker learns of it; see `stamp`), and body bytes
//! handed to the SSE framer as they arrive (monoio's own client buffers a chunked body
//! until it ends, which makes TTFT unmeasurable). TLS is rustls under the same read loop;
//! its reads go through rustls, so they take the worker's clock rather than the kernel's.

pub mod chunked;
pub mod client;
mod deadline;
pub mod head;
pub mod multipart;
pub mod pyerr;
pub mod response;
pub mod sse;
mod stamp;
pub mod tls;
pub mod url;

pub use chunked::{ChunkedDecoder, ChunkedError, Decoded};
pub use client::{
    has_header, serialize_request, serialize_request_into, serialize_request_line,
    serialize_request_rest, ConnectionPool, ConnectionReuse, PoolConfig, PoolStats, READ_BUF_SIZE,
};
pub use head::{parse_response_head, BodyFraming, HeadError, HeadStatus, ResponseHead};
pub use response::{ResponseEnd, ResponseParser};
pub use sse::SseFramer;
pub use url::{BaseUrl, Scheme, UrlError};

/// Where a request's head ends (just past its blank line), if it has one.
///
/// The searcher is built once: building one takes longer than searching a request's few
/// hundred bytes, and every request sent is searched.
pub(crate) fn head_end(request: &[u8]) -> Option<usize> {
    static BLANK_LINE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    BLANK_LINE.find(request).map(|at| at + 4)
}

#[cfg(test)]
pub(crate) mod test_util {
    /// xorshift64*: deterministic, dependency-free randomness for split and fuzz tests.
    pub struct XorShift(u64);

    impl XorShift {
        pub fn new(seed: u64) -> Self {
            XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        pub fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// Uniform enough in `0..n` (0 when `n` is 0).
        pub fn below(&mut self, n: u64) -> u64 {
            if n == 0 {
                0
            } else {
                self.next_u64() % n
            }
        }
    }
}
