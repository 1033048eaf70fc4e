//! Sessions: a conversation's turns sent in order on one worker, each once the previous
//! turn's response has ended, at the instant the timing strategy gives
//! ([`TimingStrategyProtocol::next_turn_at`]: AIPerf's `delay_ms` after the response,
//! a trace timestamp, or a user's turn gap). A session started on a rate's tick then
//! waits for a tick of its worker's loop as well, which takes the turn's credit
//! (`engine::paced`, AIPerf's continuation queue); the others take theirs here.
//!
//! A session holds its concurrency slot from its first turn to its last, delays
//! included, since AIPerf's `--concurrency` bounds sessions in flight. Every turn takes a
//! credit of its own, so `--request-count` counts requests; the run's stop, its duration
//! and the count end a session between turns. A single-turn session is exactly one
//! request, as before sessions existed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::dataset::{Conversation, Turn};
use crate::engine::cancel::{race, CancelSignal, Either, SplitMix};
use crate::engine::on_demand::Entry;
use crate::engine::paced::Paced;
use crate::engine::pipeline::RecordSender;
use crate::engine::slots::{SlotGuard, Slots};
use crate::engine::urls::UrlPicker;
use crate::engine::worker::{follow_ups, mark_cancelled, PreparedRequest, Shared};
use crate::protocols::{
    EndpointProtocol, TimingStrategyProtocol, TransportProtocol, UrlSelectionStrategyProtocol,
};
use crate::record::{EventTap, Nanos, Phase, RequestRecord, ResponseData};

/// `--prefill-concurrency` on one worker in one phase: its share of the slots, and the
/// endpoint that tells a content response from the others.
pub(crate) struct Prefill<E> {
    pub slots: Slots,
    pub endpoint: Rc<E>,
}

/// What every session of one phase on one worker shares.
pub(crate) struct PhaseContext<S, T, E, U> {
    pub shared: Arc<Shared>,
    /// Borrowed only between awaits (the worker's loop asks it for credits, sessions for
    /// their next turn's instant), so the borrows never overlap.
    pub timing: RefCell<S>,
    pub transport: Rc<T>,
    /// The worker's URL choice, asked per request just before its write.
    pub urls: Rc<UrlPicker<U>>,
    /// Job APIs only (see `worker::job_endpoint`).
    pub job_endpoint: Option<Rc<E>>,
    /// Endpoints that send a session's history (with `Shared::session_bodies`): it reads
    /// each reply and writes the next turn's body.
    pub history_endpoint: Option<Rc<E>>,
    pub tx: Rc<RecordSender>,
    pub worker_id: u32,
    pub phase: Phase,
    pub phase_idx: usize,
    pub count: Option<u64>,
    pub deadline: Option<Nanos>,
    /// When the grace period after the duration ends (`u64::MAX` without one).
    pub grace_end: Nanos,
    /// Cancels requests in flight (grace period over, or a second Ctrl-C).
    pub cancel: CancelSignal,
    /// Stops issuing (duration reached, or the run stopped).
    pub stopped: CancelSignal,
    /// `--request-cancellation-rate` as a fraction, and its delay.
    pub cancel_share: f64,
    pub cancel_after: Duration,
    /// With `--prefill-concurrency`: every request holds one of these slots from just
    /// before it is sent to its first content response.
    pub prefill: Option<Prefill<E>>,
}

impl<S, T, E, U> PhaseContext<S, T, E, U> {
    fn past_deadline(&self, t: Nanos) -> bool {
        self.deadline.is_some_and(|d| t >= d)
    }
}

/// The first turn of a session, with the credit the worker took for it.
pub(crate) struct SessionStart {
    pub conversation: usize,
    /// The user sending it (user-centric mode): its number is the correlation id.
    pub user: Option<u64>,
    /// The conversation and its requests, when composed for this session (on demand);
    /// else they are the dataset's `conversation`.
    pub entry: Option<Entry>,
    pub turn: u32,
    /// One past the last turn the session sends (at most the conversation's length).
    pub end: u32,
    pub credit: u64,
    pub intended: Nanos,
    /// When to cancel the first turn (`--request-cancellation-rate`), if drawn.
    pub cancel_after: Option<Duration>,
    /// Cancellation draws of the later turns; only sessions of several turns have them.
    pub draws: Option<SplitMix>,
    /// The first turn's prefill slot, taken with its credit (`--prefill-concurrency`).
    pub prefill: Option<SlotGuard>,
    /// Started on a rate's tick, with later turns: each of those goes on a tick too.
    pub paced: Option<Paced>,
}

