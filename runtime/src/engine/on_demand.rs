//! Synthetic datasets composed while the run goes.
//!
//! AIPerf composes one conversation per request asked for (`--request-count 100000` makes
//! 100,000 unique prompts), so a server's prefix cache never hits on a repeated prompt.
//! Held at once, such a dataset costs its text twice (the prompts and the request bodies):
//! about 250 MB at 100,000 prompts of 100 tokens. A composer that can make each
//! conversation from its index alone ([`DatasetComposerProtocol::entries`]) is instead
//! asked for them in the order sessions take them, on the preparation thread, a bounded
//! queue ahead of the workers; a conversation is dropped once its session has ended.
//!
//! The preparation thread draws the conversations of the run's sessions in order (the
//! sampler answers from the draw alone, see [`DatasetSamplerProtocol`]), and the workers
//! take them from the front of the queue, so the n-th session sends the n-th draw's
//! conversation as it would with the dataset held.
//!
//! A user-centric run's strategy hands each session its draw ([`NextCredit::Turn`]'s
//! `draw`): the users take the draws in order, but the opening users (AIPerf's steady
//! state) start in another order than their draws, and workers run a little apart. The
//! queue is then read by draw ([`Order::ByDraw`]): each session takes its own, and the
//! queue spans enough draws that the opening users' all fit (see [`Order`]).
//!
//! A conversation with an image or audio clip is slow to make (a 128x128 image: about
//! 0.5 ms, so one thread made at most 1,800 a second). Such a run
//! composes on several threads ([`composers`]): each claims the next few draws, and the
//! batches go into the queue in draw order however the threads finish, so the queue
//! holds what one thread would have put there.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::config::ProfileConfig;
use crate::dataset::Conversation;
use crate::engine::cancel::{race, CancelSignal, Either};
use crate::engine::run::{create, with_context_tokens, RequestTemplate, Staged};
use crate::engine::worker::{PreparedRequest, Shared};
use crate::plugin::PluginSet;
#[cfg(doc)]
use crate::protocols::NextCredit;
use crate::protocols::{DatasetComposerProtocol, DatasetSamplerProtocol, EndpointProtocol};

/// Conversations composed ahead of the workers: at 50,000 requests/s, 20 ms of sessions,
/// and about 2 MB of prompts and bodies at 100 tokens each.
const QUEUE_DEPTH: usize = 1024;

/// And at most this many bytes of them (but always one): long prompts make fewer.
const QUEUE_BYTES: usize = 8 << 20;

/// The composing threads are woken when the queue is down to half of both (past its
/// reserve, see [`Order::ByDraw`]), not at every take: a wake is a system call, which
/// every request would pay.
const LOW_WATER: (usize, usize) = (QUEUE_DEPTH / 2, QUEUE_BYTES / 2);

/// How long a composing thread sleeps at most with a full queue, to notice the run's end
/// (or a wake it missed) without being told.
const IDLE_WAIT: Duration = Duration::from_millis(5);

/// How a worker waits for a conversation the composing threads have not made yet.
const EMPTY_POLL: Duration = Duration::from_micros(200);

/// How the main thread waits for the first conversations, before the workers start.
const READY_POLL: Duration = Duration::from_micros(100);

/// Draws a composing thread claims at a time. Batches keep the lock's traffic low; small
/// ones keep the workers fed when each conversation is slow to make (images, audio: 64 at
/// a time starved them).
const BATCH: u64 = 8;

/// Composing threads at most, so that a machine of many cores does not hold a composer
/// (and a heap arena) per core: four make some 7,000 images of 128x128 a second, at the
/// 0.55 ms of CPU one takes.
const MAX_COMPOSERS: usize = 4;

/// How sessions take the conversations composed on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Each new session takes the next draw (the engine draws: rate and concurrency runs).
    Next,
    /// Each session takes the draw its timing strategy gives it. The draws a session may
    /// ask for first lie up to `reserve` past the first one not taken yet (a user-centric
    /// run's opening users: `--num-users` + 1 draws, started in another order), so the
    /// queue spans that many draws whatever their bytes (else the first session would
    /// wait for a draw the full queue left no room for), and [`QUEUE_DEPTH`] more
    /// within [`QUEUE_BYTES`].
    ByDraw { reserve: usize },
}

impl Order {
    fn reserve(self) -> usize {
        match self {
            Order::Next => 0,
            Order::ByDraw { reserve } => reserve,
        }
    }
}

/// A composed conversation, its requests prepared, for one session.
pub(crate) struct Entry {
    /// The conversation's index in the dataset.
    pub index: usize,
    pub conversation: Conversation,
    /// The conversation's turns, in order.
    pub requests: Vec<PreparedRequest>,
    /// About what the entry holds: its texts and its requests' bytes.
    bytes: usize,
}

/// Work handed out in order to several threads and given back in order however they
/// finish: positions (draws, or conversations of `inputs.json`) are claimed a few at a
/// time, and what a claim made is released once everything claimed before it has been.
struct Lane<T> {
    /// The next position to hand out.
    claimed: u64,
    /// The first position not released yet.
    next: u64,
    /// What was made ahead of an earlier claim still being made, by its first position:
    /// its positions, its bytes and itself.
    ahead: BTreeMap<u64, (u64, usize, T)>,
    /// The positions and bytes `ahead` holds.
    ahead_len: u64,
    ahead_bytes: usize,
    /// The bytes of a position made lately: what one still being made is counted for.
    estimate: usize,
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Lane {
            claimed: 0,
            next: 0,
            ahead: BTreeMap::new(),
            ahead_len: 0,
            ahead_bytes: 0,
            estimate: 0,
        }
    }
}

