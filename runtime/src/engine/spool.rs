//! The record spool: while requests are in flight the record thread only appends each
//! finished request's raw record to a file, in a compact binary form, and reads them all
//! back for parsing, metrics and the exports once the run is over.
//!
//! Parsing a response, counting its tokens, writing its JSONL line and keeping its metric
//! values cost about 4 µs per request; done during the run, that CPU is taken from the
//! workers and from a server on the same host. Spooled instead, the record thread's share
//! of the client's CPU during a run against a fast server fell from 23 to 5.5 %, and the
//! requests sent per second rose by 12 to 17 % side by side.
//!
//! The file lives in the artifact directory (the user's chosen disk, not a RAM-backed
//! `/tmp`) and is unlinked as soon as it is opened: nothing is left behind, whatever ends
//! the process. Records are length-prefixed, little-endian; the format is private to one
//! run of one binary, so it has no version.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::record::{ErrorDetails, Outcome, Phase, RequestRecord, ResponseChunk};

/// Encoded records are written out once this many bytes are buffered.
const FLUSH_BYTES: usize = 256 << 10;

/// The most a spool may grow to: a streamed record keeps every event's bytes (about
/// 20 KB for 100 tokens), and the spool must not fill the disk the exports go to. It
/// is also never more than a quarter of the space free when it was created.
const MAX_BYTES: u64 = 1 << 30;

/// Records written so far, and the ones still buffered.
pub(crate) struct Spool {
    file: File,
    /// Encoded records not yet written.
    buf: Vec<u8>,
    /// Bytes of whole records in the file.
    committed: u64,
    records: u64,
    /// Past this many bytes the spool is [`Spool::full`].
    limit: u64,
}