/// Sends a session's turns; the slot is given back after the last.
pub(crate) async fn run<S, T, E, U>(
    ctx: Rc<PhaseContext<S, T, E, U>>,
    start: SessionStart,
    guard: SlotGuard,
) where
    S: TimingStrategyProtocol,
    T: TransportProtocol,
    E: EndpointProtocol,
    U: UrlSelectionStrategyProtocol,
{
    let shared = &*ctx.shared;
    let mut guard = Some(guard);
    let (mut turn, mut credit, mut intended) = (start.turn, start.credit, start.intended);
    let mut cancel_after = start.cancel_after;
    let mut draws = start.draws;
    let mut prefill = start.prefill;
    let mut paced = start.paced;
    let entry = start.entry;
    let (requests, conversation) = match &entry {
        Some(entry) => (&entry.requests[..], &entry.conversation),
        None => {
            let (Some(&first), Some(conversation)) = (
                shared.turn_offsets.get(start.conversation),
                shared.conversations.get(start.conversation),
            ) else {
                return;
            };
            let turns = first..first + conversation.turns.len();
            let Some(requests) = shared.requests.get(turns) else {
                return;
            };
            (requests, conversation)
        }
    };
    let end = start
        .end
        .min(u32::try_from(conversation.turns.len()).unwrap_or(u32::MAX));
    let history_body = ctx
        .history_endpoint
        .as_deref()
        .zip(shared.session_bodies.as_ref());
    // One id for every turn of this session, as AIPerf's X-Correlation-ID; a conversation
    // sent twice is two sessions. A simulated user's is its number, as AIPerf's
    // user-centric mode sets it; a replayed trace conversation's is its id after
    // `fixed-schedule-`, as AIPerf's fixed schedule sets it; any other session's a random
    // UUID. A correlation id given with `--header` is the one the server sees, so it is
    // ours too.
    let mut correlation_id = match (&shared.given_correlation_id, start.user) {
        (Some(given), _) => given.clone(),
        (None, Some(user)) => user.to_string(),
        (None, None) if shared.fixed_schedule => {
            format!("fixed-schedule-{}", conversation.session_id)
        }
        (None, None) => super::ids::uuid4(),
    };
    // The session so far, as chat sends it: each turn, then the reply it got (if any).
    let mut history: Vec<Turn> = Vec::new();
    // Images of the turns in `history`, which a turn built with it sends again.
    let mut history_images = 0u32;
    // The next turn's request when built here, with its texts for the token count.
    let mut built: Option<(Vec<u8>, String)> = None;
    while let Some(req) = requests.get(turn as usize).filter(|_| turn < end) {
        let last = turn + 1 >= end;
        // The turn's request and record live in a block of their own: a local keeps its
        // room in the session's future until its scope ends, even once moved, and the
        // record is handed on before the waits below (4,224 -> 3,712 bytes of future,
        // copied whenever a session starts).
        let next_at = {
            // The last turn's record takes the id itself: a single-turn session (most runs)
            // then pays for no copy of it, nor for freeing one on the record thread.
            let correlation_id = if last {
                Cow::Owned(std::mem::take(&mut correlation_id))
            } else {
                Cow::Borrowed(correlation_id.as_str())
            };
            let resent_images = if built.is_some() { history_images } else { 0 };
            let turn_request = TurnRequest {
                req,
                correlation_id,
                credit,
                intended,
                last,
                cancel_after,
                prefill: prefill.take(),
            };
            let mut record = send_turn(&ctx, turn_request, built.take()).await;
            // Set on the record that came back rather than passed in: a larger request
            // made the send's future be built aside and copied into this one (3.5 KB,
            // twice per request).
            describe_turn(&mut record, shared, conversation, turn, resent_images);
            // The next turn counts from when this worker learned the response had ended, as
            // AIPerf's counts from the credit's return: `end_ns` is the kernel's stamp of the
            // last bytes, and when a burst of sessions ends at once on one worker, the later
            // ones were scored late by the time it took to handle the earlier ones.
            let next_at = (!last).then(|| {
                let ended = shared.clock.now().max(record.end_ns);
                ctx.timing
                    .borrow()
                    .next_turn_at(conversation, turn + 1, record.intended_ns, ended)
            });
            if next_at.is_none() {
                drop(guard.take());
                drop(paced.take());
            }
            // Built now, before the wait, so the next send is not delayed by it.
            let next_turn = conversation.turns.get(turn as usize + 1);
            if let (Some((endpoint, bodies)), Some(_), Some(next)) =
                (history_body, next_at, next_turn)
            {
                if let Some(this) = conversation.turns.get(turn as usize) {
                    history_images = history_images.saturating_add(image_count(this));
                    history.push(this.clone());
                }
                if let Some(reply) = reply(endpoint, &record) {
                    history.push(Turn {
                        texts: vec![reply],
                        role: Some("assistant".to_owned()),
                        ..Turn::default()
                    });
                }
                let mut body = Vec::new();
                if let Ok(true) = endpoint.format_session_payload(&history, next, &mut body) {
                    let bytes = ctx.transport.prepare(&bodies.path, &bodies.headers, &body);
                    // The body's texts, as AIPerf counts them: the conversation's system and
                    // user context messages first, when the endpoint sends them.
                    let sends_context =
                        endpoint.metadata().consumes_system_message && next.raw_payload.is_none();
                    let context = next.context_messages().filter(|_| sends_context);
                    let turns = history.iter().chain([next]).flat_map(|t| &t.texts);
                    let texts = context.chain(turns.map(String::as_str));
                    built = Some((bytes, texts.collect::<Vec<_>>().join(" ")));
                }
            }
            shared.completed.fetch_add(1, Ordering::Relaxed);
            // Requests the stop cut off or kept from going are not errors, in the progress
            // as in the results.
            if record.outcome.is_some() && !record.cut_off {
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
            ctx.tx.send_framed(record);
            next_at
        };
        let Some(at) = next_at else {
            return;
        };
        if ctx.past_deadline(at) {
            break;
        }
        if at > shared.clock.now() {
            let wake = crate::engine::pacer::sleep_until(shared.clock.instant(at));
            if let Either::Right(()) = race(wake, ctx.stopped.fired()).await {
                break;
            }
        }
        if shared.stop.load(Ordering::Relaxed) || ctx.past_deadline(shared.clock.now()) {
            break;
        }
        intended = match &paced {
            // The turn is due at the tick it was put on; the loop took its credit (and
            // its prefill slot) for it.
            Some(paced) => match race(paced.next_tick(), ctx.stopped.fired()).await {
                Either::Left(Some(tick)) => {
                    (credit, prefill) = (tick.credit, tick.prefill);
                    tick.at
                }
                Either::Left(None) | Either::Right(()) => break,
            },
            None => {
                // As AIPerf: every turn takes a prefill slot before its credit, the
                // session's slot already held; the turn is due that much later.
                let mut held_back = 0;
                if let Some(p) = &ctx.prefill {
                    match race(p.slots.acquire_timed(&shared.clock), ctx.stopped.fired()).await {
                        Either::Left((slot, waited)) => (prefill, held_back) = (Some(slot), waited),
                        Either::Right(()) => break,
                    }
                }
                credit = shared.credits[ctx.phase_idx].fetch_add(1, Ordering::Relaxed);
                if ctx.count.is_some_and(|c| credit >= c) {
                    break;
                }
                shared.sent.fetch_add(1, Ordering::Relaxed);
                at.saturating_add(held_back)
            }
        };
        turn += 1;
        cancel_after = draws
            .as_mut()
            .filter(|_| ctx.cancel_share > 0.0)
            .is_some_and(|d| d.next_f64() < ctx.cancel_share)
            .then_some(ctx.cancel_after);
    }
    drop(guard);
}

/// The assistant's reply in a record, as AIPerf keeps it for the next turn: the text of
/// every response, a reasoning chunk's content (its reasoning when it has no content);
/// `None` when there is no text (an error, an empty answer, embeddings).
fn reply<E: EndpointProtocol>(endpoint: &E, record: &RequestRecord) -> Option<String> {
    let mut text = String::new();
    let mut results = Vec::with_capacity(record.responses.len());
    endpoint.parse_responses(&record.responses, &mut results);
    for result in results {
        if let Ok(Some(parsed)) = result {
            match parsed.data {
                ResponseData::Text(t) => text.push_str(&t),
                ResponseData::Reasoning { content, .. } if !content.is_empty() => {
                    text.push_str(&content);
                }
                ResponseData::Reasoning { reasoning, .. } => text.push_str(&reasoning),
                _ => {}
            }
        }
    }
    (!text.is_empty()).then_some(text)
}

fn image_count(turn: &Turn) -> u32 {
    u32::try_from(turn.images.len()).unwrap_or(u32::MAX)
}

/// What the record of turn `turn` says of the request beyond its timings: the trace
/// timestamp it was scheduled at, the images its body carried (`resent_images` of them
/// from the history it sent again), and its session's audio length, which AIPerf reads
/// off the first turn.
fn describe_turn(
    record: &mut RequestRecord,
    shared: &Shared,
    conversation: &Conversation,
    turn: u32,
    resent_images: u32,
) {
    let this = || conversation.turns.get(turn as usize);
    // The flags first: a run sends each of its (many, unique) conversations once, so the
    // turn is cold, and reading it was the costliest load of a session's step.
    if shared.fixed_schedule {
        record.trace_ms = this()
            .and_then(|t| t.timestamp_ms)
            .filter(|ts| ts.is_finite());
    }
    if shared.sends_images {
        record.images = this().map_or(0, image_count).saturating_add(resent_images);
    }
    if shared.sends_audio {
        record.audio_duration_s = conversation.turns.first().and_then(|t| t.audio_duration_s);
    }
}

/// One turn to send, and the credit it took.
struct TurnRequest<'a> {
    req: &'a PreparedRequest,
    correlation_id: Cow<'a, str>,
    credit: u64,
    intended: Nanos,
    last: bool,
    cancel_after: Option<Duration>,
    prefill: Option<SlotGuard>,
}