impl<T> Lane<T> {
    /// How many positions may be claimed now, with `held` positions (`held_bytes`)
    /// released and not used yet: what is held, ahead and being made stays within
    /// `reserve` positions, or else [`QUEUE_DEPTH`] more and [`QUEUE_BYTES`] (but always
    /// one), at most [`BATCH`] at a time, and one at a time until a first one made tells
    /// what a position costs.
    fn room(&self, held: usize, held_bytes: usize, reserve: usize) -> u64 {
        let out = self.claimed - self.next;
        let count = (held as u64).saturating_add(out);
        let reserve = reserve as u64;
        if count < reserve {
            return BATCH.min(reserve - count);
        }
        let depth = reserve + QUEUE_DEPTH as u64;
        let making = usize::try_from(out - self.ahead_len).unwrap_or(usize::MAX);
        let bytes = held_bytes
            .saturating_add(self.ahead_bytes)
            .saturating_add(making.saturating_mul(self.estimate));
        if count >= depth || bytes >= QUEUE_BYTES {
            return 0;
        }
        if self.estimate == 0 {
            return 1;
        }
        let by_bytes = (QUEUE_BYTES - bytes).div_ceil(self.estimate) as u64;
        BATCH.min(depth - count).min(by_bytes)
    }

    fn claim(&mut self, count: u64) -> Range<u64> {
        let first = self.claimed;
        self.claimed += count;
        first..self.claimed
    }

    /// Gives back what positions `at..at + len` made (`bytes` of it), and passes on, in
    /// order, with their positions, everything this releases.
    fn put(&mut self, at: u64, len: u64, bytes: usize, made: T, mut release: impl FnMut(u64, T)) {
        if let Some(len) = usize::try_from(len).ok().filter(|&n| n > 0) {
            self.estimate = bytes.div_ceil(len);
        }
        if at != self.next {
            self.ahead_len += len;
            self.ahead_bytes += bytes;
            self.ahead.insert(at, (len, bytes, made));
            return;
        }
        release(len, made);
        self.next += len;
        while let Some(first) = self.ahead.first_entry() {
            if *first.key() != self.next {
                break;
            }
            let (len, bytes, made) = first.remove();
            self.ahead_len -= len;
            self.ahead_bytes -= bytes;
            release(len, made);
            self.next += len;
        }
    }
}

/// The composed draws not taken yet, from the first of them on.
#[derive(Default)]
struct Window {
    /// The draws released from `first` on, `None` once taken (or passed by): read by
    /// draw, a later one may go before an earlier one.
    entries: VecDeque<Option<Entry>>,
    /// The draw of the front entry.
    first: u64,
    /// Draws below this are passed by (see `TimingStrategyProtocol::after_draws`): never
    /// queued.
    passed: u64,
    /// What the entries hold.
    bytes: usize,
}

impl Window {
    /// Draws the window spans, taken ones between others included.
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the window spans fewer than `reserve + entries` draws and holds fewer than
    /// `bytes`, or spans fewer than `reserve` draws.
    fn below(&self, reserve: usize, (entries, bytes): (usize, usize)) -> bool {
        let len = self.len();
        len < reserve || (len < reserve + entries && self.bytes < bytes)
    }

    /// Queues the next draw's entry (a draw passed by goes as taken).
    fn push(&mut self, entry: Entry) {
        let draw = self.first + self.entries.len() as u64;
        if draw < self.passed {
            self.entries.push_back(None);
        } else {
            self.bytes += entry.bytes;
            self.entries.push_back(Some(entry));
        }
        self.trim();
    }

    /// Drops the taken draws at the front.
    fn trim(&mut self) {
        while let Some(None) = self.entries.front() {
            self.entries.pop_front();
            self.first += 1;
        }
    }

    /// Takes the first draw not taken.
    fn pop(&mut self) -> Option<Entry> {
        // The front is never a taken draw: `trim` drops those.
        let entry = self.entries.pop_front().flatten()?;
        self.first += 1;
        self.bytes -= entry.bytes;
        self.trim();
        Some(entry)
    }

    /// Takes draw `draw`.
    fn take(&mut self, draw: u64) -> Taken {
        let Some(at) = draw.checked_sub(self.first) else {
            return Taken::Gone;
        };
        let Some(slot) = usize::try_from(at)
            .ok()
            .and_then(|at| self.entries.get_mut(at))
        else {
            return Taken::NotYet;
        };
        let Some(entry) = slot.take() else {
            return Taken::Gone;
        };
        self.bytes -= entry.bytes;
        self.trim();
        Taken::Entry(entry)
    }

    /// Passes by the draws below `draw`: those queued are dropped, later ones not queued.
    fn pass(&mut self, draw: u64) {
        self.passed = self.passed.max(draw);
        let queued = usize::try_from(draw.saturating_sub(self.first)).unwrap_or(usize::MAX);
        for slot in self.entries.iter_mut().take(queued) {
            if let Some(entry) = slot.take() {
                self.bytes -= entry.bytes;
            }
        }
        self.trim();
    }
}

/// The queue; the draws being composed into it, and the conversations being listed for
/// `inputs.json`.
#[derive(Default)]
struct Queue {
    window: Window,
    draws: Lane<Vec<Entry>>,
    /// By conversation index: in order, the first draws list the dataset as they go.
    listing: Lane<Vec<u8>>,
    /// Released listing the writer has not taken yet: conversations, and their JSON.
    listed: u64,
    listed_json: Vec<u8>,
    /// The listing of the conversations no draw listed has begun, the run being over.
    listing_rest: bool,
}

impl Queue {
    /// Gives back the listing of conversations `at..at + len`.
    fn list(&mut self, at: u64, len: u64, json: &mut Vec<u8>) {
        self.listing.claimed = self.listing.claimed.max(at + len);
        let (listed, out) = (&mut self.listed, &mut self.listed_json);
        let bytes = json.len();
        self.listing
            .put(at, len, bytes, std::mem::take(json), |len, json| {
                *listed += len;
                if out.is_empty() {
                    *out = json;
                } else {
                    out.extend_from_slice(&json);
                }
            });
    }
}

