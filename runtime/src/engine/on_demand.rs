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

use std::collections::VecDeque;
use std::io::Write;
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
use crate::protocols::{DatasetComposerProtocol, DatasetSamplerProtocol, EndpointProtocol};

/// Conversations composed ahead of the workers: at 50,000 requests/s, 20 ms of sessions,
/// and about 2 MB of prompts and bodies at 100 tokens each.
const QUEUE_DEPTH: usize = 1024;

/// And at most this many bytes of them (but always one): long prompts make fewer.
const QUEUE_BYTES: usize = 8 << 20;

/// The preparation thread is woken when the queue is down to half of both, not at every
/// take: a wake is a system call, which every request would pay.
const LOW_WATER: (usize, usize) = (QUEUE_DEPTH / 2, QUEUE_BYTES / 2);

/// How long the preparation thread sleeps at most with a full queue, to notice the run's
/// end (or a wake it missed) without being told.
const IDLE_WAIT: Duration = Duration::from_millis(5);

/// How a worker waits for a conversation the preparation thread has not made yet.
const EMPTY_POLL: Duration = Duration::from_micros(200);

/// How the main thread waits for the first conversations, before the workers start.
const READY_POLL: Duration = Duration::from_micros(100);

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

/// The queue, and the bytes its entries hold.
#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    bytes: usize,
}

impl Queue {
    fn below(&self, (entries, bytes): (usize, usize)) -> bool {
        self.entries.len() < entries && self.bytes < bytes
    }
}

/// The queue between the preparation thread and the workers.
pub(crate) struct OnDemand {
    /// Conversations in the dataset.
    pub entries: usize,
    queue: Mutex<Queue>,
    room: Condvar,
    /// The run takes no more conversations: the preparation thread stops composing them.
    closed: AtomicBool,
    /// The preparation thread ended (the queue is as full as it will get).
    ready: AtomicBool,
}

impl OnDemand {
    pub fn new(entries: usize) -> Self {
        OnDemand {
            entries,
            queue: Mutex::new(Queue::default()),
            room: Condvar::new(),
            closed: AtomicBool::new(false),
            ready: AtomicBool::new(false),
        }
    }

    /// Blocks until the queue holds `count` conversations (or every one of a smaller
    /// dataset, or as many as its bytes allow), or the preparation thread is done or the
    /// run stopped.
    pub fn wait_ready(&self, count: usize, shared: &Shared) {
        let count = count.min(self.entries).min(QUEUE_DEPTH);
        loop {
            let (queued, full) = self.queue.lock().map_or((0, true), |q| {
                (q.entries.len(), !q.below((QUEUE_DEPTH, QUEUE_BYTES)))
            });
            let stopped = shared.stop.load(Ordering::Relaxed);
            if queued >= count || full || stopped || self.ready.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(READY_POLL);
        }
    }

    /// Tells the preparation thread the run is over.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.room.notify_all();
    }

    /// The next session's conversation; `None` when the worker's loop closes (or the run
    /// stops) first. A wait is counted as the client's, as for an unprepared request.
    pub async fn take(&self, shared: &Shared, closed: &CancelSignal) -> Option<Entry> {
        let mut waited_from = None;
        loop {
            let (entry, low) = match self.queue.lock() {
                Ok(mut queue) => {
                    let above = !queue.below(LOW_WATER);
                    let entry = queue.entries.pop_front();
                    queue.bytes -= entry.as_ref().map_or(0, |e| e.bytes);
                    (entry, above && queue.below(LOW_WATER))
                }
                // The preparation thread panicked while holding the lock; the run ends
                // with that error.
                Err(_) => return None,
            };
            if low {
                self.room.notify_one();
            }
            if let Some(entry) = entry {
                if let Some(from) = waited_from {
                    shared.preparation.count_wait(&shared.clock, from);
                }
                return Some(entry);
            }
            if shared.stop.load(Ordering::Relaxed) || self.closed.load(Ordering::Relaxed) {
                return None;
            }
            waited_from.get_or_insert_with(|| shared.clock.now());
            // Boxed, as in `session::send_turn`: inline, the aligned timer entry would sit
            // in the worker loop's future.
            let poll = Box::pin(monoio::time::sleep(EMPTY_POLL));
            if let Either::Right(()) = race(poll, closed.fired()).await {
                return None;
            }
        }
    }

    /// Waits until the queue has room; the room there is then (entries, bytes), or `None`
    /// once closed.
    fn room(&self, shared: &Shared) -> Option<(usize, usize)> {
        let mut queue = self.queue.lock().ok()?;
        loop {
            if self.closed.load(Ordering::SeqCst) || shared.stop.load(Ordering::Relaxed) {
                return None;
            }
            if queue.below((QUEUE_DEPTH, QUEUE_BYTES)) {
                return Some((QUEUE_DEPTH - queue.entries.len(), QUEUE_BYTES - queue.bytes));
            }
            queue = self.room.wait_timeout(queue, IDLE_WAIT).ok()?.0;
        }
    }

    fn push(&self, batch: &mut Vec<Entry>) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.bytes += batch.iter().map(|e| e.bytes).sum::<usize>();
            queue.entries.extend(batch.drain(..));
        }
    }
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
        if self.written > 0 {
            self.write(b",");
        }
        self.write(b"{\"session_id\":");
        let mut id = Vec::with_capacity(session_id.len() + 2);
        // Writing into a Vec cannot fail, and a str always serialises.
        let _ = serde_json::to_writer(&mut id, session_id);
        self.write(&id);
        self.write(b",\"payloads\":[");
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

    pub fn finish(mut self) {
        self.write(b"]}\n");
        if let Some(Err(e)) = self.out.take().map(|mut out| out.flush()) {
            tracing::warn!("cannot write {}: {e}", self.path.display());
        }
    }
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