/// One request of a session, cancelled when the run stops or its cancellation is due;
/// the record comes back either way. `built` replaces the prepared request (a chat turn
/// with its history) and carries the texts to count its input tokens from.
async fn send_turn<S, T, E, U>(
    ctx: &PhaseContext<S, T, E, U>,
    turn: TurnRequest<'_>,
    built: Option<(Vec<u8>, String)>,
) -> RequestRecord
where
    T: TransportProtocol,
    E: EndpointProtocol,
    U: UrlSelectionStrategyProtocol,
{
    let shared = &*ctx.shared;
    let TurnRequest {
        req,
        correlation_id,
        credit,
        intended,
        last,
        cancel_after,
        prefill,
    } = turn;
    let (bytes, input_text) = match built {
        Some((bytes, text)) => (Some(bytes), Some(text)),
        None => (None, None),
    };
    let mut record = RequestRecord {
        worker_id: ctx.worker_id,
        credit_index: credit,
        conversation_index: req.conversation_index,
        turn_index: req.turn_index,
        x_request_id: shared
            .given_request_id
            .clone()
            .unwrap_or_else(super::ids::uuid4),
        // The session's turns share a correlation id, and the last one lets a sticky
        // connection go (`--connection-reuse-strategy sticky-user-sessions`).
        x_correlation_id: correlation_id.into_owned(),
        final_turn: Some(last),
        phase: Some(ctx.phase),
        intended_ns: intended,
        input_tokens: req.input_tokens.filter(|_| input_text.is_none()),
        input_text,
        requested_output_tokens: req.max_tokens,
        sent_request: (shared.config.export_level == crate::config::ExportLevel::Raw)
            .then(Vec::new),
        // Only a request holding a prefill slot needs its events as they come.
        event_tap: prefill.as_ref().map(|_| Arc::new(EventTap::default())),
        ..RequestRecord::default()
    };
    let first_content = match (&ctx.prefill, &record.event_tap, prefill) {
        (Some(p), Some(tap), Some(slot)) => Some(FirstContent {
            endpoint: &*p.endpoint,
            tap: tap.clone(),
            slot: Some(slot),
        }),
        _ => None,
    };
    // A warmup's grace period ends the warmup, not the run.
    let stopped = match ctx.phase {
        Phase::Warmup => "cancelled when the warmup stopped",
        Phase::Profiling => "cancelled when the run stopped",
    };
    // Built in a block that ends before the await, so that the futures moved into the
    // race keep no room of their own beside it (see the session loop above).
    let raced = {
        let send = async {
            let request = match bytes.as_deref() {
                Some(built) => built,
                None => req.bytes.ready(&shared.preparation, &shared.clock).await,
            };
            let url = ctx.urls.next();
            if let (Phase::Profiling, Some(first)) = (ctx.phase, &shared.first_profiling_send) {
                // Read just before the transport stamps the request's start, nothing
                // awaited in between, and published before any reply can exist.
                let now = shared.clock.now();
                if now < first.load(Ordering::Relaxed) {
                    first.fetch_min(now, Ordering::AcqRel);
                }
            }
            ctx.transport
                .send(request, url, shared.streaming, &shared.clock, &mut record)
                .await;
            // Job APIs: the submit is followed by polls, in the same record and to the
            // same server, which is the one that knows the job.
            if let Some(endpoint) = &ctx.job_endpoint {
                let transport = &*ctx.transport;
                follow_ups(&**endpoint, transport, url, &shared.clock, &mut record).await;
            }
        };
        let stopper = async {
            match cancel_after {
                // Boxed: monoio's timer entry is cache-line aligned, and inline it would
                // make every request's task larger and over-aligned (see
                // `engine::cancel::race`).
                Some(after) => {
                    match race(Box::pin(monoio::time::sleep(after)), ctx.cancel.fired()).await {
                        // AIPerf's words for a --request-cancellation-rate cancellation.
                        Either::Left(()) => (
                            format!(
                                "Request cancelled {:.3}s after being sent",
                                after.as_secs_f64()
                            ),
                            false,
                        ),
                        Either::Right(()) => (stopped.to_owned(), true),
                    }
                }
                None => {
                    ctx.cancel.fired().await;
                    (stopped.to_owned(), true)
                }
            }
        };
        // The slot watch never finishes first: the request's end drops it, and with it a
        // slot still held (an error, a cancellation or a stream without content: AIPerf
        // frees it when the credit returns without a first token). Without one it is
        // never polled.
        race(race(send, Watch(first_content)), stopper)
    };
    let cancelled = match raced.await {
        Either::Left(_) => None,
        Either::Right(why) => Some(why),
    };
    if let Some((why, cut_off)) = cancelled {
        // Stopped before a byte of it was written (still connecting when a second signal
        // came): the server never saw it, as with those the first signal kept back.
        let unsent = cut_off && ctx.phase == Phase::Profiling && record.write_start_ns.is_none();
        let why = if unsent {
            crate::record::NOT_SENT
        } else {
            why.as_str()
        };
        // The watchdog that cancels at the grace period's end may run late on a busy
        // worker; the request was cut off at that end, and its record says so (a later
        // stamp stretched the phase's window, and its rates with it).
        let now = shared.clock.now();
        let at = match cut_off {
            true => now.min(ctx.grace_end.max(record.start_ns)),
            false => now,
        };
        mark_cancelled(&mut record, at, why);
        record.cut_off = cut_off && record.outcome == Some(crate::record::Outcome::Cancelled);
    } else if record.outcome.is_none() && record.end_ns > ctx.grace_end {
        // Answered after the grace period, before the late watchdog cancelled it: cut
        // off at that end like the requests still in flight then.
        let at = ctx.grace_end.max(record.start_ns);
        mark_cancelled(&mut record, at, stopped);
        record.cut_off = true;
    } else if record.was_kept_from_sending() {
        // Kept from being sent by the stop: recorded as cancelled by it, and left out of
        // the metrics as the requests it cut off in flight are.
        record.was_cancelled = true;
        record.cut_off = true;
    }
    record.event_tap = None;
    record
}