/// What a composing thread does next.
#[derive(Debug, PartialEq)]
enum Work {
    /// Compose these draws into the queue.
    Draws(Range<u64>),
    /// The run being over, list these conversations in `inputs.json`.
    List(Range<u64>),
    /// Write to `inputs.json` what the other threads listed (the writer's work).
    Write,
}

/// What [`Window::take`] found.
enum Taken {
    Entry(Entry),
    /// Not composed yet.
    NotYet,
    /// Taken before, or passed by.
    Gone,
}

/// The queue between the composing threads and the workers.
pub(crate) struct OnDemand {
    /// Conversations in the dataset.
    pub entries: usize,
    /// The turns of each conversation, for a strategy that plans whole conversations
    /// ahead (read by draw); else empty.
    pub turns: Arc<[u32]>,
    /// Sessions take the dataset in order (no sampler): the first draws list it.
    in_order: bool,
    order: Order,
    queue: Mutex<Queue>,
    room: Condvar,
    /// The run takes no more conversations: the composing threads stop composing them.
    closed: AtomicBool,
    /// The composing threads ended (the queue is as full as it will get).
    ready: AtomicBool,
}

impl OnDemand {
    pub fn new(entries: usize, in_order: bool, order: Order, turns: Vec<u32>) -> Self {
        OnDemand {
            entries,
            turns: turns.into(),
            in_order,
            order,
            queue: Mutex::new(Queue::default()),
            room: Condvar::new(),
            closed: AtomicBool::new(false),
            ready: AtomicBool::new(false),
        }
    }

    /// Blocks until the queue holds `count` conversations (or every one of a smaller
    /// dataset, or as many as its bytes allow), and its reserve, or the composing threads
    /// are done or the run stopped.
    pub fn wait_ready(&self, count: usize, shared: &Shared) {
        let reserve = self.order.reserve();
        let count = count.min(self.entries).min(QUEUE_DEPTH).max(reserve);
        loop {
            let (queued, full) = self.queue.lock().map_or((0, true), |q| {
                let window = &q.window;
                (
                    window.len(),
                    !window.below(reserve, (QUEUE_DEPTH, QUEUE_BYTES)),
                )
            });
            let stopped = shared.stop.load(Ordering::Relaxed);
            if queued >= count || full || stopped || self.ready.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(READY_POLL);
        }
    }