/// The preparation thread's own plugins, composing conversation after conversation.
struct Maker<P: PluginSet> {
    composer: P::DatasetComposer,
    tokenizer: P::Tokenizer,
    endpoint: P::Endpoint,
    transport: P::Transport,
    finishing: Finishing,
    body: Vec<u8>,
}

impl<P: PluginSet> Maker<P> {
    /// Conversation `index` with its requests; its payloads go to `inputs` too.
    fn entry(
        &mut self,
        index: usize,
        template: &RequestTemplate,
        mut inputs: Option<&mut InputsWriter>,
    ) -> Result<Entry, String> {
        let mut conversation = self
            .composer
            .compose(index, &self.tokenizer)
            .map_err(|e| format!("dataset: {e}"))?;
        self.finishing.apply(&mut conversation);
        let metadata = self.endpoint.metadata();
        if let Some(inputs) = inputs.as_deref_mut() {
            inputs.begin(&conversation.session_id);
        }
        let mut requests = Vec::with_capacity(conversation.turns.len());
        for (t, turn) in conversation.turns.iter().enumerate() {
            let bytes = template.build(&self.endpoint, &self.transport, turn, &mut self.body)?;
            if let Some(inputs) = inputs.as_deref_mut() {
                inputs.payload(&self.body);
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
        if let Some(inputs) = inputs {
            inputs.end();
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

/// The preparation thread of an on-demand dataset: composes the conversations of the
/// run's draws into the queue until the run is over, then writes the payloads
/// `inputs.json` still lacks (read in order, the dataset's conversations are written as
/// they are first composed).
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
    let entries = on_demand.entries;
    let composer: P::DatasetComposer = create(&config.dataset_composer, config)?;
    let tokenizer: P::Tokenizer = create(
        crate::engine::pipeline::tokenizer_plugin::<P>(config)?,
        config,
    )?;
    let endpoint: P::Endpoint = create(&config.endpoint_type, config)?;
    let transport: P::Transport = create(&config.transport, config)?;
    let mut sampler: Option<P::DatasetSampler> = match &config.dataset_sampling_strategy {
        Some(name) => Some(create(name, config)?),
        None => None,
    };
    let in_order = sampler.is_none();
    let mut maker = Maker::<P> {
        composer,
        tokenizer,
        endpoint,
        transport,
        finishing,
        body: Vec::new(),
    };
    let mut draw = 0;
    let mut batch = Vec::new();
    while let Some((mut room, mut bytes)) = on_demand.room(shared) {
        // Batches keep the lock's traffic low; small ones keep the workers fed when each
        // conversation is slow to make (images, audio: 64 at a time starved them).
        room = room.min(8);
        while room > 0 && bytes > 0 {
            let index = index_of(sampler.as_mut(), draw, entries);
            // Read in order, the dataset's conversations come first in their own order.
            let write = in_order && index == inputs.written;
            let entry = maker.entry(index, template, write.then_some(&mut inputs))?;
            bytes = bytes.saturating_sub(entry.bytes);
            room -= 1;
            batch.push(entry);
            draw += 1;
        }
        on_demand.push(&mut batch);
    }
    // AIPerf lists every conversation, sent or not (it writes them before the run). A run
    // stopped early (Ctrl-C, a failure threshold) lists those composed so far: the rest
    // could take longer than the run did (200,000 prompts of 2,000 tokens: 2.6 GB).
    if shared.stop.load(Ordering::Relaxed) && inputs.written < entries {
        tracing::warn!(
            "inputs.json lists the first {} of the dataset's {entries} conversations: the \
             run stopped before the others were composed",
            inputs.written
        );
    } else {
        for index in inputs.written..entries {
            maker.entry(index, template, Some(&mut inputs))?;
        }
    }
    inputs.finish();
    Ok(())
}