/// A request's [`FirstContent`], when it holds a prefill slot; never ready either way.
struct Watch<'a, E>(Option<FirstContent<'a, E>>);

impl<E: EndpointProtocol> std::future::Future for Watch<'_, E> {
    type Output = std::convert::Infallible;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        // Every field is `Unpin`.
        match &mut self.get_mut().0 {
            Some(watch) => std::pin::Pin::new(watch).poll(cx),
            None => std::task::Poll::Pending,
        }
    }
}

/// Holds a request's prefill slot until the transport has offered its first content
/// response (AIPerf's first-token callback: the first event the endpoint reads as
/// content, the TTFT instant), then frees it.
///
/// Polled by [`race`] right after the transport's future on every wake of the request's
/// task, so it sees the events of a read in the same poll that took them in; it needs
/// no waker of its own, and is never ready.
struct FirstContent<'a, E> {
    endpoint: &'a E,
    tap: Arc<EventTap>,
    slot: Option<SlotGuard>,
}

impl<E: EndpointProtocol> std::future::Future for FirstContent<'_, E> {
    type Output = std::convert::Infallible;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        // Every field is `Unpin`.
        let this = self.get_mut();
        if this.slot.is_some() {
            let endpoint = this.endpoint;
            let content = this.tap.take().iter().any(|chunk| {
                matches!(endpoint.parse_response(chunk), Ok(Some(r)) if r.data.is_content())
            });
            if content {
                this.tap.close();
                this.slot = None;
            }
        }
        std::task::Poll::Pending
    }
}