    /// Tells the composing threads the run is over.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.room.notify_all();
    }

    /// The next session's conversation; `None` when `until` fires (the phase's grace
    /// period ended) or the run stops first. A wait is counted as the client's, as for an
    /// unprepared request.
    pub async fn take(&self, shared: &Shared, until: &CancelSignal) -> Option<Entry> {
        self.take_when(shared, until, || Ok(self.pop()))
            .await
            .ok()
            .flatten()
    }

    /// The conversation of draw `draw` ([`Order::ByDraw`]), as [`take`](Self::take); an
    /// error when it was taken before or passed by.
    pub async fn take_draw(
        &self,
        draw: u64,
        shared: &Shared,
        closed: &CancelSignal,
    ) -> Result<Option<Entry>, String> {
        let take = || match self.with_window(|window| window.take(draw)) {
            Some(Taken::Entry(entry)) => Ok(Some(entry)),
            // A poisoned queue: a composing thread panicked, which stopped the run.
            None | Some(Taken::NotYet) => Ok(None),
            Some(Taken::Gone) => Err(format!(
                "draw {draw} of the dataset was asked for twice, or after the draws passed by"
            )),
        };
        self.take_when(shared, closed, take).await
    }

    /// Polls `take` until it gives an entry or an error, or `closed` fires.
    async fn take_when(
        &self,
        shared: &Shared,
        closed: &CancelSignal,
        mut take: impl FnMut() -> Result<Option<Entry>, String>,
    ) -> Result<Option<Entry>, String> {
        let mut waited_from = None;
        loop {
            if let Some(entry) = take()? {
                if let Some(from) = waited_from {
                    shared.preparation.count_wait(&shared.clock, from);
                }
                return Ok(Some(entry));
            }
            // A composing thread that panicked (poisoning the queue) stopped the run.
            if shared.stop.load(Ordering::Relaxed) || self.closed.load(Ordering::Relaxed) {
                return Ok(None);
            }
            waited_from.get_or_insert_with(|| shared.clock.now());
            // Boxed, as in `session::send_turn`: inline, the aligned timer entry would sit
            // in the worker loop's future.
            let poll = Box::pin(monoio::time::sleep(EMPTY_POLL));
            if let Either::Right(()) = race(poll, closed.fired()).await {
                return Ok(None);
            }
        }
    }

    /// The queue's first entry, if it has one.
    fn pop(&self) -> Option<Entry> {
        self.with_window(Window::pop).flatten()
    }

    /// Passes by the draws below `draw` (see `TimingStrategyProtocol::after_draws`).
    pub fn pass(&self, draw: u64) {
        self.with_window(|window| window.pass(draw));
    }

    /// Runs `f` on the queue's window, and wakes the composing threads when it leaves the
    /// window low; `None` when the queue is poisoned.
    fn with_window<R>(&self, f: impl FnOnce(&mut Window) -> R) -> Option<R> {
        let reserve = self.order.reserve();
        let (out, low) = {
            let mut queue = self.queue.lock().ok()?;
            let window = &mut queue.window;
            let above = !window.below(reserve, LOW_WATER);
            let out = f(window);
            (out, above && window.below(reserve, LOW_WATER))
        };
        if low {
            // Every composing thread: one alone would refill the queue 8 at a time.
            self.room.notify_all();
        }
        Some(out)
    }

    /// The draws the composing threads took so far.
    fn drawn(&self) -> u64 {
        self.queue.lock().map_or(0, |queue| queue.draws.claimed)
    }

    /// Waits for the next work of a composing thread (`writer`: the one that writes
    /// `inputs.json`); `None` once there is none, or the run stopped.
    fn claim(&self, stop: &AtomicBool, writer: bool) -> Option<Work> {
        let mut guard = self.queue.lock().ok()?;
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let queue = &mut *guard;
            // Before it waits: the others' listing waits for it, in memory.
            if writer && queue.listed > 0 {
                return Some(Work::Write);
            }
            if !self.closed.load(Ordering::SeqCst) {
                let reserve = self.order.reserve();
                let window = &queue.window;
                let room = queue.draws.room(window.len(), window.bytes, reserve);
                if room > 0 {
                    return Some(Work::Draws(queue.draws.claim(room)));
                }
            } else {
                let entries = self.entries as u64;
                if !queue.listing_rest {
                    queue.listing_rest = true;
                    // Every draw claimed is listed by its thread, if it is to be.
                    let listed = if self.in_order {
                        queue.draws.claimed
                    } else {
                        0
                    };
                    let from = listed.min(entries).max(queue.listing.claimed);
                    queue.listing.claimed = from;
                }
                let left = entries.saturating_sub(queue.listing.claimed);
                if left == 0 {
                    return None;
                }
                let room = queue.listing.room(
                    usize::try_from(queue.listed).unwrap_or(usize::MAX),
                    queue.listed_json.len(),
                    0,
                );
                if room > 0 {
                    return Some(Work::List(queue.listing.claim(room.min(left))));
                }
            }
            guard = self.room.wait_timeout(guard, IDLE_WAIT).ok()?.0;
        }
    }

    /// Gives back the conversations of `draws`, composed, and the listing of the first
    /// `listed` of them: they go into the queue in draw order.
    fn deliver(&self, draws: Range<u64>, batch: &mut Vec<Entry>, json: &mut Vec<u8>, listed: u64) {
        let Ok(mut guard) = self.queue.lock() else {
            return;
        };
        let queue = &mut *guard;
        let bytes = batch.iter().map(|e| e.bytes).sum();
        let len = draws.end - draws.start;
        let window = &mut queue.window;
        queue
            .draws
            .put(draws.start, len, bytes, std::mem::take(batch), |_, made| {
                made.into_iter().for_each(|entry| window.push(entry));
            });
        if listed > 0 {
            queue.list(draws.start, listed, json);
        }
    }

    /// Gives back the listing of conversations `indices`, made after the run.
    fn deliver_listing(&self, indices: Range<u64>, json: &mut Vec<u8>) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.list(indices.start, indices.end - indices.start, json);
        }
        // The writer may be waiting for something to write.
        self.room.notify_all();
    }

    /// The listing released since the writer last took it, into `json` (swapped with
    /// it): how many conversations it lists.
    fn take_listing(&self, json: &mut Vec<u8>) -> u64 {
        json.clear();
        let Ok(mut queue) = self.queue.lock() else {
            return 0;
        };
        if queue.listed == 0 {
            return 0;
        }
        std::mem::swap(json, &mut queue.listed_json);
        let listed = std::mem::take(&mut queue.listed);
        if queue.listing_rest {
            // The listing after the run waits for the room this makes.
            self.room.notify_all();
        }
        listed
    }
}

/// How many threads compose an on-demand dataset: one, unless its conversations carry
/// an image or audio clip per turn; then as many as there are cores, up to
/// [`MAX_COMPOSERS`]. Threads beyond what the run asks for sleep.
///
/// Long prompts keep one thread: a prompt takes about 15 ns a token to make and format,
/// so one thread makes some 7,500 conversations of 8,000 tokens a second, and on two
/// cores a second thread (at `--isl 8000`) sent no more requests for 10 % more CPU.
pub(crate) fn composers(config: &ProfileConfig) -> usize {
    let images = config.image_batch_size > 0
        && (config.image_width_mean > 0 || config.image_height_mean > 0);
    let audio = config.audio_batch_size > 0 && config.audio_length_mean > 0.0;
    if !(images || audio) {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_COMPOSERS)
}

/// `inputs.json`: every payload of every conversation, in dataset order, as AIPerf lists
/// them. Writing stops at the first error, which is logged once; the run goes on.
pub(crate) struct InputsWriter {
    out: Option<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
    /// Conversations written so far.
    written: usize,
    /// Payloads of the conversation being written.
    payloads: usize,
}

impl InputsWriter {
    pub fn create(path: &Path) -> Self {
        let out = match std::fs::File::create(path) {
            Ok(file) => Some(std::io::BufWriter::with_capacity(1 << 16, file)),
            Err(e) => {
                tracing::warn!("cannot write {}: {e}", path.display());
                None
            }
        };
        let mut writer = InputsWriter {
            out,
            path: path.to_owned(),
            written: 0,
            payloads: 0,
        };
        writer.write(b"{\"data\":[");
        writer
    }

