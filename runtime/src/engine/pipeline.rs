//! The record thread: turns raw request records into parsed records and metrics, off
//! the measuring threads.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use crate::config::ProfileConfig;
use crate::engine::spool::{self, Spool};
use crate::engine::worker::Shared;
use crate::export::RecordWriter;
use crate::metrics::Timeslicer;
use crate::plugin::{DispatchEnum, PluginContext, PluginError, PluginKind, PluginSet};
use crate::protocols::{
    EndpointProtocol, RecordProcessorProtocol, ResultsProcessorProtocol, TokenizerProtocol,
};
use crate::record::{
    ErrorDetails, Nanos, Outcome, ParsedRecord, ParsedResponse, Phase, RequestRecord, ResponseData,
    RunClock,
};
use crate::results::{ErrorCount, MetricRecord, MetricResult, Timeslice};

/// Bytes of records waiting for the record thread above which workers stop issuing new
/// requests, and below which they resume. Records in flight always get through (none is
/// dropped and no measuring thread blocks); only the next request waits, so memory stays
/// bounded by this backlog plus the requests in flight, however long the run.
const BACKLOG_HIGH_BYTES: u64 = 8 << 20;
const BACKLOG_LOW_BYTES: u64 = 4 << 20;
/// How often a held-back worker looks at the backlog again; the backlog between the two
/// marks keeps the record thread busy for far longer.
const BACKLOG_POLL: Duration = Duration::from_millis(1);

/// How long the record thread naps when it finds the channel empty, before it looks
/// again; only a second empty look makes it block. Blocking on every empty channel made
/// each record a futex wake on a worker and a context switch here: at 80,000 records/s
/// that was a tenth of the client's CPU, while a nap costs one wake-up per millisecond
/// and records wait at most this long (their timestamps were taken by the workers).
const RECORD_NAP: Duration = Duration::from_millis(1);

/// Bytes of framed records past which a worker hands its block over at once rather than
/// at the end of its executor's turn.
const BLOCK_BYTES: usize = 64 << 10;

/// How long a blocking receive waits before the record thread looks at the run again
/// (whether it was stopped) with no record come.
const RECORD_IDLE_LOOK: Duration = Duration::from_millis(100);

/// Records from the workers until every sender is gone: taken without blocking while
/// they keep coming, after a [`RECORD_NAP`] when the channel runs dry, and with a
/// blocking receive once a nap found nothing, which gives `None` after
/// [`RECORD_IDLE_LOOK`] with no record.
fn received<T>(rx: Receiver<T>) -> impl Iterator<Item = Option<T>> {
    use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
    let mut napped = false;
    std::iter::from_fn(move || loop {
        match rx.try_recv() {
            Ok(item) => {
                napped = false;
                return Some(Some(item));
            }
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if napped => {
                napped = false;
                return match rx.recv_timeout(RECORD_IDLE_LOOK) {
                    Ok(item) => Some(Some(item)),
                    Err(RecvTimeoutError::Timeout) => Some(None),
                    Err(RecvTimeoutError::Disconnected) => None,
                };
            }
            Err(TryRecvError::Empty) => {
                napped = true;
                std::thread::sleep(RECORD_NAP);
            }
        }
    })
}

/// What a worker hands the record thread, with its size for the backlog.
// The record is moved, never stored boxed: boxing it would add an allocation per record.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Handoff {
    Record(RequestRecord),
    /// Records already framed for the spool ([`spool::append_frame`]) by the worker that
    /// ended them, in the order it ended them.
    Frames {
        bytes: Vec<u8>,
        records: u64,
    },
}

/// The workers' side of the record hand-off: an unbounded channel whose backlog is
/// counted, so that workers can hold back new requests while the record thread is behind.
pub(crate) struct RecordSender {
    tx: Sender<(u64, Handoff)>,
    backlog: Arc<Backlog>,
    brake: Option<Arc<FailureBrake>>,
    /// While the record thread spools records, a worker frames its records itself and
    /// hands them over a block at a time (see [`RecordSender::send_framed`]).
    block: Option<RefCell<Block>>,
}

/// A worker's records framed and not yet handed over.
#[derive(Default)]
struct Block {
    bytes: Vec<u8>,
    records: u64,
    /// A task that hands the block over is queued on the worker's executor.
    queued: bool,
}

impl Clone for RecordSender {
    /// Another sender on the same channel, with an empty block of its own.
    fn clone(&self) -> Self {
        RecordSender {
            tx: self.tx.clone(),
            backlog: self.backlog.clone(),
            brake: self.brake.clone(),
            block: self.block.as_ref().map(|_| RefCell::default()),
        }
    }
}

impl Drop for RecordSender {
    fn drop(&mut self) {
        self.flush_block();
    }
}

/// `--failed-request-threshold` judged as each profiling request ends, on the worker that
/// ends it. The record thread judges too, and its judgment is the one reported, but it may
/// be far behind the workers: against a refused port they had sent 1,994 requests by the
/// time it read the tenth record. A worker sees only the failures it can tell (no
/// response, an error status), no more than the record thread finds in the same records,
/// and records reach it in the order they are counted here; so this trips at the record
/// the record thread trips at or after it, never before, and only stops the run sooner.
pub(crate) struct FailureBrake {
    threshold: f64,
    floor: u64,
    /// Profiling records sent so far, and the failures among them.
    counts: std::sync::Mutex<(u64, u64)>,
    tripped: AtomicBool,
    abort_run: RunAbort,
}

/// Stops issuing and cancels the requests in flight at once, as AIPerf's threshold abort
/// cancels its credits (a first Ctrl-C here gives them the grace period instead). A plain
/// struct rather than a boxed closure: nothing on the request path is a trait object.
#[derive(Clone, Default)]
pub(crate) struct RunAbort {
    /// The run's shared state and its stop instant; `None` in tests.
    run: Option<(Arc<Shared>, Arc<AtomicU64>)>,
    /// Times it fired (the workers' brake and the record thread may both fire it).
    fired: Arc<AtomicU64>,
}

impl RunAbort {
    pub fn new(shared: Arc<Shared>, stopped_at: Arc<AtomicU64>) -> Self {
        RunAbort {
            run: Some((shared, stopped_at)),
            fired: Arc::default(),
        }
    }

    pub fn fire(&self) {
        self.fired.fetch_add(1, Ordering::SeqCst);
        if let Some((shared, stopped_at)) = &self.run {
            let now = shared.clock.now();
            shared.stop.store(true, Ordering::SeqCst);
            stopped_at.fetch_min(now, Ordering::SeqCst);
            shared.cancel_at_ns.fetch_min(now, Ordering::SeqCst);
            crate::http::client::halt(now);
        }
    }

    #[cfg(test)]
    fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }
}

impl FailureBrake {
    pub fn new(threshold: f64, floor: u64, abort_run: RunAbort) -> Self {
        FailureBrake {
            threshold,
            floor,
            counts: std::sync::Mutex::new((0, 0)),
            tripped: AtomicBool::new(false),
            abort_run,
        }
    }
}

/// The hand-off's counters, shared by the workers, the record thread and the run.
#[derive(Default)]
pub(crate) struct Backlog {
    /// Approximate bytes of records sent and not yet processed.
    queued_bytes: AtomicU64,
    /// Records sent and not yet processed.
    queued: AtomicU64,
    peak: AtomicU64,
    peak_bytes: AtomicU64,
    /// Times a worker held back a request for the record thread, and for how long.
    waits: AtomicU64,
    waited_ns: AtomicU64,
    /// The record thread has stopped (done, failed or panicked): nothing will drain.
    closed: AtomicBool,
}

/// Marks the backlog closed when the record thread leaves, however it leaves, so that no
/// worker waits for room that will never come.
struct CloseOnDrop(Arc<Backlog>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
    }
}

/// What the hand-off saw over a run, for the client-health verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct BacklogReport {
    pub peak_records: u64,
    pub peak_bytes: u64,
    pub waits: u64,
    pub waited_s: f64,
}