impl Spool {
    /// Opens an unlinked spool file in `dir`.
    pub fn create(dir: &Path) -> std::io::Result<Spool> {
        let path = dir.join(format!(".aiperf-records-{}.spool", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        // Open, the file stays readable through `file` alone.
        std::fs::remove_file(&path)?;
        Ok(Spool {
            file,
            buf: Vec::with_capacity(FLUSH_BYTES + (4 << 10)),
            committed: 0,
            records: 0,
            limit: free_bytes(dir).map_or(MAX_BYTES, |free| (free / 4).min(MAX_BYTES)),
        })
    }

    /// Whether the spool has grown to its limit: the records it holds should be handled
    /// now, and the rest as they come.
    pub fn full(&self) -> bool {
        self.bytes() >= self.limit
    }

    /// Bytes held, written or not.
    pub fn bytes(&self) -> u64 {
        self.committed + self.buf.len() as u64
    }

    /// Records appended so far.
    pub fn len(&self) -> u64 {
        self.records
    }

    /// Appends one record. On a write error the record is still kept (in memory, with
    /// every record not yet written), and [`Spool::replay`] returns them all.
    pub fn push(&mut self, record: &RequestRecord) -> std::io::Result<()> {
        append_frame(record, &mut self.buf);
        self.records += 1;
        if self.buf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends `records` records already framed by [`append_frame`] (a worker's block), as
    /// [`Spool::push`] appends one.
    pub fn push_frames(&mut self, frames: &[u8], records: u64) -> std::io::Result<()> {
        self.buf.extend_from_slice(frames);
        self.records += records;
        if self.buf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // After a failed write the file may hold part of the buffer: `committed` says
        // where its whole records end, and the buffer keeps them all.
        self.file.seek(SeekFrom::Start(self.committed))?;
        self.file.write_all(&self.buf)?;
        self.committed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Every record, in the order they were pushed: those in the file, then those
    /// still buffered.
    pub fn replay(mut self) -> std::io::Result<Replay> {
        self.file.seek(SeekFrom::Start(0))?;
        let file = BufReader::with_capacity(1 << 20, self.file).take(self.committed);
        Ok(Replay {
            file,
            tail: std::mem::take(&mut self.buf),
            tail_at: 0,
            frame: Vec::new(),
            offset: 0,
            freed: 0,
            free_every: (self.limit / 8).clamp(64 << 10, FREE_EVERY),
        })
    }
}

/// Appends `record` to `out` as one frame of the spool: its length, then its encoding.
pub(crate) fn append_frame(record: &RequestRecord, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    encode(record, out);
    let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// The first frame of `bytes` ([`append_frame`]'s): its encoding and the bytes it takes
/// with its length; `None` when `bytes` is empty, an error when it ends inside the frame.
fn first_frame(bytes: &[u8]) -> Option<Result<(&[u8], usize), ()>> {
    if bytes.is_empty() {
        return None;
    }
    let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
        return Some(Err(()));
    };
    let n = u32::from_le_bytes(*len) as usize;
    Some(rest.get(..n).map(|frame| (frame, 4 + n)).ok_or(()))
}

/// The records of a block of frames made by [`append_frame`], in order.
pub(crate) fn frames(block: &[u8]) -> impl Iterator<Item = Result<RequestRecord, String>> + '_ {
    let mut rest = block;
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let here = at;
        let corrupt = move || format!("record block: an unreadable record at byte {here}");
        match first_frame(rest)? {
            Ok((frame, took)) => {
                rest = &rest[took..];
                at += took;
                Some(decode(frame).ok_or_else(corrupt))
            }
            Err(()) => {
                rest = &[];
                Some(Err(corrupt()))
            }
        }
    })
}

/// Bytes an unprivileged process may still write on the file system of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-zero is a valid `statvfs` (plain integers).
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is valid and writable for the call.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Reads a spool's records back, one at a time.
pub(crate) struct Replay {
    file: std::io::Take<BufReader<File>>,
    tail: Vec<u8>,
    tail_at: usize,
    frame: Vec<u8>,
    /// Where the next record starts, counting the file and then the buffer.
    offset: u64,
    /// Bytes at the file's start whose disk space was given back.
    freed: u64,
    /// Bytes read between two hole punches.
    free_every: u64,
}

/// Bytes of replayed records after which their disk space is given back, at most: an
/// eighth of the spool's limit where that is less (a small disk).
const FREE_EVERY: u64 = 8 << 20;

impl Replay {
    /// Gives back the disk space of the records read from the file so far: the records
    /// file written from them grows meanwhile (to four times their size, without
    /// streaming), and both at once could fill a disk that either alone fits. A file
    /// system that cannot punch holes keeps the space until the spool is closed.
    fn free_read(&mut self) {
        let read = self.offset;
        if read < self.freed.saturating_add(self.free_every) {
            return;
        }
        use std::os::fd::AsRawFd;
        let fd = self.file.get_ref().get_ref().as_raw_fd();
        let (Ok(from), Ok(len)) = (
            libc::off_t::try_from(self.freed),
            libc::off_t::try_from(read - self.freed),
        ) else {
            return;
        };
        // SAFETY: `fd` is the spool's open file; the call reads and writes no memory.
        let punched = unsafe {
            libc::fallocate(
                fd,
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                from,
                len,
            )
        };
        // Where it is not supported, it is not asked again.
        self.freed = if punched == 0 { read } else { u64::MAX };
    }
}

impl Iterator for Replay {
    type Item = Result<RequestRecord, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.offset;
        let corrupt = |what: &str| Some(Err(format!("record spool: {what} at byte {at}")));
        let mut len = [0u8; 4];
        match read_exact_or_end(&mut self.file, &mut len) {
            Ok(true) => {
                let n = u32::from_le_bytes(len) as usize;
                self.frame.resize(n, 0);
                if let Err(e) = self.file.read_exact(&mut self.frame) {
                    return corrupt(&format!("a record cut short ({e})"));
                }
                self.offset += 4 + n as u64;
                self.free_read();
                Some(
                    decode(&self.frame)
                        .ok_or_else(|| format!("record spool: an unreadable record at byte {at}")),
                )
            }
            Ok(false) => {
                let (frame, took) = match first_frame(self.tail.get(self.tail_at..)?)? {
                    Ok(found) => found,
                    Err(()) => return corrupt("a buffered record cut short"),
                };
                self.tail_at += took;
                self.offset += took as u64;
                Some(decode(frame).ok_or_else(|| {
                    format!("record spool: an unreadable buffered record at byte {at}")
                }))
            }
            Err(e) => corrupt(&format!("a read failed ({e})")),
        }
    }
}

/// Fills `buf`; `false` at a clean end (nothing read).
fn read_exact_or_end(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------- encoding

struct Out<'a>(&'a mut Vec<u8>);

impl Out<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.0
            .extend_from_slice(&v[..v.len().min(u32::MAX as usize)]);
    }
    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    fn opt<T>(&mut self, v: Option<T>, mut put: impl FnMut(&mut Self, T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                put(self, v);
            }
        }
    }
}