    /// A writer that writes nothing.
    pub fn none() -> Self {
        InputsWriter {
            out: None,
            path: PathBuf::new(),
            written: 0,
            payloads: 0,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Some(out) = &mut self.out {
            if let Err(e) = out.write_all(bytes) {
                tracing::warn!("cannot write {}: {e}", self.path.display());
                self.out = None;
            }
        }
    }

    pub fn begin(&mut self, session_id: &str) {
        let mut head = Vec::with_capacity(session_id.len() + 32);
        open_listing(&mut head, self.written == 0, session_id);
        self.write(&head);
        self.payloads = 0;
    }

    /// One payload, verbatim: re-serialising would reorder its keys. Endpoints write
    /// their payloads from strings, so the bytes are UTF-8.
    pub fn payload(&mut self, body: &[u8]) {
        if self.payloads > 0 {
            self.write(b",");
        }
        self.write(body);
        self.payloads += 1;
    }

    pub fn end(&mut self) {
        self.write(b"]}");
        self.written += 1;
    }

    /// `conversations` listed whole elsewhere (see [`open_listing`]), next in order.
    fn listed(&mut self, json: &[u8], conversations: u64) {
        self.write(json);
        self.written += usize::try_from(conversations).unwrap_or(usize::MAX);
    }

    pub fn finish(mut self) {
        self.write(b"]}\n");
        if let Some(Err(e)) = self.out.take().map(|mut out| out.flush()) {
            tracing::warn!("cannot write {}: {e}", self.path.display());
        }
    }
}

/// Opens a conversation's entry in `inputs.json`: its payloads follow, separated by
/// commas, then `]}`.
fn open_listing(out: &mut Vec<u8>, first: bool, session_id: &str) {
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"session_id\":");
    // Writing into a Vec cannot fail, and a str always serialises.
    let _ = serde_json::to_writer(&mut *out, session_id);
    out.extend_from_slice(b",\"payloads\":[");
}

/// What every conversation gets before it is sent, held or composed on demand: the
/// `--system-prompt` (one allocation, shared), and no trace delays with
/// `--ignore-trace-delays` (unless the run replays the trace's timestamps).
#[derive(Clone, Default)]
pub(crate) struct Finishing {
    pub system_prompt: Option<Arc<str>>,
    pub ignore_delays: bool,
}

impl Finishing {
    pub fn apply(&self, conversation: &mut Conversation) {
        if let Some(text) = &self.system_prompt {
            crate::dataset::inject_system_prompt(std::slice::from_mut(conversation), text);
        }
        if self.ignore_delays {
            for turn in &mut conversation.turns {
                turn.timestamp_ms = None;
                turn.delay_ms = None;
            }
        }
    }
}

/// A composing thread's own plugins, composing conversation after conversation.
struct Maker<P: PluginSet> {
    composer: P::DatasetComposer,
    tokenizer: P::Tokenizer,
    endpoint: P::Endpoint,
    transport: P::Transport,
    finishing: Finishing,
    body: Vec<u8>,
}

impl<P: PluginSet> Maker<P> {
    fn create(config: &ProfileConfig, finishing: Finishing) -> Result<Self, String> {
        let tokenizer = crate::engine::pipeline::tokenizer_plugin::<P>(config)?;
        Ok(Maker {
            composer: create(&config.dataset_composer, config)?,
            tokenizer: create(tokenizer, config)?,
            endpoint: create(&config.endpoint_type, config)?,
            transport: create(&config.transport, config)?,
            finishing,
            body: Vec::new(),
        })
    }

    /// Conversation `index` with its requests; its entry in `inputs.json` goes to
    /// `listing` too.
    fn entry(
        &mut self,
        index: usize,
        template: &RequestTemplate,
        mut listing: Option<&mut Vec<u8>>,
    ) -> Result<Entry, String> {
        let mut conversation = self
            .composer
            .compose(index, &self.tokenizer)
            .map_err(|e| format!("dataset: {e}"))?;
        self.finishing.apply(&mut conversation);
        let metadata = self.endpoint.metadata();
        if let Some(out) = listing.as_deref_mut() {
            open_listing(out, index == 0, &conversation.session_id);
        }
        let mut requests = Vec::with_capacity(conversation.turns.len());
        for (t, turn) in conversation.turns.iter().enumerate() {
            let bytes = template.build(&self.endpoint, &self.transport, turn, &mut self.body)?;
            if let Some(out) = listing.as_deref_mut() {
                if t > 0 {
                    out.push(b',');
                }
                // Verbatim: re-serialising would reorder its keys.
                out.extend_from_slice(&self.body);
            }
            let staged = Staged::default();
            staged.set(bytes);
            requests.push(PreparedRequest {
                bytes: staged,
                conversation_index: index,
                turn_index: u32::try_from(t).unwrap_or(u32::MAX),
                input_tokens: with_context_tokens(turn, metadata, &self.tokenizer),
                max_tokens: turn.max_tokens,
            });
        }
        if let Some(out) = listing {
            out.extend_from_slice(b"]}");
        }
        let texts = conversation.turns.iter().flat_map(|t| &t.texts);
        let bytes = texts.map(String::len).sum::<usize>()
            + requests
                .iter()
                .map(|r| r.bytes.get().map_or(0, <[u8]>::len))
                .sum::<usize>();
        Ok(Entry {
            index,
            conversation,
            requests,
            bytes,
        })
    }
}

/// The conversation index of the run's `draw`-th session.
fn index_of<S: DatasetSamplerProtocol>(
    sampler: Option<&mut S>,
    draw: u64,
    entries: usize,
) -> usize {
    match sampler {
        Some(sampler) => sampler.index(draw, entries).min(entries - 1),
        // The remainder is below `entries`, a usize.
        None => (draw % entries as u64) as usize,
    }
}