/// The tasks that run a worker's sessions in one phase, kept after their session ends
/// and handed the next one. A task per session cost an allocation of its multi-kilobyte
/// future and a copy of it into the task on every request; with the allocator's large-
/// chunk paths that was about a tenth of a worker's CPU against a fast server, and kept
/// tasks take about half of it away (the future is still built once per session).
pub(crate) struct Runners<S, T, E, U> {
    ctx: Rc<PhaseContext<S, T, E, U>>,
    idle: RefCell<Vec<Rc<Runner>>>,
    closed: std::cell::Cell<bool>,
}

impl<S, T, E, U> Runners<S, T, E, U> {
    /// Ends every idle runner, and each busy one as its session ends.
    fn close(&self) {
        self.closed.set(true);
        let idle = std::mem::take(&mut *self.idle.borrow_mut());
        for runner in idle {
            runner.wake();
        }
    }
}

/// Closes a phase's runners when the phase's loop ends, however it ends: a runner left
/// waiting would keep the phase's context, and the record channel in it, open.
pub(crate) struct CloseRunners<S, T, E, U>(pub Rc<Runners<S, T, E, U>>);

impl<S, T, E, U> Drop for CloseRunners<S, T, E, U> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// One runner's hand-off: the session it is given, and how to wake it.
#[derive(Default)]
struct Runner {
    job: RefCell<Option<(SessionStart, SlotGuard)>>,
    waker: RefCell<Option<std::task::Waker>>,
}