fn phase_code(p: Option<Phase>) -> u8 {
    match p {
        None => 0,
        Some(Phase::Warmup) => 1,
        Some(Phase::Profiling) => 2,
    }
}

fn phase_of(code: u8) -> Option<Option<Phase>> {
    Some(match code {
        0 => None,
        1 => Some(Phase::Warmup),
        2 => Some(Phase::Profiling),
        _ => return None,
    })
}

const OUTCOMES: [Outcome; 9] = [
    Outcome::Success,
    Outcome::InbandError,
    Outcome::HttpError,
    Outcome::Shed,
    Outcome::Timeout,
    Outcome::Truncated,
    Outcome::Cancelled,
    Outcome::EmptyOutput,
    Outcome::ConnectionError,
];

fn outcome_code(o: Option<Outcome>) -> u8 {
    // Every variant is in the table.
    o.map_or(0, |o| {
        OUTCOMES
            .iter()
            .position(|&x| x == o)
            .map_or(0, |i| i as u8 + 1)
    })
}

/// Appends `r` (all but its event tap, which the engine drops before a record leaves the
/// worker).
fn encode(r: &RequestRecord, out: &mut Vec<u8>) {
    // Destructured, so that a field added to the record cannot be forgotten here.
    let RequestRecord {
        worker_id,
        credit_index,
        conversation_index,
        turn_index,
        phase,
        x_request_id,
        x_correlation_id,
        intended_ns,
        trace_ms,
        start_ns,
        write_start_ns,
        sent_ns,
        ack_ns,
        first_byte_ns,
        body_first_ns,
        responses,
        end_ns,
        status,
        retry_after,
        outcome,
        error,
        was_cancelled,
        cut_off,
        reads,
        bytes_received,
        bytes_sent,
        body_bytes_sent,
        body_bytes_received,
        writes,
        connect_ns,
        connection_reused,
        input_tokens,
        input_text,
        requested_output_tokens,
        images,
        audio_duration_s,
        sent_request,
        event_stream,
        reconnected,
        max_events_per_read,
        final_turn,
        event_tap: _,
    } = r;
    let mut o = Out(out);
    o.u32(*worker_id);
    o.u64(*credit_index);
    o.u64(*conversation_index as u64);
    o.u32(*turn_index);
    o.u8(phase_code(*phase));
    o.str(x_request_id);
    o.str(x_correlation_id);
    o.u64(*intended_ns);
    o.opt(trace_ms.map(f64::to_bits), Out::u64);
    o.u64(*start_ns);
    for t in [
        write_start_ns,
        sent_ns,
        ack_ns,
        first_byte_ns,
        body_first_ns,
    ] {
        o.opt(*t, Out::u64);
    }
    o.u32(u32::try_from(responses.len()).unwrap_or(u32::MAX));
    for chunk in responses.iter().take(u32::MAX as usize) {
        o.u64(chunk.recv_ns);
        o.u64(chunk.first_byte_ns);
        o.opt(chunk.event.as_deref(), Out::str);
        o.bytes(&chunk.data);
    }
    o.u64(*end_ns);
    o.opt(*status, Out::u16);
    o.opt(retry_after.as_deref(), Out::str);
    o.u8(outcome_code(*outcome));
    o.opt(error.as_ref(), |o, e| {
        o.opt(e.code, Out::u16);
        o.str(&e.kind);
        o.str(&e.message);
        o.opt(e.cause.as_deref(), Out::str);
        o.u32(u32::try_from(e.cause_chain.len()).unwrap_or(u32::MAX));
        for c in e.cause_chain.iter().take(u32::MAX as usize) {
            o.str(c);
        }
    });
    let flags = [
        *was_cancelled,
        *cut_off,
        *connection_reused,
        *event_stream,
        *reconnected,
    ];
    o.u8(flags
        .iter()
        .enumerate()
        .fold(0, |acc, (i, &f)| acc | (u8::from(f) << i)));
    o.u32(*reads);
    for n in [
        bytes_received,
        bytes_sent,
        body_bytes_sent,
        body_bytes_received,
    ] {
        o.u64(*n);
    }
    o.u32(*writes);
    o.u64(*connect_ns);
    o.opt(*input_tokens, Out::u32);
    o.opt(input_text.as_deref(), Out::str);
    o.opt(*requested_output_tokens, Out::u32);
    o.u32(*images);
    o.opt(audio_duration_s.map(f64::to_bits), Out::u64);
    o.opt(sent_request.as_deref(), Out::bytes);
    o.u32(*max_events_per_read);
    o.opt(*final_turn, |o, last| o.u8(u8::from(last)));
}