/// One composing thread: its own plugins compose what it claims, until the run is over
/// and `inputs.json` lists every conversation. The writer (`inputs`) also writes what
/// every thread listed, in order.
fn compose<P: PluginSet>(
    shared: &Shared,
    on_demand: &OnDemand,
    config: &ProfileConfig,
    template: &RequestTemplate,
    finishing: Finishing,
    mut inputs: Option<&mut InputsWriter>,
) -> Result<(), String> {
    let mut maker = Maker::<P>::create(config, finishing)?;
    let mut sampler = sampler::<P>(config)?;
    let entries = on_demand.entries;
    let (mut batch, mut listing, mut json) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(work) = on_demand.claim(&shared.stop, inputs.is_some()) {
        match work {
            Work::Draws(draws) => {
                let mut listed = 0;
                for draw in draws.clone() {
                    let index = index_of(sampler.as_mut(), draw, entries);
                    // Read in order, the dataset's conversations come first in their own
                    // order: their first draws list them (the draw is the index).
                    let list = on_demand.in_order && draw < entries as u64;
                    listed += u64::from(list);
                    batch.push(maker.entry(index, template, list.then_some(&mut listing))?);
                }
                on_demand.deliver(draws, &mut batch, &mut listing, listed);
            }
            Work::List(indices) => {
                for index in indices.clone() {
                    // Below `entries`, a usize.
                    maker.entry(index as usize, template, Some(&mut listing))?;
                }
                on_demand.deliver_listing(indices, &mut listing);
            }
            Work::Write => {}
        }
        if let Some(inputs) = inputs.as_deref_mut() {
            let listed = on_demand.take_listing(&mut json);
            inputs.listed(&json, listed);
        }
    }
    Ok(())
}

/// Lists in `inputs.json`, in dataset order, each conversation the run's draws took (a
/// sampled run that stopped early): how many. They are composed again, as the draws
/// made them.
fn list_drawn<P: PluginSet>(
    on_demand: &OnDemand,
    config: &ProfileConfig,
    template: &RequestTemplate,
    finishing: Finishing,
    inputs: &mut InputsWriter,
) -> Result<usize, String> {
    let mut maker = Maker::<P>::create(config, finishing)?;
    let mut sampler = sampler::<P>(config)?;
    let entries = on_demand.entries;
    let mut indices: Vec<usize> = (0..on_demand.drawn())
        .map(|draw| index_of(sampler.as_mut(), draw, entries))
        .collect();
    indices.sort_unstable();
    indices.dedup();
    let mut json = Vec::new();
    for &index in &indices {
        json.clear();
        maker.entry(index, template, Some(&mut json))?;
        // Each entry opens with a comma but the dataset's first; the file's first here
        // may be another.
        let skip = usize::from(inputs.written == 0 && json.first() == Some(&b','));
        inputs.listed(&json[skip..], 1);
    }
    Ok(indices.len())
}

/// The run's `--dataset-sampling-strategy`, if it names one: a thread's own, drawing as
/// every other thread's does.
fn sampler<P: PluginSet>(config: &ProfileConfig) -> Result<Option<P::DatasetSampler>, String> {
    config
        .dataset_sampling_strategy
        .as_ref()
        .map(|name| create(name, config))
        .transpose()
}

/// Stops the run when a composing thread panics: the draws it held would never reach
/// the queue, and the workers would wait for them.
struct StopOnPanic<'a>(&'a Shared);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let shared = self.0;
            shared
                .preparation
                .fail(shared, "a thread composing the dataset panicked".into());
        }
    }
}