impl Runner {
    /// Wakes the runner's task, if it waits for a session.
    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

impl<S, T, E, U> Runners<S, T, E, U>
where
    S: TimingStrategyProtocol + 'static,
    T: TransportProtocol + 'static,
    E: EndpointProtocol + 'static,
    U: UrlSelectionStrategyProtocol + 'static,
{
    pub fn new(ctx: Rc<PhaseContext<S, T, E, U>>) -> Rc<Self> {
        Rc::new(Runners {
            ctx,
            idle: RefCell::new(Vec::new()),
            closed: std::cell::Cell::new(false),
        })
    }

    /// Runs a session on an idle runner, or on a new one when none is idle.
    pub fn start(self: &Rc<Self>, start: SessionStart, guard: SlotGuard) {
        let runner = self.idle.borrow_mut().pop();
        let (runner, new) = match runner {
            Some(runner) => (runner, false),
            None => (Rc::new(Runner::default()), true),
        };
        *runner.job.borrow_mut() = Some((start, guard));
        if new {
            drop(monoio::spawn(Rc::clone(self).run(runner)));
        } else {
            runner.wake();
        }
    }

    /// Runs the sessions handed to `me`, the first already in its job cell. Each session
    /// comes through the cell rather than as an argument: a task's future keeps room for
    /// its arguments and for every local that held a session's start across an await,
    /// and those copies (three of 200 bytes) were a sixth of the task.
    async fn run(self: Rc<Self>, me: Rc<Runner>) {
        loop {
            let session = {
                let Some((start, guard)) = me.job.borrow_mut().take() else {
                    return;
                };
                run(self.ctx.clone(), start, guard)
            };
            session.await;
            if self.closed.get() {
                return;
            }
            self.idle.borrow_mut().push(me.clone());
            let given = std::future::poll_fn(|cx| {
                if me.job.borrow().is_some() {
                    return std::task::Poll::Ready(true);
                }
                if self.closed.get() {
                    return std::task::Poll::Ready(false);
                }
                *me.waker.borrow_mut() = Some(cx.waker().clone());
                std::task::Poll::Pending
            })
            .await;
            if !given {
                return;
            }
        }
    }
}