struct In<'a>(&'a [u8]);

impl In<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        let v = self.0.get(..n)?.to_vec();
        self.0 = &self.0[n..];
        Some(v)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn opt<T>(&mut self, mut get: impl FnMut(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.u8()? {
            0 => Some(None),
            1 => get(self).map(Some),
            _ => None,
        }
    }
}

/// The record [`encode`] wrote; `None` if `bytes` are not one.
fn decode(bytes: &[u8]) -> Option<RequestRecord> {
    let mut i = In(bytes);
    let worker_id = i.u32()?;
    let credit_index = i.u64()?;
    let conversation_index = usize::try_from(i.u64()?).ok()?;
    let turn_index = i.u32()?;
    let phase = phase_of(i.u8()?)?;
    let x_request_id = i.string()?;
    let x_correlation_id = i.string()?;
    let intended_ns = i.u64()?;
    let trace_ms = i.opt(In::u64)?.map(f64::from_bits);
    let start_ns = i.u64()?;
    let mut times = [None; 5];
    for t in &mut times {
        *t = i.opt(In::u64)?;
    }
    let [write_start_ns, sent_ns, ack_ns, first_byte_ns, body_first_ns] = times;
    let count = i.u32()? as usize;
    // Bounded by what the bytes can hold, not by a count that could be anything.
    let mut responses = Vec::with_capacity(count.min(bytes.len() / 21));
    for _ in 0..count {
        responses.push(ResponseChunk {
            recv_ns: i.u64()?,
            first_byte_ns: i.u64()?,
            event: i.opt(In::string)?,
            data: i.bytes()?,
        });
    }
    let end_ns = i.u64()?;
    let status = i.opt(In::u16)?;
    let retry_after = i.opt(In::string)?;
    let outcome = match i.u8()? {
        0 => None,
        n => Some(*OUTCOMES.get(usize::from(n) - 1)?),
    };
    let error = i.opt(|i| {
        let code = i.opt(In::u16)?;
        let kind = i.string()?;
        let message = i.string()?;
        let cause = i.opt(In::string)?;
        let n = i.u32()? as usize;
        let mut cause_chain = Vec::with_capacity(n.min(i.0.len() / 4));
        for _ in 0..n {
            cause_chain.push(i.string()?);
        }
        Some(ErrorDetails {
            code,
            kind,
            message,
            cause,
            cause_chain,
        })
    })?;
    let flags = i.u8()?;
    let flag = |n: u8| flags & (1 << n) != 0;
    let reads = i.u32()?;
    let bytes_received = i.u64()?;
    let bytes_sent = i.u64()?;
    let body_bytes_sent = i.u64()?;
    let body_bytes_received = i.u64()?;
    let writes = i.u32()?;
    let connect_ns = i.u64()?;
    let input_tokens = i.opt(In::u32)?;
    let input_text = i.opt(In::string)?;
    let requested_output_tokens = i.opt(In::u32)?;
    let images = i.u32()?;
    let audio_duration_s = i.opt(In::u64)?.map(f64::from_bits);
    let sent_request = i.opt(In::bytes)?;
    let max_events_per_read = i.u32()?;
    let final_turn = i.opt(In::bool)?;
    if !i.0.is_empty() {
        return None;
    }
    Some(RequestRecord {
        worker_id,
        credit_index,
        conversation_index,
        turn_index,
        phase,
        x_request_id,
        x_correlation_id,
        intended_ns,
        trace_ms,
        start_ns,
        write_start_ns,
        sent_ns,
        ack_ns,
        first_byte_ns,
        body_first_ns,
        responses,
        end_ns,
        status,
        retry_after,
        outcome,
        error,
        was_cancelled: flag(0),
        cut_off: flag(1),
        reads,
        bytes_received,
        bytes_sent,
        body_bytes_sent,
        body_bytes_received,
        writes,
        connect_ns,
        connection_reused: flag(2),
        input_tokens,
        input_text,
        requested_output_tokens,
        images,
        audio_duration_s,
        sent_request,
        event_stream: flag(3),
        reconnected: flag(4),
        max_events_per_read,
        final_turn,
        event_tap: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field set to something other than its default, each to a different value.
    fn full(n: u64) -> RequestRecord {
        RequestRecord {
            worker_id: 3,
            credit_index: n,
            conversation_index: 7,
            turn_index: 2,
            phase: Some(Phase::Warmup),
            x_request_id: format!("req-{n}"),
            x_correlation_id: "corr-é".to_owned(),
            intended_ns: 11,
            trace_ms: Some(12.5),
            start_ns: 12,
            write_start_ns: Some(13),
            sent_ns: Some(14),
            ack_ns: None,
            first_byte_ns: Some(16),
            body_first_ns: Some(17),
            responses: vec![
                ResponseChunk {
                    recv_ns: 18,
                    first_byte_ns: 19,
                    event: Some("error".to_owned()),
                    data: b"{\"x\":1}".to_vec(),
                },
                ResponseChunk {
                    recv_ns: 20,
                    first_byte_ns: 20,
                    event: None,
                    data: vec![0xff, 0, 10],
                },
            ],
            end_ns: 21,
            status: Some(503),
            retry_after: Some("2".to_owned()),
            outcome: Some(Outcome::ConnectionError),
            error: Some(ErrorDetails {
                code: Some(503),
                kind: "ServerDisconnectedError".to_owned(),
                message: "m".to_owned(),
                cause: Some("c".to_owned()),
                cause_chain: vec!["A".to_owned(), "B".to_owned()],
            }),
            was_cancelled: true,
            cut_off: false,
            reads: 22,
            bytes_received: 23,
            bytes_sent: 24,
            body_bytes_sent: 25,
            body_bytes_received: 26,
            writes: 27,
            connect_ns: 28,
            connection_reused: true,
            input_tokens: Some(29),
            input_text: Some("hello world".to_owned()),
            requested_output_tokens: Some(30),
            images: 32,
            audio_duration_s: Some(0.25),
            sent_request: Some(b"POST / HTTP/1.1\r\n\r\n".to_vec()),
            event_stream: false,
            reconnected: true,
            max_events_per_read: 31,
            final_turn: Some(false),
            event_tap: None,
        }
    }

    #[test]
    fn a_record_comes_back_field_for_field() {
        for record in [full(1), RequestRecord::default()] {
            let mut bytes = Vec::new();
            encode(&record, &mut bytes);
            let back = decode(&bytes).expect("decodes");
            assert_eq!(format!("{back:?}"), format!("{record:?}"));
        }
    }

    #[test]
    fn every_outcome_and_phase_survives() {
        for (i, outcome) in OUTCOMES.iter().enumerate() {
            let mut record = full(i as u64);
            record.outcome = Some(*outcome);
            record.phase = [None, Some(Phase::Profiling), Some(Phase::Warmup)][i % 3];
            let mut bytes = Vec::new();
            encode(&record, &mut bytes);
            let back = decode(&bytes).expect("decodes");
            assert_eq!(back.outcome, Some(*outcome));
            assert_eq!(back.phase, record.phase);
        }
    }

    #[test]
    fn cut_or_padded_bytes_are_refused_not_misread() {
        let mut bytes = Vec::new();
        encode(&full(1), &mut bytes);
        for end in 0..bytes.len() {
            assert!(decode(&bytes[..end]).is_none(), "cut at {end}");
        }
        bytes.push(0);
        assert!(decode(&bytes).is_none());
    }

    #[test]
    fn records_come_back_in_order_from_the_file_and_the_buffer() {
        let dir = std::env::temp_dir().join(format!("spool-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut spool = Spool::create(&dir).expect("spool");
        // The spool's file is unlinked at once.
        assert_eq!(std::fs::read_dir(&dir).expect("read dir").count(), 0);
        // Enough to be written out more than once, and a few left in the buffer.
        let n = 3 * FLUSH_BYTES as u64 / 300;
        for i in 0..n {
            spool.push(&full(i)).expect("push");
        }
        assert_eq!(spool.len(), n);
        assert!(spool.committed > 0 && !spool.buf.is_empty());
        let back: Vec<_> = spool
            .replay()
            .expect("replay")
            .map(|r| r.expect("record").credit_index)
            .collect();
        assert_eq!(back, (0..n).collect::<Vec<_>>());
        std::fs::remove_dir(&dir).expect("remove dir");
    }

    #[test]
    fn framed_blocks_come_back_with_single_records_in_order() {
        let dir = std::env::temp_dir().join(format!("spool-frames-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut spool = Spool::create(&dir).expect("spool");
        let mut block = Vec::new();
        for i in 1..4 {
            append_frame(&full(i), &mut block);
        }
        let decoded: Vec<_> = frames(&block)
            .map(|r| r.expect("record").credit_index)
            .collect();
        assert_eq!(decoded, [1, 2, 3]);
        spool.push(&full(0)).expect("push");
        spool.push_frames(&block, 3).expect("push frames");
        spool.push(&full(4)).expect("push");
        assert_eq!(spool.len(), 5);
        let back: Vec<_> = spool
            .replay()
            .expect("replay")
            .map(|r| r.expect("record"))
            .collect();
        assert_eq!(back.len(), 5);
        for (i, r) in back.iter().enumerate() {
            assert_eq!(format!("{r:?}"), format!("{:?}", full(i as u64)));
        }
        std::fs::remove_dir(&dir).expect("remove dir");
    }

    #[test]
    fn a_cut_block_gives_its_whole_records_then_one_error() {
        let mut block = Vec::new();
        append_frame(&full(7), &mut block);
        let whole = block.len();
        append_frame(&full(8), &mut block);
        block.truncate(block.len() - 3);
        let got: Vec<_> = frames(&block).map(|r| r.map(|r| r.credit_index)).collect();
        let error = format!("record block: an unreadable record at byte {whole}");
        assert_eq!(got, [Ok(7), Err(error)]);
        assert_eq!(
            frames(&[1, 0]).count(),
            1,
            "a length cut short is one error"
        );
        assert_eq!(frames(&[]).count(), 0);
    }

    #[test]
    fn records_a_failed_write_left_behind_still_come_back() {
        let path = std::env::temp_dir().join(format!("spool-ro-{}", std::process::id()));
        std::fs::write(&path, b"").expect("file");
        // Opened for reading only: every write fails.
        let file = File::open(&path).expect("open");
        std::fs::remove_file(&path).expect("unlink");
        let mut spool = Spool {
            file,
            buf: Vec::new(),
            committed: 0,
            records: 0,
            limit: MAX_BYTES,
        };
        let mut failed = 0;
        let n = 2 * FLUSH_BYTES as u64 / 300;
        for i in 0..n {
            failed += u32::from(spool.push(&full(i)).is_err());
        }
        assert!(failed > 0);
        let back: Vec<_> = spool
            .replay()
            .expect("replay")
            .map(|r| r.expect("record").credit_index)
            .collect();
        assert_eq!(back, (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn a_spool_is_full_at_its_limit_and_never_past_a_quarter_of_the_free_space() {
        let dir = std::env::temp_dir();
        let mut spool = Spool::create(&dir).expect("spool");
        let free = free_bytes(&dir).expect("statvfs");
        assert_eq!(spool.limit, (free / 4).min(MAX_BYTES));
        spool.limit = 1000;
        let mut pushed = 0;
        while !spool.full() {
            spool.push(&full(pushed)).expect("push");
            pushed += 1;
        }
        assert!(
            spool.bytes() >= 1000 && pushed > 1,
            "{} bytes",
            spool.bytes()
        );
        assert_eq!(spool.replay().expect("replay").count() as u64, pushed);
    }

    #[test]
    fn replayed_records_give_their_disk_space_back() {
        let dir = std::env::temp_dir();
        let mut spool = Spool::create(&dir).expect("spool");
        let n = 3 * FREE_EVERY / 300;
        for i in 0..n {
            spool.push(&full(i)).expect("push");
        }
        spool.flush().expect("flush");
        let blocks = |f: &File| {
            use std::os::unix::fs::MetadataExt;
            f.metadata().expect("metadata").blocks() * 512
        };
        let before = blocks(&spool.file);
        assert!(before >= spool.committed, "{before} bytes on disk");
        let mut replay = spool.replay().expect("replay");
        let back = replay.by_ref().take(n as usize - 1).count();
        assert_eq!(back as u64, n - 1);
        let after = blocks(replay.file.get_ref().get_ref());
        // Punched in 8 MiB steps, where the file system can.
        if replay.freed != u64::MAX {
            assert!(
                after <= before - 2 * FREE_EVERY,
                "{before} -> {after} bytes on disk"
            );
        }
        assert!(replay.next().is_some_and(|r| r.is_ok()));
        assert!(replay.next().is_none());
    }

    #[test]
    fn a_spool_is_refused_where_it_cannot_be_created() {
        let missing = std::env::temp_dir().join("no-such-dir-for-spool").join("x");
        assert!(Spool::create(&missing).is_err());
    }
}