/// The preparation thread of an on-demand dataset: composes the conversations of the
/// run's draws into the queue until the run is over, with [`composers`] threads (itself
/// and helpers), then lists in `inputs.json` the conversations it still lacks (read in
/// order, the dataset's conversations are listed as they are first composed).
pub(crate) fn prepare<P: PluginSet>(
    shared: &Shared,
    config: &ProfileConfig,
    template: &RequestTemplate,
    finishing: Finishing,
    mut inputs: InputsWriter,
) -> Result<(), String> {
    let Some(on_demand) = &shared.on_demand else {
        return Ok(());
    };
    // However it ends, the main thread waiting for the first conversations goes on.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let _done = Done(&on_demand.ready);
    let threads = composers(config);
    let listing_finishing = finishing.clone();
    std::thread::scope(|scope| {
        let mut helpers = Vec::with_capacity(threads.saturating_sub(1));
        for i in 1..threads {
            let finishing = finishing.clone();
            let helper = move || {
                let _stop = StopOnPanic(shared);
                let composed = compose::<P>(shared, on_demand, config, template, finishing, None);
                if let Err(e) = &composed {
                    // The other threads stop at their next claim.
                    shared.preparation.fail(shared, e.clone());
                }
                composed
            };
            match std::thread::Builder::new()
                .name(format!("aiperf-compose-{i}"))
                .spawn_scoped(scope, helper)
            {
                Ok(handle) => helpers.push(handle),
                Err(e) => {
                    // Those started compose everything all the same, more slowly.
                    tracing::warn!("cannot start a thread to compose the dataset: {e}");
                    break;
                }
            }
        }
        let composed = {
            let _stop = StopOnPanic(shared);
            compose::<P>(
                shared,
                on_demand,
                config,
                template,
                finishing,
                Some(&mut inputs),
            )
        };
        if let Err(e) = &composed {
            shared.preparation.fail(shared, e.clone());
        }
        helpers.into_iter().fold(composed, |first, helper| {
            let joined = helper
                .join()
                .unwrap_or_else(|_| Err("a thread composing the dataset panicked".into()));
            first.and(joined)
        })
    })?;
    let mut json = Vec::new();
    let listed = on_demand.take_listing(&mut json);
    inputs.listed(&json, listed);
    // A sampled run lists nothing while it goes (its draws are not the dataset's order);
    // stopped, it lists the conversations it drew, so that every record's conversation
    // is in the file.
    let sampled_stop = !on_demand.in_order && inputs.written == 0 && on_demand.drawn() > 0;
    if sampled_stop {
        let drawn = list_drawn::<P>(on_demand, config, template, listing_finishing, &mut inputs)?;
        tracing::warn!(
            "inputs.json lists the {drawn} conversations the run drew of the dataset's {}: \
             the run stopped before the others were composed",
            on_demand.entries
        );
    }
    // AIPerf lists every conversation, sent or not (it writes them before the run). A run
    // stopped early (Ctrl-C, a failure threshold) lists those composed so far: the rest
    // could take longer than the run did (200,000 prompts of 2,000 tokens: 2.6 GB).
    else if inputs.written < on_demand.entries {
        tracing::warn!(
            "inputs.json lists the first {} of the dataset's {} conversations: the run \
             stopped before the others were composed",
            inputs.written,
            on_demand.entries
        );
    }
    inputs.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draw `draw`'s entry, of `bytes`.
    fn entry(draw: u64, bytes: usize) -> Entry {
        Entry {
            index: usize::try_from(draw).expect("a small draw"),
            conversation: Conversation::default(),
            requests: Vec::new(),
            bytes,
        }
    }

    fn draws(work: Option<Work>) -> Range<u64> {
        match work {
            Some(Work::Draws(draws)) => draws,
            other => panic!("not draws: {other:?}"),
        }
    }

    fn deliver(on_demand: &OnDemand, draws: Range<u64>, bytes: usize) {
        let mut batch = draws.clone().map(|d| entry(d, bytes)).collect();
        on_demand.deliver(draws, &mut batch, &mut Vec::new(), 0);
    }

    fn queued(on_demand: &OnDemand) -> Vec<usize> {
        let queue = on_demand.queue.lock().expect("the queue");
        queue
            .window
            .entries
            .iter()
            .flatten()
            .map(|e| e.index)
            .collect()
    }

    fn taken(found: Taken) -> Option<usize> {
        match found {
            Taken::Entry(entry) => Some(entry.index),
            Taken::NotYet => None,
            Taken::Gone => panic!("gone"),
        }
    }

    #[test]
    fn a_window_is_read_by_draw_and_passes_draws_by() {
        let mut window = Window::default();
        (0..6).for_each(|d| window.push(entry(d, 10)));
        // A warmup took draw 0 in order; the users pass draw 1 by and start at 2.
        assert_eq!(window.pop().map(|e| e.index), Some(0));
        window.pass(2);
        assert_eq!((window.first, window.len(), window.bytes), (2, 4, 40));
        // A later draw goes first; the earlier ones keep their place.
        assert_eq!(taken(window.take(4)), Some(4));
        assert_eq!((window.first, window.len(), window.bytes), (2, 4, 30));
        assert!(matches!(window.take(4), Taken::Gone));
        assert!(matches!(window.take(1), Taken::Gone));
        assert_eq!(taken(window.take(6)), None, "not composed yet");
        assert_eq!(taken(window.take(2)), Some(2));
        assert_eq!(taken(window.take(3)), Some(3));
        // Draw 4 went before: the window now starts at 5.
        assert_eq!((window.first, window.len(), window.bytes), (5, 1, 10));
        // Passed by before they are composed, draws never take room.
        window.pass(8);
        (6..9).for_each(|d| window.push(entry(d, 10)));
        assert_eq!((window.first, window.len(), window.bytes), (8, 1, 10));
        assert_eq!(taken(window.take(8)), Some(8));
    }

    #[test]
    fn a_reserve_is_composed_whatever_its_bytes() {
        let reserve = 20;
        let on_demand = OnDemand::new(1000, true, Order::ByDraw { reserve }, Vec::new());
        let stop = AtomicBool::new(false);
        // Each draw alone fills the bytes of a queue read in order.
        let mut composed = 0;
        while composed < reserve as u64 {
            let claimed = draws(on_demand.claim(&stop, false));
            composed = claimed.end;
            deliver(&on_demand, claimed, QUEUE_BYTES);
        }
        assert_eq!(composed, reserve as u64);
        let room = |on_demand: &OnDemand| {
            let queue = on_demand.queue.lock().expect("the queue");
            let window = &queue.window;
            queue.draws.room(window.len(), window.bytes, reserve)
        };
        assert_eq!(room(&on_demand), 0, "past the reserve, the bytes count");
        // The last draw of the reserve goes first (the opening's fresh user), and makes no
        // room: the window still spans the draws before it.
        let last = on_demand.with_window(|w| w.take(reserve as u64 - 1));
        assert_eq!(last.map(taken), Some(Some(reserve - 1)));
        assert_eq!(room(&on_demand), 0);
        let first = on_demand.with_window(|w| w.take(0));
        assert_eq!(first.map(taken), Some(Some(0)));
        assert_eq!(room(&on_demand), 1);
    }

    /// Users that start in another order than their draws (the opening: the last of the
    /// reserve first) and workers running apart still get every draw, composed in order
    /// by threads that finish out of order, each bigger than a queue read in order holds.
    #[test]
    fn draws_taken_out_of_order_within_the_reserve_never_wait_for_good() {
        let reserve = 64;
        let on_demand = OnDemand::new(usize::MAX, true, Order::ByDraw { reserve }, Vec::new());
        let stop = AtomicBool::new(false);
        let opening = (0..reserve as u64).rev();
        // Two workers taking the rest alternately, one a few draws behind the other.
        let rest: Vec<u64> = (reserve as u64..reserve as u64 + 6 * 500)
            .collect::<Vec<_>>()
            .chunks(6)
            .flat_map(|c| [c[3..].to_vec(), c[..3].to_vec()].concat())
            .collect();
        let wanted: Vec<u64> = opening.chain(rest).collect();
        /// Stops the composing threads however the taking ends (a failed assertion too,
        /// which would otherwise wait for them for good).
        struct Stop<'a>(&'a AtomicBool, &'a OnDemand);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
                self.1.close();
            }
        }
        let started = std::time::Instant::now();
        let got = std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    while let Some(Work::Draws(draws)) = on_demand.claim(&stop, false) {
                        if draws.start % 5 == 0 {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        deliver(&on_demand, draws, QUEUE_BYTES / 16);
                    }
                });
            }
            let _stop = Stop(&stop, &on_demand);
            let mut got = Vec::with_capacity(wanted.len());
            for &draw in &wanted {
                loop {
                    assert!(
                        started.elapsed() < Duration::from_secs(20),
                        "stuck at {draw}"
                    );
                    match on_demand.with_window(|w| w.take(draw)).map(taken) {
                        Some(Some(index)) => break got.push(index as u64),
                        _ => std::thread::yield_now(),
                    }
                }
            }
            got
        });
        assert_eq!(got, wanted);
    }

    #[test]
    fn a_lane_releases_in_order_what_is_given_back_out_of_order() {
        let mut lane = Lane::<&str>::default();
        let (a, b, c) = (lane.claim(2), lane.claim(3), lane.claim(1));
        let mut released = Vec::new();
        lane.put(c.start, 1, 10, "c", |n, s| released.push((n, s)));
        lane.put(b.start, 3, 30, "b", |n, s| released.push((n, s)));
        assert!(released.is_empty());
        assert_eq!((lane.ahead_len, lane.ahead_bytes), (4, 40));
        lane.put(a.start, 2, 20, "a", |n, s| released.push((n, s)));
        assert_eq!(released, [(2, "a"), (3, "b"), (1, "c")]);
        assert_eq!((lane.next, lane.ahead_len, lane.ahead_bytes), (6, 0, 0));
    }

    #[test]
    fn a_batch_finished_first_waits_for_the_draws_before_it() {
        let on_demand = OnDemand::new(100, true, Order::Next, Vec::new());
        let stop = AtomicBool::new(false);
        // Nothing made yet tells what a conversation costs: one draw at a time.
        let first = draws(on_demand.claim(&stop, false));
        let second = draws(on_demand.claim(&stop, false));
        assert_eq!((first.clone(), second.clone()), (0..1, 1..2));
        deliver(&on_demand, second, 100);
        assert!(queued(&on_demand).is_empty());
        let third = draws(on_demand.claim(&stop, false));
        assert_eq!(third, 2..2 + BATCH);
        deliver(&on_demand, third, 100);
        deliver(&on_demand, first, 100);
        assert_eq!(
            queued(&on_demand),
            (0..2 + BATCH as usize).collect::<Vec<_>>()
        );
    }

    #[test]
    fn claims_stay_within_the_queues_bytes() {
        let on_demand = OnDemand::new(100, true, Order::Next, Vec::new());
        let stop = AtomicBool::new(false);
        let big = QUEUE_BYTES / 4;
        let first = draws(on_demand.claim(&stop, false));
        deliver(&on_demand, first, big);
        // Three more fit, being made; a claim then waits for room.
        assert_eq!(draws(on_demand.claim(&stop, false)), 1..4);
        let queue = on_demand.queue.lock().expect("the queue");
        let window = &queue.window;
        assert_eq!(queue.draws.room(window.len(), window.bytes, 0), 0);
    }

    #[test]
    fn threads_finishing_out_of_order_fill_the_queue_in_draw_order() {
        let on_demand = OnDemand::new(usize::MAX, false, Order::Next, Vec::new());
        let stop = AtomicBool::new(false);
        let total = 5 * QUEUE_DEPTH;
        let taken = std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    while let Some(Work::Draws(draws)) = on_demand.claim(&stop, false) {
                        if draws.start % 3 == 0 {
                            std::thread::sleep(Duration::from_micros(300));
                        }
                        deliver(&on_demand, draws, 1000);
                    }
                });
            }
            let mut taken = Vec::with_capacity(total);
            while taken.len() < total {
                match on_demand.pop() {
                    Some(entry) => taken.push(entry.index),
                    None => std::thread::yield_now(),
                }
            }
            on_demand.close();
            taken
        });
        assert_eq!(taken, (0..total).collect::<Vec<_>>());
    }

    #[test]
    fn the_listing_is_written_in_order_and_finished_after_the_run() {
        let on_demand = OnDemand::new(20, true, Order::Next, Vec::new());
        let stop = AtomicBool::new(false);
        let (first, second) = (
            draws(on_demand.claim(&stop, true)),
            draws(on_demand.claim(&stop, true)),
        );
        let mut batch = vec![entry(1, 10)];
        on_demand.deliver(second, &mut batch, &mut b",{1}".to_vec(), 1);
        let mut json = Vec::new();
        assert_eq!(on_demand.take_listing(&mut json), 0);
        let mut batch = vec![entry(0, 10)];
        on_demand.deliver(first, &mut batch, &mut b"{0}".to_vec(), 1);
        // Listed, the writer writes before it composes more.
        assert_eq!(on_demand.claim(&stop, true), Some(Work::Write));
        assert_eq!(on_demand.take_listing(&mut json), 2);
        assert_eq!(json, b"{0},{1}");
        on_demand.close();
        // After the run, the conversations no draw listed, from where the draws stopped.
        assert_eq!(on_demand.claim(&stop, true), Some(Work::List(2..2 + BATCH)));
        stop.store(true, Ordering::Relaxed);
        assert_eq!(on_demand.claim(&stop, true), None);
    }

    #[test]
    fn a_sampled_dataset_is_listed_whole_after_the_run() {
        let on_demand = OnDemand::new(3, false, Order::Next, Vec::new());
        let stop = AtomicBool::new(false);
        let drawn = draws(on_demand.claim(&stop, true));
        deliver(&on_demand, drawn, 10);
        on_demand.close();
        assert_eq!(on_demand.claim(&stop, false), Some(Work::List(0..1)));
        on_demand.deliver_listing(0..1, &mut b"{0}".to_vec());
        assert_eq!(on_demand.claim(&stop, false), Some(Work::List(1..3)));
        assert_eq!(on_demand.claim(&stop, false), None);
    }
}