impl Backlog {
    pub fn report(&self) -> BacklogReport {
        BacklogReport {
            peak_records: self.peak.load(Ordering::Relaxed),
            peak_bytes: self.peak_bytes.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            waited_s: self.waited_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }

    fn taken(&self, records: u64, bytes: u64) {
        self.queued.fetch_sub(records, Ordering::Relaxed);
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn queue(&self, records: u64, bytes: u64) {
        let queued = self.queued.fetch_add(records, Ordering::Relaxed) + records;
        let queued_bytes = self.queued_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(queued, Ordering::Relaxed);
        self.peak_bytes.fetch_max(queued_bytes, Ordering::Relaxed);
    }
}

/// A channel from the workers to the record thread.
pub(crate) fn record_channel() -> (RecordSender, Receiver<(u64, Handoff)>, Arc<Backlog>) {
    let (tx, rx) = mpsc::channel();
    let backlog = Arc::new(Backlog::default());
    let sender = RecordSender {
        tx,
        backlog: backlog.clone(),
        brake: None,
        block: None,
    };
    (sender, rx, backlog)
}

impl RecordSender {
    /// Judges `--failed-request-threshold` on each profiling record sent from now on.
    pub fn set_failure_brake(&mut self, brake: Arc<FailureBrake>) {
        self.brake = Some(brake);
    }

    /// Has the senders cloned from this one frame their records in blocks
    /// ([`RecordSender::send_framed`]): for a record thread that spools them, and so
    /// judges no record before the run ends.
    pub fn frame_in_blocks(&mut self) {
        self.block = Some(RefCell::default());
    }

    /// Hands a finished request to the record thread from a worker's executor.
    ///
    /// Where blocks are on, the record is framed here, while its bytes are still in this
    /// core's cache, and freed here too; the block goes over once this turn of the
    /// executor has run the tasks it woke (or sooner, once it is large). One channel send
    /// then carries every record a turn ended, and the record thread only appends bytes.
    /// When it framed each record itself, after the record's bytes had crossed cores, and
    /// freed its allocations into another thread's arena, its CPU during a run against a
    /// fast server was about 1 µs per request; it is about half that now. Records still
    /// reach it in the order this worker ended them.
    pub fn send_framed(self: &Rc<Self>, record: RequestRecord) {
        let Some(block) = &self.block else {
            return self.send(record);
        };
        let mut b = block.borrow_mut();
        spool::append_frame(&record, &mut b.bytes);
        b.records += 1;
        drop(record);
        if b.bytes.len() >= BLOCK_BYTES {
            drop(b);
            self.flush_block();
        } else if !b.queued {
            b.queued = true;
            // The executor runs its tasks first in, first out: this one runs after every
            // task this turn woke. It holds the sender weakly: a task the executor never
            // runs must not keep the channel open (the worker hands its block over
            // itself when it ends).
            let me = Rc::downgrade(self);
            drop(monoio::spawn(async move {
                if let Some(me) = me.upgrade() {
                    me.flush_block();
                }
            }));
        }
    }

    /// Hands over the records framed so far, if any.
    pub fn flush_block(&self) {
        let Some(block) = &self.block else {
            return;
        };
        let mut b = block.borrow_mut();
        b.queued = false;
        if b.records == 0 {
            return;
        }
        // The next block starts with room for about as much as this one took.
        let room = b.bytes.len().clamp(4 << 10, BLOCK_BYTES + (16 << 10));
        let bytes = std::mem::replace(&mut b.bytes, Vec::with_capacity(room));
        let records = std::mem::take(&mut b.records);
        drop(b);
        let size = bytes.capacity() as u64;
        self.backlog.queue(records, size);
        if self
            .tx
            .send((size, Handoff::Frames { bytes, records }))
            .is_err()
        {
            // The record thread is gone: it failed and reports why; nothing waits on this.
            self.backlog.taken(records, size);
        }
    }

    /// Hands a finished request to the record thread; never blocks, never drops.
    pub fn send(&self, record: RequestRecord) {
        let bytes = approx_bytes(&record);
        let b = &self.backlog;
        b.queue(1, bytes);
        let judged = record.phase == Some(Phase::Profiling) && !record.cut_off;
        let sent = match self.brake.as_deref().filter(|_| judged) {
            Some(brake) => {
                let failed = record.outcome.is_some_and(|o| o != Outcome::Success);
                // Counted and sent under one lock: the record thread then reads the
                // records in the order they were counted here.
                let mut counts = brake.counts.lock().unwrap_or_else(|e| e.into_inner());
                counts.0 += 1;
                counts.1 += u64::from(failed);
                let (total, errors) = *counts;
                let sent = self.tx.send((bytes, Handoff::Record(record)));
                drop(counts);
                if over_failure_threshold(brake.threshold, brake.floor, total, errors)
                    && !brake.tripped.swap(true, Ordering::SeqCst)
                {
                    brake.abort_run.fire();
                }
                sent
            }
            None => self.tx.send((bytes, Handoff::Record(record))),
        };
        if sent.is_err() {
            // The record thread is gone: it failed and reports why; nothing waits on this.
            b.taken(1, bytes);
        }
    }

    /// Completes when the record thread has room for more: at once while the backlog is
    /// under the high mark, else once it has drained below the low mark (the wait is
    /// counted and reported as the client holding the run back).
    pub async fn room(&self, clock: &RunClock) {
        let b = &self.backlog;
        if b.queued_bytes.load(Ordering::Relaxed) < BACKLOG_HIGH_BYTES {
            return;
        }
        let from = clock.now();
        while b.queued_bytes.load(Ordering::Relaxed) >= BACKLOG_LOW_BYTES
            && !b.closed.load(Ordering::Acquire)
        {
            monoio::time::sleep(BACKLOG_POLL).await;
        }
        b.waits.fetch_add(1, Ordering::Relaxed);
        b.waited_ns
            .fetch_add(clock.now().saturating_sub(from), Ordering::Relaxed);
    }
}

/// Heap bytes a record holds, roughly (its allocations as sized, without allocator
/// overhead): what the backlog limit counts.
fn approx_bytes(r: &RequestRecord) -> u64 {
    let chunks: usize = r
        .responses
        .iter()
        .map(|c| c.data.capacity() + c.event.as_ref().map_or(0, String::capacity))
        .sum();
    let error = r
        .error
        .as_ref()
        .map_or(0, |e| e.kind.capacity() + e.message.capacity());
    let total = std::mem::size_of::<RequestRecord>()
        + r.responses.capacity() * std::mem::size_of::<crate::record::ResponseChunk>()
        + chunks
        + r.x_request_id.capacity()
        + r.x_correlation_id.capacity()
        + r.retry_after.as_ref().map_or(0, String::capacity)
        + r.sent_request.as_ref().map_or(0, Vec::capacity)
        + error;
    total as u64
}

/// One phase's summary, as its results processors made it.
pub(crate) struct PhaseSummary {
    pub metrics: Vec<MetricResult>,
    /// Most frequent first.
    pub error_summary: Vec<ErrorCount>,
    /// Records of the phase, and those of them that failed.
    pub total: u64,
    pub errors: u64,
    /// Requests cancelled in flight when the phase or the run stopped: in the records
    /// file, not in the counts or metrics (see [`RequestRecord::cut_off`]).
    pub cut_off: u64,
    /// Of those, the ones the stop kept from being sent (waiting for a connection), and
    /// the earliest scheduled time among them.
    pub unsent: u64,
    pub unsent_first_intended_ns: Option<Nanos>,
    /// In a closed loop, the first wave's size and the scheduling lateness (ms) of the
    /// requests after it (none when the run was no longer than the wave): the
    /// `--concurrency` requests due together at the start wait for one another's
    /// connections and writes, a start-up cost that, over a short run, would alone call a
    /// server-bound client behind.
    pub steady_lateness: Option<(u64, Option<crate::results::Stats>)>,
    /// Earliest start and latest end of the phase's requests, those cut off included.
    pub span: Option<(Nanos, Nanos)>,
    /// The phase's observation window: from when it began issuing (or its first request's
    /// start, if earlier or unknown) to its last request's end, or its duration's end if
    /// later. AIPerf's phase start and `requests_end_ns`: the summary's `start_time` and
    /// `end_time`, the time its rates are per second of, and the sweep-line window.
    pub window: Option<(Nanos, Nanos)>,
}

/// Summarizes one phase's records with a set of results processors of its own.
struct PhaseTally<R> {
    processors: Vec<R>,
    summary: PhaseSummary,
    /// A closed loop's first wave, its `--concurrency` requests all due at the start, and
    /// the scheduling lateness of the requests after it (see
    /// [`PhaseSummary::steady_lateness`]).
    first_wave: u64,
    steady_lateness: Vec<f64>,
}

impl<R: ResultsProcessorProtocol> PhaseTally<R> {
    fn new(processors: Vec<R>, first_wave: u64) -> Self {
        PhaseTally {
            processors,
            first_wave,
            steady_lateness: Vec::new(),
            summary: PhaseSummary {
                metrics: Vec::new(),
                error_summary: Vec::new(),
                total: 0,
                errors: 0,
                cut_off: 0,
                unsent: 0,
                unsent_first_intended_ns: None,
                steady_lateness: None,
                span: None,
                window: None,
            },
        }
    }

    fn add(&mut self, record: &ParsedRecord, metrics: &MetricRecord) {
        let s = &mut self.summary;
        if record.raw.was_kept_from_sending() {
            // Never sent: no part of the phase's traffic. Its record is written when its
            // task next runs, which after a stop can be seconds later (thousands wait for
            // connections), and that would stretch the window its rates are over.
            s.cut_off += 1;
            s.unsent += 1;
            let intended = record.raw.intended_ns;
            s.unsent_first_intended_ns = Some(
                s.unsent_first_intended_ns
                    .map_or(intended, |i| i.min(intended)),
            );
            return;
        }
        // A request cut off by the stop still extends the phase: AIPerf's phase ends
        // once its cancelled requests are back.
        let (start, end) = (record.raw.start_ns, record.raw.end_ns);
        s.span = Some(
            s.span
                .map_or((start, end), |(a, b)| (a.min(start), b.max(end))),
        );
        if record.raw.cut_off {
            s.cut_off += 1;
            return;
        }
        if self.first_wave > 0 && record.raw.credit_index >= self.first_wave {
            let lateness = crate::metrics::scheduling_lateness_ms(&record.raw);
            self.steady_lateness.push(lateness);
        }
        let s = &mut self.summary;
        s.total += 1;
        if let Some(err) = &record.error {
            s.errors += 1;
            match s
                .error_summary
                .iter_mut()
                .find(|e| e.error_details.same_group(err))
            {
                Some(entry) => entry.count += 1,
                None => s.error_summary.push(ErrorCount {
                    error_details: err.clone(),
                    count: 1,
                }),
            }
        }
        for processor in self.processors.iter_mut() {
            processor.process_result(record, metrics);
        }
    }

    /// `started`: when the phase began issuing, if it did; `until`: when its duration
    /// ended its issuing, if it did (AIPerf's phase then ends no earlier, even when its
    /// last request ended before).
    fn finish(mut self, started: Option<Nanos>, until: Option<Nanos>) -> PhaseSummary {
        let window = self.summary.span.map(|(first, last)| {
            let start = started.map_or(first, |s| s.min(first));
            (start, until.map_or(last, |u| u.max(last)))
        });
        self.summary.window = window;
        if self.first_wave > 0 {
            let stats = crate::metrics::stats(&self.steady_lateness);
            self.summary.steady_lateness = Some((self.first_wave, stats));
        }
        for processor in self.processors.iter_mut() {
            processor.summarize(window, &mut self.summary.metrics);
        }
        self.summary
            .error_summary
            .sort_by_key(|e| std::cmp::Reverse(e.count));
        self.summary
    }
}

/// The requests of a closed loop's first wave (`--concurrency` of them, sent at once), or
/// 0 when the run is paced (a rate, a schedule, users), which has no such wave.
fn closed_loop_wave(config: &crate::config::ProfileConfig) -> u64 {
    let mode = crate::plugin::normalize_name(&config.effective_timing_mode());
    match mode == "request_rate" && config.is_concurrency_burst() {
        true => u64::from(config.effective_concurrency().unwrap_or(1)),
        false => 0,
    }
}

/// What the record thread hands back when every worker is done.
pub(crate) struct PipelineOutput {
    pub profiling: PhaseSummary,
    /// The warmup phase's own summary, when the run had one (AIPerf's `warmup_metrics`).
    pub warmup: Option<PhaseSummary>,
    /// The profiling phase's time slices (`--slice-duration`), wall-clock stamped.
    pub timeslices: Vec<Timeslice>,
    /// Response events and the socket reads that carried them, over all requests.
    pub events: u64,
    pub reads: u64,
    /// Why `profile_export.jsonl` is incomplete, when it is.
    pub jsonl_error: Option<String>,
    /// The record thread's CPU and wall time while requests were in flight.
    pub report: super::health::WorkerReport,
    /// Seconds spent on the spooled records once the run had ended.
    pub after_run_s: f64,
}

pub(crate) struct PipelineSettings {
    pub config: ProfileConfig,
    pub clock: RunClock,
    pub records_path: PathBuf,
    /// `profile_export_raw.jsonl`, with `--export-level raw`.
    pub raw_path: Option<PathBuf>,
    /// Where the record spool goes while the run lasts (see [`super::spool`]); `None`
    /// processes each record as it comes.
    pub spool_dir: Option<PathBuf>,
    /// Session id of each dataset entry, for the records' `conversation_id`.
    pub conversation_ids: Vec<String>,
    /// The ids of conversations that are not held (composed on demand), by index.
    pub session_ids: crate::dataset::SessionIds,
    /// With `--slice-duration`: the run instant the first profiling request was issued
    /// (`u64::MAX` until then), published by the workers as they send. Records arrive as
    /// requests end, so the first to arrive may have started later than another.
    pub first_profiling_send: Option<Arc<AtomicU64>>,
    /// When each phase (warmup first, when there is one) began issuing, `u64::MAX` if it
    /// never did. Read once every worker is done.
    pub phase_starts: Arc<[AtomicU64]>,
    /// When a signal or `--failed-request-threshold` stopped the run (`u64::MAX`: never).
    pub stopped_at: Arc<AtomicU64>,
    /// Set once `--failed-request-threshold` is exceeded, for the run's outcome.
    pub failure_abort: Arc<AtomicBool>,
    /// Stops issuing and cancels the requests in flight, as the record that crosses
    /// `--failed-request-threshold` arrives (see [`FailureBrake`] for the workers' side):
    /// a main thread polling for it let dozens more requests out.
    pub abort_run: RunAbort,
}

/// `--failed-request-threshold`: whether the profiling phase's failures so far exceed
/// the share allowed, once `floor` records have arrived (so one early failure cannot end
/// a run), as AIPerf 0.13 judges it.
fn over_failure_threshold(threshold: f64, floor: u64, total: u64, errors: u64) -> bool {
    total >= floor.max(1) && errors as f64 / total as f64 > threshold
}

/// AIPerf 0.13's grace floor of `--failed-request-threshold`: the profiling records that
/// must have arrived before the share is judged.
pub(crate) fn failure_floor(config: &ProfileConfig) -> u64 {
    u64::from(config.concurrency.unwrap_or(0)).max(10)
}

/// AIPerf 0.13's warning when `--failed-request-threshold` ends a run, word for word, so
/// that whatever watches AIPerf's log for it finds ours.
fn failure_threshold_message(
    errors: u64,
    total: u64,
    threshold: f64,
    floor: u64,
    phase_index: usize,
) -> String {
    format!(
        "--failed-request-threshold exceeded: {errors}/{total} = {:.3} > {threshold:.3} \
         (grace floor {floor}, phase_index {phase_index}). Requesting PROFILE_CANCEL to \
         terminate the run.",
        errors as f64 / total as f64
    )
}

fn create_named<E: DispatchEnum>(name: &str, config: &ProfileConfig) -> Result<E, String> {
    let kind = E::Kind::from_name(name)
        .ok_or_else(|| format!("no {} plugin named `{name}` is linked", E::Kind::CATEGORY))?;
    create_kind(kind, config).map_err(|e| format!("{}:{}: {e}", E::Kind::CATEGORY, kind.name()))
}

fn create_kind<E: DispatchEnum>(kind: E::Kind, config: &ProfileConfig) -> Result<E, PluginError> {
    let ctx = PluginContext {
        config,
        entry: kind.entry(),
        worker: None,
    };
    E::create(kind, &ctx)
}

/// The tokenizer plugin serving `--tokenizer`: one named so, or one listing the value
/// among its metadata `aliases`.
pub(crate) fn tokenizer_plugin<P: PluginSet>(
    config: &ProfileConfig,
) -> Result<&'static str, String> {
    let wanted = crate::plugin::normalize_name(&config.tokenizer);
    let kinds = <P::Tokenizer as DispatchEnum>::Kind::all();
    let found = kinds.iter().find(|k| {
        crate::plugin::normalize_name(k.name()) == wanted
            || k.entry()
                .metadata::<crate::metadata::TokenizerMetadata>()
                .is_ok_and(|m| {
                    m.aliases
                        .iter()
                        .any(|a| crate::plugin::normalize_name(a) == wanted)
                })
    });
    match found {
        Some(k) => Ok(k.name()),
        // A lone tokenizer judges the name itself (e.g. a model name it knows).
        None if kinds.len() == 1 => Ok(kinds[0].name()),
        None => Err(format!(
            "no linked tokenizer serves `--tokenizer {}`; linked tokenizers: {}",
            config.tokenizer,
            kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Every linked plugin of a one-to-many category that does not opt out.
pub(crate) fn create_all<E: DispatchEnum>(config: &ProfileConfig) -> Result<Vec<E>, String> {
    let mut all = Vec::new();
    for &kind in E::Kind::all() {
        match create_kind::<E>(kind, config) {
            Ok(p) => all.push(p),
            Err(PluginError::Disabled(why)) => {
                tracing::debug!("{}:{} skipped: {why}", E::Kind::CATEGORY, kind.name())
            }
            Err(e) => return Err(format!("{}:{}: {e}", E::Kind::CATEGORY, kind.name())),
        }
    }
    Ok(all)
}

pub(crate) fn run_pipeline<P: PluginSet>(
    settings: PipelineSettings,
    rx: Receiver<(u64, Handoff)>,
    backlog: Arc<Backlog>,
) -> Result<PipelineOutput, String> {
    let backlog = CloseOnDrop(backlog);
    let (started, cpu_before) = (
        std::time::Instant::now(),
        super::health::thread_cpu_seconds(),
    );
    let config = &settings.config;
    let endpoint: P::Endpoint = create_named(&config.endpoint_type, config)?;
    let tokenizer: P::Tokenizer = create_named(tokenizer_plugin::<P>(config)?, config)?;
    let mut record_processors: Vec<P::RecordProcessor> = create_all(config)?;
    let first_wave = closed_loop_wave(config);
    let mut profiling = PhaseTally::new(create_all::<P::ResultsProcessor>(config)?, first_wave);
    let mut warmup = match config.has_warmup() {
        true => Some(PhaseTally::new(
            create_all::<P::ResultsProcessor>(config)?,
            0,
        )),
        false => None,
    };
    // AIPerf slices the profiling phase only; without the flag nothing here costs a thing.
    let mut slicer = config.slice_duration.map(|s| {
        let ns = (s * 1e9).round().clamp(1.0, u64::MAX as f64) as u64;
        Timeslicer::new(ns, config.goodput.is_some())
    });
    // A records file that cannot be written (a full disk) is reported at once and then
    // left alone: the run goes on and every record still reaches the metrics, so the
    // summary exporters have what they need.
    let mut jsonl_error = None;
    // A raw file that cannot be created is reported with the records' fate.
    let mut raw_error = None;
    let mut fail = |path: &std::path::Path, e: std::io::Error| {
        let message = format!("cannot write {}: {e}", path.display());
        tracing::error!(
            "{message}; per-request records are no longer written, the summary still counts them"
        );
        jsonl_error.get_or_insert(message);
    };
    let records_wanted = config.export_level.writes_records();
    let created = records_wanted.then(|| RecordWriter::create(&settings.records_path));
    let mut writer = match created {
        None => None,
        Some(Ok(mut writer)) => {
            writer.set_has_warmup(config.has_warmup());
            writer.set_conversation_ids(settings.conversation_ids);
            writer.set_session_ids(settings.session_ids);
            Some(writer)
        }
        Some(Err(e)) => {
            fail(&settings.records_path, e);
            None
        }
    };
    if let (Some(w), Some(path)) = (&mut writer, &settings.raw_path) {
        // Any `--header` may carry a credential; the ids are the records' own.
        let redact = super::ids::given_headers(&config.headers)
            .into_iter()
            .map(|(name, _)| name.to_ascii_lowercase())
            .filter(|name| name != "x-request-id" && name != "x-correlation-id")
            .collect();
        if let Err(e) = w.create_raw(path, redact) {
            let message = format!("cannot write {}: {e}", path.display());
            tracing::error!("{message}; raw exchanges are not written, the records are");
            raw_error = Some(message);
        }
    }

    let mut metrics = MetricRecord::default();
    let mut inputs = InputCounts::default();
    let (mut events, mut reads) = (0u64, 0u64);
    let failure_floor = failure_floor(config);
    // As AIPerf, on the first record that shows it (after the run when records are
    // spooled; at once otherwise, so a long run can be stopped early).
    let mut cache_hint_logged = false;
    let mut process = |step: Step| {
        let raw = match step {
            Step::Record(raw) => raw,
            Step::WriteOut => {
                // Whole blocks and the tail go to the file now; records after this one
                // are written as they come.
                if let Some(Err(e)) = writer.as_mut().map(RecordWriter::finish) {
                    fail(&settings.records_path, e);
                    writer = None;
                }
                return;
            }
        };
        events += raw.responses.len() as u64;
        reads += u64::from(raw.reads);
        let record = parse_record(
            &endpoint,
            &tokenizer,
            &mut inputs,
            raw,
            config.use_server_token_count,
        );
        metrics.clear();
        for processor in record_processors.iter_mut() {
            processor.process_record(&record, &mut metrics);
        }
        if !cache_hint_logged && crate::metrics::usage_without_cache_in_record(&metrics) {
            cache_hint_logged = true;
            tracing::warn!("{}", crate::metrics::CACHE_REPORTING_HINT);
        }
        if let Some(Err(e)) = writer
            .as_mut()
            .map(|w| w.write(&settings.clock, &record, &metrics))
        {
            fail(&settings.records_path, e);
            writer = None;
        }
        // Each phase's records go to that phase's own results processors.
        match (record.raw.phase, &mut warmup) {
            (Some(Phase::Profiling), _) => {
                profiling.add(&record, &metrics);
                if let Some(threshold) = config.failed_request_threshold {
                    let (total, errors) = (profiling.summary.total, profiling.summary.errors);
                    if !settings.failure_abort.load(Ordering::Relaxed)
                        && over_failure_threshold(threshold, failure_floor, total, errors)
                    {
                        // The profiling phase comes last, after any warmup.
                        let phase_index = settings.phase_starts.len().saturating_sub(1);
                        tracing::warn!(
                            "{}",
                            failure_threshold_message(
                                errors,
                                total,
                                threshold,
                                failure_floor,
                                phase_index
                            )
                        );
                        settings.failure_abort.store(true, Ordering::SeqCst);
                        settings.abort_run.fire();
                    }
                }
                if let Some(slicer) = slicer.as_mut().filter(|_| !record.raw.cut_off) {
                    if slicer.origin().is_none() {
                        // Every request that went out published its instant before it
                        // did, and its record reached this thread after that: only a
                        // record whose request never went out finds none.
                        let first = settings
                            .first_profiling_send
                            .as_ref()
                            .map(|f| f.load(Ordering::Acquire))
                            .filter(|&t| t != u64::MAX);
                        if let Some(first) = first {
                            slicer.anchor(first);
                        }
                    }
                    slicer.add(&record, &metrics);
                }
            }
            (Some(Phase::Warmup), Some(warmup)) => warmup.add(&record, &metrics),
            _ => {}
        }
    };
    // `--failed-request-threshold` judges each record as it comes (a failure only the
    // response's parse reveals must stop the run at once): those runs process live.
    let mut spool = match (config.failed_request_threshold, &settings.spool_dir) {
        (None, Some(dir)) => match Spool::create(dir) {
            Ok(spool) => Some(spool),
            Err(e) => {
                tracing::warn!(
                    "cannot create the record spool in {}: {e}; records are processed \
                     as they come",
                    dir.display()
                );
                None
            }
        },
        _ => None,
    };
    for item in received(rx) {
        // A stopped run may be killed next (`docker stop` sends SIGKILL 10 s after its
        // SIGTERM, within the grace period): what is spooled is written out now.
        if let Some(s) = spool
            .as_ref()
            .filter(|_| settings.stopped_at.load(Ordering::Relaxed) != u64::MAX)
        {
            tracing::info!(
                "the run was stopped: its {} spooled records are written now, and the rest \
                 as they come",
                s.len()
            );
            replay(spool.take(), &mut process)?;
            process(Step::WriteOut);
        }
        let Some((bytes, handoff)) = item else {
            continue;
        };
        let (records, pushed) = match &handoff {
            Handoff::Record(raw) => (1, spool.as_mut().map(|s| s.push(raw))),
            Handoff::Frames { bytes, records } => (
                *records,
                spool.as_mut().map(|s| s.push_frames(bytes, *records)),
            ),
        };
        match pushed {
            None => match handoff {
                Handoff::Record(raw) => process(Step::Record(raw)),
                Handoff::Frames { bytes, .. } => {
                    for raw in spool::frames(&bytes) {
                        process(Step::Record(raw?));
                    }
                }
            },
            Some(Ok(())) if spool.as_ref().is_some_and(Spool::full) => {
                drop(handoff);
                if let Some(s) = &spool {
                    tracing::info!(
                        "the record spool holds {:.1} MiB; its {} records are handled now, \
                         and the rest as they come",
                        s.bytes() as f64 / f64::from(1 << 20),
                        s.len()
                    );
                }
                replay(spool.take(), &mut process)?;
            }
            Some(Ok(())) => drop(handoff),
            Some(Err(e)) => {
                // Every record so far is in the spool (in its file, or still in memory):
                // processed now, in order, and the rest as they come.
                drop(handoff);
                tracing::warn!(
                    "cannot write the record spool: {e}; records are processed as they come"
                );
                replay(spool.take(), &mut process)?;
            }
        }
        // Its memory is free once it is dropped, so it leaves the backlog only now.
        backlog.0.taken(records, bytes);
    }
    // The thread's share of the run: what the client health judges.
    let during_run = super::health::WorkerReport {
        cpu_s: super::health::thread_cpu_seconds() - cpu_before,
        wall_s: started.elapsed().as_secs_f64(),
    };
    let mut after_run_s = 0.0;
    if let Some(spool) = spool {
        tracing::info!("run ended; processing {} records", spool.len());
        let from = std::time::Instant::now();
        replay(Some(spool), &mut process)?;
        after_run_s = from.elapsed().as_secs_f64();
    }
    if let Some(w) = &mut writer {
        if let Err(e) = w.finish() {
            fail(&settings.records_path, e);
        }
        if let Some(raw) = w.raw_error() {
            jsonl_error.get_or_insert_with(|| raw.to_owned());
        }
    }

    let clock = settings.clock;
    // The record channel closes when the last worker ends, after every phase's start.
    let phase_start = |i: usize| {
        let at = settings.phase_starts.get(i)?.load(Ordering::SeqCst);
        (at != u64::MAX).then_some(at)
    };
    let profiling_idx = settings.phase_starts.len().saturating_sub(1);
    let stopped_at = settings.stopped_at.load(Ordering::SeqCst);
    // Where a phase's duration ended its issuing: its start plus the duration, unless the
    // run was stopped before, or the phase's count ended it first.
    let until =
        |summary: &PhaseSummary, start: Option<Nanos>, seconds: Option<f64>, count: Option<u64>| {
            if count.is_some_and(|c| summary.total + summary.cut_off >= c) {
                return None;
            }
            let end = start?.saturating_add((seconds? * 1e9) as u64);
            Some(end.min(stopped_at))
        };
    let profiling_start = phase_start(profiling_idx);
    let profiling_until = until(
        &profiling.summary,
        profiling_start,
        config.benchmark_duration,
        config.effective_request_count(),
    );
    let warmup = warmup.map(|w| {
        let count = (config.warmup_request_count > 0).then_some(config.warmup_request_count);
        let until = until(&w.summary, phase_start(0), config.warmup_duration, count);
        w.finish(phase_start(0), until)
    });
    Ok(PipelineOutput {
        profiling: profiling.finish(profiling_start, profiling_until),
        warmup,
        timeslices: slicer.map_or_else(Vec::new, |s| s.finish(|t| clock.wall_ns(t))),
        events,
        reads,
        jsonl_error: jsonl_error.or(raw_error),
        report: during_run,
        after_run_s,
    })
}

/// Hands every record of `spool` to `process`, in the order they came.
fn replay(spool: Option<Spool>, process: &mut impl FnMut(Step)) -> Result<(), String> {
    let Some(spool) = spool else {
        return Ok(());
    };
    let records = spool
        .replay()
        .map_err(|e| format!("cannot read the record spool back: {e}"))?;
    for record in records {
        process(Step::Record(record?));
    }
    Ok(())
}

/// What the record thread's handling is asked to do.
// Passed by value and never stored: boxing the record would add an allocation per record.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// Parse, count, export and summarize a record.
    Record(RequestRecord),
    /// Write every record handled so far to the records file (it keeps up to a block in
    /// memory otherwise).
    WriteOut,
}

/// The input token counts of the sessions whose turns send their history, so that a
/// turn counts only what it adds to the previous one's input.
///
/// A later turn's input is the earlier turn's, a space, then the reply and the new turn
/// (as the worker joins them), and AIPerf counts all of it again at every turn: over a
/// conversation, counting grew with the square of its length. Where the tokenizer allows
/// it ([`TokenizerProtocol::counts_add_at_spaces`]), each session's last input is kept as
/// its length, a hash of its bytes and its count, and a turn whose input starts with
/// those bytes and a space counts only the rest. A session is known by its correlation
/// id; ids shared between sessions (a `--header X-Correlation-ID`) only miss, since the
/// bytes are checked.
#[derive(Default)]
pub(crate) struct InputCounts {
    sessions: std::collections::HashMap<String, CountedInput>,
}

struct CountedInput {
    len: usize,
    hash: u64,
    tokens: u64,
}

fn hash_of(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl InputCounts {
    /// The tokens of `text`, the input of a turn of session `session`; `last`: the
    /// session sends no more turns.
    fn count<T: TokenizerProtocol>(
        &mut self,
        tokenizer: &T,
        session: &str,
        text: &str,
        last: bool,
    ) -> u64 {
        if !tokenizer.counts_add_at_spaces() {
            return tokenizer.count(text) as u64;
        }
        let known = self.sessions.remove(session).and_then(|prev| {
            let (head, rest) = (text.get(..prev.len)?, text.get(prev.len..)?);
            let follows = rest.starts_with(' ')
                && head.chars().next_back().is_some_and(|c| !c.is_whitespace())
                && hash_of(head.as_bytes()) == prev.hash;
            follows.then(|| prev.tokens + tokenizer.count(rest) as u64)
        });
        let tokens = known.unwrap_or_else(|| tokenizer.count(text) as u64);
        if !last {
            let counted = CountedInput {
                len: text.len(),
                hash: hash_of(text.as_bytes()),
                tokens,
            };
            self.sessions.insert(session.to_owned(), counted);
        }
        tokens
    }
}

/// Reads the responses with the endpoint, settles the outcome and counts tokens.
pub(crate) fn parse_record<E: EndpointProtocol, T: TokenizerProtocol>(
    endpoint: &E,
    tokenizer: &T,
    inputs: &mut InputCounts,
    raw: RequestRecord,
    use_server_token_count: bool,
) -> ParsedRecord {
    let mut results = Vec::with_capacity(raw.responses.len());
    endpoint.parse_responses(&raw.responses, &mut results);
    let mut responses: Vec<ParsedResponse> = Vec::with_capacity(results.len());
    let mut inband: Option<ErrorDetails> = None;
    for result in results {
        match result {
            Ok(Some(parsed)) => responses.push(parsed),
            Ok(None) => {}
            Err(err) => {
                inband.get_or_insert(err);
            }
        }
    }

    let (outcome, error) = match (raw.outcome, &raw.error, inband) {
        (Some(outcome), err, _) => (
            outcome,
            err.clone().or_else(|| outcome.default_error(raw.status)),
        ),
        (None, _, Some(err)) => (Outcome::InbandError, Some(err)),
        // Nothing a user would see, however the stream ended: AIPerf's error for it. A
        // body (even empty) is a response unit to AIPerf; an event stream's units are its
        // events, so one of no bytes had none.
        (None, _, None) if !responses.iter().any(|r| r.data.is_content()) => (
            Outcome::EmptyOutput,
            Some(ErrorDetails::no_content(
                !raw.event_stream || raw.body_bytes_received > 0,
            )),
        ),
        // BC-06: a stream may end without `[DONE]` when it said it finished; a clean end
        // with neither was cut short (a proxy or server gave up mid-generation).
        (None, _, None) if raw.event_stream && !raw.stream_finished() => (
            Outcome::Truncated,
            Some(ErrorDetails::new(
                None,
                "TruncatedStream",
                "the event stream ended without [DONE] or a finish reason",
            )),
        ),
        (None, _, None) => (Outcome::Success, None),
    };

    let mut output = String::new();
    let mut reasoning = String::new();
    let mut usage = None;
    // AIPerf counts the text of every response that carried data, so an embeddings or
    // rankings answer (no text) counts 0 output tokens, and a record without one none.
    let has_data = responses
        .iter()
        .any(|r| !matches!(r.data, ResponseData::Empty));
    for r in &responses {
        match &r.data {
            ResponseData::Text(t) => output.push_str(t),
            ResponseData::Reasoning {
                content,
                reasoning: think,
            } => {
                output.push_str(content);
                reasoning.push_str(think);
            }
            _ => {}
        }
        if r.usage.is_some() {
            usage = r.usage;
        }
    }
    if !endpoint.metadata().supports_audio {
        usage = usage.map(crate::record::Usage::without_audio);
        for r in responses.iter_mut().filter(|r| r.usage.is_some()) {
            r.usage = r.usage.map(crate::record::Usage::without_audio);
        }
    }
    let produces_tokens = endpoint.metadata().produces_tokens;
    let (input_tokens, output_tokens, reasoning_tokens) = if use_server_token_count {
        // --use-server-token-count: the last usage block, as AIPerf reads it; output is
        // completion minus reasoning. Nothing is tokenized.
        let reasoning = usage
            .and_then(|u| u.reasoning_tokens)
            .filter(|_| produces_tokens);
        let output = usage
            .and_then(|u| u.completion_tokens)
            .filter(|_| produces_tokens)
            .map(|c| c.saturating_sub(reasoning.unwrap_or(0)));
        (usage.and_then(|u| u.prompt_tokens), output, reasoning)
    } else {
        let count = |text: &str| (produces_tokens).then(|| tokenizer.count(text) as u64);
        let reasoning = if reasoning.is_empty() {
            None
        } else {
            count(&reasoning)
        };
        let last = raw.final_turn != Some(false);
        let input = raw.input_tokens.map(u64::from).or_else(|| {
            let text = raw.input_text.as_deref()?;
            Some(inputs.count(tokenizer, &raw.x_correlation_id, text, last))
        });
        let output = if produces_tokens {
            count(&output)
        } else {
            // AIPerf's usage comparison needs the output length, so it has one even for
            // an endpoint that produces no tokens (its `output_sequence_length`, 0).
            has_data.then(|| match output.as_str() {
                "" => 0,
                text => tokenizer.count(text) as u64,
            })
        };
        (input, output, reasoning)
    };
    ParsedRecord {
        produces_tokens,
        input_tokens,
        output_tokens,
        reasoning_tokens,
        usage,
        outcome,
        error,
        responses,
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ResponseChunk;

    #[test]
    fn the_failure_threshold_waits_for_its_floor() {
        // 10 of 10 failed, but only 9 had arrived before: not yet judged.
        assert!(!over_failure_threshold(0.5, 10, 9, 9));
        assert!(over_failure_threshold(0.5, 10, 10, 6));
        // "Exceeds": exactly the share is allowed.
        assert!(!over_failure_threshold(0.5, 10, 10, 5));
        assert!(!over_failure_threshold(1.0, 10, 50, 50));
        assert!(over_failure_threshold(0.0, 10, 64, 1));
    }

    /// The workers' brake counts the profiling records they can tell failed (an error
    /// status, no response; not a success, a warmup record or one cut off by a stop) and
    /// stops the run once, at the record that crosses the threshold past its floor.
    #[test]
    fn the_failure_brake_trips_once_at_the_crossing_record() {
        let (mut tx, rx, _) = record_channel();
        let abort = RunAbort::default();
        tx.set_failure_brake(Arc::new(FailureBrake::new(0.3, 10, abort.clone())));
        let sent = |phase: Phase, outcome: Option<Outcome>, cut_off: bool| RequestRecord {
            phase: Some(phase),
            outcome,
            cut_off,
            ..RequestRecord::default()
        };
        // Not counted: warmup failures, and a profiling one the stop cut off.
        tx.send(sent(Phase::Warmup, Some(Outcome::HttpError), false));
        tx.send(sent(Phase::Profiling, Some(Outcome::Cancelled), true));
        for i in 0..9 {
            let outcome = [Some(Outcome::Success), None, Some(Outcome::HttpError)][i % 3];
            tx.send(sent(Phase::Profiling, outcome, false));
        }
        // 3 of 9 failed: under the floor of 10, not judged yet.
        assert_eq!(abort.fired(), 0);
        tx.send(sent(
            Phase::Profiling,
            Some(Outcome::ConnectionError),
            false,
        ));
        // 4 of 10 > 0.3.
        assert_eq!(abort.fired(), 1);
        tx.send(sent(Phase::Profiling, Some(Outcome::Timeout), false));
        assert_eq!(abort.fired(), 1, "it trips once");
        drop(tx);
        assert_eq!(received(rx).count(), 13, "every record still goes through");
    }

    #[test]
    fn the_failure_threshold_message_is_aiperf_s() {
        assert_eq!(
            failure_threshold_message(5, 10, 0.3, 10, 0),
            "--failed-request-threshold exceeded: 5/10 = 0.500 > 0.300 (grace floor 10, \
             phase_index 0). Requesting PROFILE_CANCEL to terminate the run."
        );
        assert_eq!(
            failure_threshold_message(2, 3, 0.5, 64, 1),
            "--failed-request-threshold exceeded: 2/3 = 0.667 > 0.500 (grace floor 64, \
             phase_index 1). Requesting PROFILE_CANCEL to terminate the run."
        );
    }

    fn record(credit: u64, body: usize) -> RequestRecord {
        RequestRecord {
            credit_index: credit,
            responses: vec![ResponseChunk {
                recv_ns: 0,
                first_byte_ns: 0,
                event: None,
                data: vec![b'x'; body],
            }],
            ..RequestRecord::default()
        }
    }

    /// Every record arrives once and in order, whether it was waiting, came during a nap
    /// or came long after the channel ran dry (the receive then blocks); the iterator ends
    /// when the last sender is gone.
    #[test]
    fn received_takes_every_record_in_order_and_ends_with_the_senders() {
        let (tx, rx) = mpsc::channel();
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        let sender = std::thread::spawn(move || {
            for (i, pause) in [(3, 0), (4, 1), (5, 5), (6, 20)] {
                std::thread::sleep(Duration::from_millis(pause));
                tx.send(i).unwrap();
            }
        });
        let got: Vec<i32> = received(rx).flatten().collect();
        sender.join().unwrap();
        assert_eq!(got, (0..7).collect::<Vec<_>>());
    }

    /// With nothing coming, the receive gives way every [`RECORD_IDLE_LOOK`] (so a stop
    /// is seen without a record), and still takes the record that comes later.
    #[test]
    fn an_idle_channel_gives_way_and_then_delivers() {
        let (tx, rx) = mpsc::channel();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(RECORD_IDLE_LOOK * 3);
            tx.send(7).unwrap();
        });
        let got: Vec<Option<i32>> = received(rx).collect();
        sender.join().unwrap();
        let ticks = got.iter().filter(|x| x.is_none()).count();
        assert!((1..=3).contains(&ticks), "{got:?}");
        assert_eq!(got.last(), Some(&Some(7)), "{got:?}");
    }

    /// Past the high mark a worker waits (without blocking its thread) until the record
    /// thread has drained the backlog below the low mark; every record gets through, the
    /// wait is counted, and under the mark there is no wait at all.
    #[test]
    fn a_full_backlog_holds_back_new_requests_until_drained() {
        let (tx, rx, backlog) = record_channel();
        let clock = RunClock::new();
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        const MIB: usize = 1 << 20;
        rt.block_on(tx.room(&clock));
        assert_eq!(backlog.report().waits, 0);
        let sent = (BACKLOG_HIGH_BYTES as usize / MIB) as u64 + 2;
        for credit in 0..sent {
            tx.send(record(credit, MIB));
        }
        let report = backlog.report();
        assert_eq!(report.peak_records, sent);
        assert!(report.peak_bytes >= sent * MIB as u64, "{report:?}");

        // A slow record thread: one record every 5 ms; the backlog after each, and when.
        let drainer = std::thread::spawn(move || {
            let mut taken = Vec::new();
            for (bytes, handoff) in rx {
                std::thread::sleep(Duration::from_millis(5));
                let Handoff::Record(raw) = handoff else {
                    panic!("records one at a time");
                };
                let credit = raw.credit_index;
                drop(raw);
                // Timed before the backlog shrinks: the worker cannot see it any earlier.
                let at = clock.now();
                backlog.taken(1, bytes);
                let queued = backlog.queued_bytes.load(Ordering::Relaxed);
                taken.push((credit, queued, at));
            }
            (taken, backlog)
        });
        rt.block_on(tx.room(&clock));
        let resumed = clock.now();
        drop(tx);
        let (taken, backlog) = drainer.join().expect("drainer");
        assert_eq!(
            taken.iter().map(|t| t.0).collect::<Vec<_>>(),
            (0..sent).collect::<Vec<_>>()
        );
        // The worker resumed only once the backlog was under the low mark.
        let under_low = taken.iter().find(|t| t.1 < BACKLOG_LOW_BYTES).map(|t| t.2);
        assert!(
            under_low.is_some_and(|t| resumed >= t),
            "{taken:?} {resumed}"
        );
        let report = backlog.report();
        assert_eq!(report.waits, 1);
        assert!(report.waited_s > 0.01, "{report:?}");
        assert_eq!(backlog.queued_bytes.load(Ordering::Relaxed), 0);
    }

    /// A record thread that stopped (failed) never leaves a worker waiting.
    #[test]
    fn a_stopped_record_thread_releases_waiting_workers() {
        let (tx, rx, backlog) = record_channel();
        let clock = RunClock::new();
        for credit in 0..10 {
            tx.send(record(credit, 1 << 20));
        }
        drop(CloseOnDrop(backlog.clone()));
        drop(rx);
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(tx.room(&clock));
        // Sends after that are dropped with the channel, and not counted as waiting.
        let before = backlog.queued_bytes.load(Ordering::Relaxed);
        tx.send(record(10, 1 << 20));
        assert_eq!(backlog.queued_bytes.load(Ordering::Relaxed), before);
    }

    /// Credits of the records `rx` holds now, one list per hand-off.
    fn handed_over(rx: &Receiver<(u64, Handoff)>) -> Vec<Vec<u64>> {
        rx.try_iter()
            .map(|(_, handoff)| match handoff {
                Handoff::Record(r) => vec![r.credit_index],
                Handoff::Frames { bytes, records } => {
                    let credits: Vec<_> = spool::frames(&bytes)
                        .map(|r| r.expect("record").credit_index)
                        .collect();
                    assert_eq!(credits.len() as u64, records);
                    credits
                }
            })
            .collect()
    }

    /// A worker's records go over framed, one block per turn of its executor (after the
    /// tasks that turn ran), at once when the block is large, and whatever is left when
    /// the sender goes; each once, in the order the worker ended them.
    #[test]
    fn framed_records_go_over_a_block_per_turn_in_order() {
        let (mut tx, rx, backlog) = record_channel();
        tx.frame_in_blocks();
        let worker = Rc::new(tx.clone());
        drop(tx);
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .expect("runtime");
        rt.block_on(async {
            for credit in 0..3 {
                worker.send_framed(record(credit, 100));
            }
            assert!(handed_over(&rx).is_empty(), "not before the turn ends");
            monoio::spawn(async {}).await;
            assert_eq!(handed_over(&rx), [vec![0, 1, 2]]);
            assert_eq!(backlog.queued.load(Ordering::Relaxed), 3);
            // A block past its size goes over at once, the rest at the turn's end.
            worker.send_framed(record(3, BLOCK_BYTES));
            worker.send_framed(record(4, 10));
            assert_eq!(handed_over(&rx), [vec![3]]);
            monoio::spawn(async {}).await;
            assert_eq!(handed_over(&rx), [vec![4]]);
            worker.send_framed(record(5, 10));
        });
        // The task that would have handed record 5 over never ran: the sender does, as
        // it goes, and the channel then closes.
        drop(rt);
        drop(worker);
        assert_eq!(handed_over(&rx), [vec![5]]);
        assert!(rx.recv().is_err(), "every sender is gone");
    }

    /// Without blocks (a record thread that judges each record as it comes), each record
    /// goes over by itself, at once.
    #[test]
    fn unframed_records_go_over_one_at_a_time() {
        let (tx, rx, _) = record_channel();
        let worker = Rc::new(tx);
        worker.send_framed(record(0, 10));
        worker.send_framed(record(1, 10));
        assert_eq!(handed_over(&rx), [vec![0], vec![1]]);
    }
}

#[cfg(test)]
mod token_count_tests {
    use super::*;
    use crate::dataset::Turn;
    use crate::metadata::EndpointMetadata;
    use crate::plugin::PluginError;
    use crate::record::{ResponseChunk, Usage};

    /// Answers every unit with one embedding and the server's usage.
    struct Embeddings(EndpointMetadata);

    impl EndpointProtocol for Embeddings {
        fn metadata(&self) -> &EndpointMetadata {
            &self.0
        }
        fn format_payload(&self, _: &Turn, _: &mut Vec<u8>) -> Result<(), PluginError> {
            Ok(())
        }
        fn request_headers(&self, _: &mut Vec<(String, String)>) {}
        fn parse_response(
            &self,
            chunk: &ResponseChunk,
        ) -> Result<Option<ParsedResponse>, ErrorDetails> {
            let data = match chunk.data.as_slice() {
                b"usage" => ResponseData::Empty,
                _ => ResponseData::Embeddings { count: 1 },
            };
            let usage = Usage {
                prompt_tokens: Some(7),
                completion_tokens: Some(3),
                prompt_audio_tokens: Some(2),
                tool_use_prompt_tokens: Some(1),
                ..Usage::default()
            };
            Ok(Some(ParsedResponse {
                recv_ns: chunk.recv_ns,
                data,
                usage: Some(usage),
            }))
        }
    }

    /// One token per word.
    struct Words;

    impl TokenizerProtocol for Words {
        fn count(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
        fn encode(&self, _: &str) -> Vec<u32> {
            Vec::new()
        }
        fn decode(&self, _: &[u32]) -> String {
            String::new()
        }
        fn vocab_size(&self) -> u32 {
            1
        }
    }

    fn endpoint(produces_tokens: bool) -> Embeddings {
        let metadata = serde_json::json!({
            "metrics_title": null, "endpoint_path": null, "supports_streaming": false,
            "tokenizes_input": true, "produces_tokens": produces_tokens,
        });
        Embeddings(serde_json::from_value(metadata).expect("metadata"))
    }

    fn raw(units: &[&str]) -> RequestRecord {
        RequestRecord {
            input_text: Some("three word prompt".into()),
            responses: units
                .iter()
                .map(|u| ResponseChunk {
                    recv_ns: 5,
                    first_byte_ns: 5,
                    event: None,
                    data: u.as_bytes().to_vec(),
                })
                .collect(),
            ..RequestRecord::default()
        }
    }

    /// Counts bytes, and how many it was asked to count: a tokenizer whose counts add
    /// anywhere, to see what the record thread tokenizes.
    #[derive(Default)]
    struct Bytes(std::cell::Cell<usize>);

    impl TokenizerProtocol for Bytes {
        fn count(&self, text: &str) -> usize {
            self.0.set(self.0.get() + text.len());
            text.len()
        }
        fn encode(&self, _: &str) -> Vec<u32> {
            Vec::new()
        }
        fn decode(&self, _: &[u32]) -> String {
            String::new()
        }
        fn vocab_size(&self) -> u32 {
            1
        }
        fn counts_add_at_spaces(&self) -> bool {
            true
        }
    }

    /// A later turn counts only what it adds to the session's previous input, when that
    /// input is exactly its start and a space follows a character that is not one; any
    /// other turn is counted whole, and a session's last turn is forgotten.
    #[test]
    fn a_later_turn_counts_what_it_adds() {
        let bytes = Bytes::default();
        let mut inputs = InputCounts::default();
        let mut count = |session: &str, text: &str, last: bool| {
            let before = bytes.0.get();
            let n = inputs.count(&bytes, session, text, last);
            (n, bytes.0.get() - before)
        };
        assert_eq!(count("s", "ab", false), (2, 2));
        assert_eq!(count("s", "ab cd", false), (5, 3), "only ` cd` is counted");
        assert_eq!(count("s", "ab cd ef", false), (8, 3));
        // Not the previous input's bytes: counted whole (and remembered).
        assert_eq!(count("s", "xy cd ef gh", false), (11, 11));
        // Another session, or the previous input not followed by a space.
        assert_eq!(count("t", "xy cd ef gh ij", false), (14, 14));
        assert_eq!(count("s", "xy cd ef ghij", false), (13, 13));
        // The previous input ends in whitespace: its last piece may merge.
        assert_eq!(count("u", "ab ", false), (3, 3));
        assert_eq!(count("u", "ab  c", false), (5, 5));
        // The last turn uses the session's count and forgets it.
        assert_eq!(count("s", "xy cd ef ghij kl", true), (16, 3));
        assert_eq!(count("s", "xy cd ef ghij kl mn", false), (19, 19));
        // A tokenizer without the property always counts whole.
        let mut inputs = InputCounts::default();
        assert_eq!(inputs.count(&Words, "w", "a b", false), 2);
        assert_eq!(inputs.count(&Words, "w", "a b c", false), 3);
        assert!(inputs.sessions.is_empty());
    }

    /// AIPerf counts the (empty) text of an embeddings answer: 0 output tokens, which
    /// becomes its output_sequence_length; a record with no data has no count, and with
    /// the server's counts an endpoint that produces no tokens has none either.
    #[test]
    fn an_endpoint_without_tokens_counts_zero_output_tokens_on_the_client() {
        let r = parse_record(
            &endpoint(false),
            &Words,
            &mut InputCounts::default(),
            raw(&["{}"]),
            false,
        );
        assert!(!r.produces_tokens);
        assert_eq!(r.outcome, Outcome::Success);
        assert_eq!(
            (r.input_tokens, r.output_tokens, r.reasoning_tokens),
            (Some(3), Some(0), None)
        );

        let r = parse_record(
            &endpoint(false),
            &Words,
            &mut InputCounts::default(),
            raw(&["usage"]),
            false,
        );
        assert_eq!(r.outcome, Outcome::EmptyOutput);
        assert_eq!(r.output_tokens, None);

        let r = parse_record(
            &endpoint(false),
            &Words,
            &mut InputCounts::default(),
            raw(&["{}"]),
            true,
        );
        assert_eq!(
            (r.input_tokens, r.output_tokens, r.reasoning_tokens),
            (Some(7), None, None)
        );

        let r = parse_record(
            &endpoint(true),
            &Words,
            &mut InputCounts::default(),
            raw(&["{}"]),
            true,
        );
        assert!(r.produces_tokens);
        assert_eq!((r.input_tokens, r.output_tokens), (Some(7), Some(3)));
    }

    /// AIPerf reports the server's audio counts only for endpoints that send audio: the
    /// record and each response keep them then alone; the other counts stay.
    #[test]
    fn audio_usage_is_kept_only_for_endpoints_that_send_audio() {
        let audio = |supports_audio: bool| {
            let metadata = serde_json::json!({
                "metrics_title": null, "endpoint_path": null, "supports_streaming": false,
                "tokenizes_input": true, "produces_tokens": true,
                "supports_audio": supports_audio,
            });
            let endpoint = Embeddings(serde_json::from_value(metadata).expect("metadata"));
            let r = parse_record(
                &endpoint,
                &Words,
                &mut InputCounts::default(),
                raw(&["{}"]),
                false,
            );
            let usage = r.usage.expect("usage");
            assert_eq!(r.responses[0].usage, Some(usage));
            assert_eq!(usage.tool_use_prompt_tokens, Some(1));
            usage.prompt_audio_tokens
        };
        assert_eq!(audio(true), Some(2));
        assert_eq!(audio(false), None);
    }

    /// Nothing a user would see is AIPerf's `InvalidInferenceResultError`, whose words say
    /// whether any unit came; an event stream that ended without `[DONE]` is first that.
    #[test]
    fn a_response_without_content_is_aiperf_s_invalid_result() {
        let parse = |raw| {
            parse_record(
                &endpoint(true),
                &Words,
                &mut InputCounts::default(),
                raw,
                false,
            )
        };
        let invalid = |note: &str| {
            Some(ErrorDetails::exception(
                "InvalidInferenceResultError",
                format!("InvalidInferenceResultError('Invalid inference result: {note}')"),
                None,
                &["InvalidInferenceResultError"],
            ))
        };
        let no_content = invalid(
            "No responses with actual content were received from the server (only \
             usage/metadata, null/empty data, or [DONE] markers)",
        );
        // A body without content.
        let r = parse(raw(&["usage"]));
        assert_eq!(
            (r.outcome, r.error),
            (Outcome::EmptyOutput, no_content.clone())
        );
        // An empty body is still a response unit to AIPerf.
        let r = parse(raw(&[]));
        assert_eq!(
            (r.outcome, r.error),
            (Outcome::EmptyOutput, no_content.clone())
        );
        // An event stream with bytes but no content, ended without `[DONE]`.
        let mut stream = raw(&["usage"]);
        stream.event_stream = true;
        stream.body_bytes_received = 13;
        let r = parse(stream);
        assert_eq!((r.outcome, r.error), (Outcome::EmptyOutput, no_content));
        // An event stream of no bytes at all.
        let mut stream = raw(&[]);
        stream.event_stream = true;
        let r = parse(stream);
        let none = invalid("No responses were received");
        assert_eq!((r.outcome, r.error), (Outcome::EmptyOutput, none));
        // Content, then an end with neither `[DONE]` nor a finish reason.
        let mut stream = raw(&["{}"]);
        stream.event_stream = true;
        stream.body_bytes_received = 8;
        let r = parse(stream);
        let truncated = ErrorDetails::new(
            None,
            "TruncatedStream",
            "the event stream ended without [DONE] or a finish reason",
        );
        assert_eq!((r.outcome, r.error), (Outcome::Truncated, Some(truncated)));
    }
}
