//! One measuring worker: a monoio runtime on its own thread that issues its share of the
//! schedule and times every request.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use crate::config::ProfileConfig;
use crate::dataset::DatasetView;
use crate::engine::cancel::{race, CancelSignal, Either, SplitMix};
use crate::engine::health::{thread_cpu_seconds, WorkerReport};
use crate::engine::paced;
use crate::engine::pipeline::RecordSender;
use crate::engine::rate_ramp::{self, Arrivals, RateRamp};
use crate::engine::session;
use crate::engine::slots::Slots;
use crate::engine::urls::UrlPicker;
use crate::plugin::{DispatchEnum, PluginContext, PluginKind, PluginSet, WorkerShare};
use crate::protocols::{
    ArrivalPatternProtocol, DatasetSamplerProtocol, EndpointProtocol, FollowUp, NextCredit,
    RampProtocol, TimingStrategyProtocol, TransportProtocol,
};
use crate::record::{ErrorDetails, Nanos, Outcome, Phase, RequestRecord, RunClock};

/// A request to be written: head and body in one buffer, once prepared.
pub(crate) struct PreparedRequest {
    pub bytes: crate::engine::run::Staged,
    pub conversation_index: usize,
    pub turn_index: u32,
    pub input_tokens: Option<u32>,
    pub max_tokens: Option<u32>,
}

/// One phase of the run (warmup, profiling) and its stop conditions.
pub(crate) struct PhasePlan {
    pub phase: Phase,
    pub count: Option<u64>,
    pub duration_ns: Option<u64>,
    /// Sessions to start at most (`--conversation-num`); their later turns still go.
    pub sessions: Option<u64>,
    /// The phase's own load settings (the warmup's `--warmup-concurrency` and
    /// `--warmup-request-rate`); `None` runs it at the run's.
    pub load: Option<Arc<ProfileConfig>>,
}

/// How later turns of chat sessions are rebuilt at run time, with the replies they got.
pub(crate) struct SessionBodies {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// State shared by every worker; only atomics are written during the run.
pub(crate) struct Shared {
    pub clock: RunClock,
    pub config: ProfileConfig,
    /// Every turn of every conversation, conversation by conversation.
    pub requests: Vec<PreparedRequest>,
    /// Index in `requests` of each conversation's first turn.
    pub turn_offsets: Vec<usize>,
    /// The dataset, for timing strategies that schedule specific conversations.
    pub conversations: Vec<crate::dataset::Conversation>,
    /// A synthetic dataset composed while the run goes: sessions take their conversations
    /// from it instead of from `conversations` (then empty).
    pub on_demand: Option<crate::engine::on_demand::OnDemand>,
    /// The run replays a trace's timestamps (`fixed_schedule`).
    pub fixed_schedule: bool,
    /// The endpoint sends a turn's images, and its audio (its metadata's
    /// `supports_images` and `supports_audio`): records count them for AIPerf's image
    /// metrics and RTFx.
    pub sends_images: bool,
    pub sends_audio: bool,
    pub streaming: bool,
    pub phases: Vec<PhasePlan>,
    /// Credits issued so far, per phase.
    pub credits: Vec<AtomicU64>,
    /// Sessions started so far, per phase.
    pub sessions: Vec<AtomicU64>,
    /// Per phase: sessions the worker loops opened with a conversation they drew (not
    /// one a timing strategy scheduled), and whether the phase's last credit opened one.
    /// Together they tell where the next phase's draws start (see [`start_barrier`]).
    pub drawn_sessions: Vec<AtomicU64>,
    pub last_credit_opened: Vec<AtomicBool>,
    /// Set when the endpoint sends a session's history (chat) and some conversation has
    /// several turns: those turns' bodies are built when they are sent.
    pub session_bodies: Option<SessionBodies>,
    /// Start of each phase, one instant for every worker (set at the start barrier); the
    /// record thread reads it too, as the start of the phase's observation window.
    pub phase_start_ns: Arc<[AtomicU64]>,
    /// With `--slice-duration`: when the first profiling request went out (`u64::MAX`
    /// before), where the record thread's time slices start.
    pub first_profiling_send: Option<Arc<AtomicU64>>,
    /// Workers meet here before and after each phase.
    pub barrier: Barrier,
    /// Stop issuing new requests (SIGINT, or a failed worker).
    pub stop: AtomicBool,
    /// Run instant after which in-flight requests are cancelled (`u64::MAX`: never).
    /// Set by SIGINT: the grace period after the first, now after the second.
    pub cancel_at_ns: AtomicU64,
    pub next_conversation: AtomicU64,
    pub sent: AtomicU64,
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    /// Per phase: open-loop arrivals not sent because every `--concurrency` slot (or every
    /// `--prefill-concurrency` slot) was busy.
    pub skipped_arrivals: Vec<AtomicU64>,
    /// Per phase: arrivals whose conversation was not composed yet when the run stopped
    /// or the grace period ended (no record: there was nothing to send), and the earliest
    /// scheduled time among them (`u64::MAX` while none).
    pub unsent_arrivals: Vec<AtomicU64>,
    pub unsent_arrival_first_intended_ns: AtomicU64,
    /// The preparation of request bytes during the run, and the waits it caused.
    pub preparation: crate::engine::run::Preparation,
    /// `X-Request-ID` and `X-Correlation-ID` values given with `--header`: sent instead
    /// of ours, so they are the records' ids too.
    pub given_request_id: Option<String>,
    pub given_correlation_id: Option<String>,
}

/// Which monoio driver a worker runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Driver {
    /// io_uring when the kernel allows it, else epoll.
    Auto,
    Uring,
    Epoll,
}

pub(crate) fn concurrency_share(total: Option<u32>, worker: u32, workers: u32) -> Option<u32> {
    total.map(|c| c / workers + u32::from(worker < c % workers))
}

/// Runs one worker to completion on the current thread.
pub(crate) fn run_worker<P: PluginSet>(
    id: u32,
    count: u32,
    shared: Arc<Shared>,
    tx: RecordSender,
    driver: Driver,
) -> Result<WorkerReport, String> {
    let started = std::time::Instant::now();
    let cpu_before = thread_cpu_seconds();
    let fut = worker_main::<P>(id, count, shared.clone(), tx);
    let result = match driver {
        Driver::Auto => monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .uring_builder(uring_builder())
            .enable_timer()
            .build()
            .map_err(|e| format!("worker {id}: cannot start the I/O runtime: {e}"))?
            .block_on(fut),
        Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .map_err(|e| format!("worker {id}: cannot start the epoll runtime: {e}"))?
            .block_on(fut),
        Driver::Uring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .uring_builder(uring_builder())
            .enable_timer()
            .build()
            .map_err(|e| format!("worker {id}: io_uring is not available here: {e}"))?
            .block_on(fut),
    };
    if result.is_err() {
        // Other workers wait at the barrier for this one; let them finish promptly.
        shared.stop.store(true, Ordering::SeqCst);
    }
    result.map(|()| WorkerReport {
        cpu_s: thread_cpu_seconds() - cpu_before,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// The io_uring set-up of a worker's ring. By default the kernel runs a completion's task
/// work at once, interrupting the worker wherever it is (an IPI and a signal-style return
/// to user mode per completion, which the receiving core pays). The worker only looks at
/// completions when it enters the kernel to park, so `COOP_TASKRUN` (Linux 5.19) lets the
/// kernel run that work at the next entry instead: same timestamps, fewer interrupts.
/// Older kernels reject the flag and get the plain ring.
fn uring_builder() -> io_uring::Builder {
    static COOP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let coop = *COOP.get_or_init(|| {
        io_uring::IoUring::<io_uring::squeue::Entry>::builder()
            .setup_coop_taskrun()
            .build(8)
            .is_ok()
    });
    let mut builder = io_uring::IoUring::builder();
    if coop {
        builder.setup_coop_taskrun();
    }
    builder
}

fn create<E: DispatchEnum>(
    name: &str,
    config: &ProfileConfig,
    worker: WorkerShare,
) -> Result<E, String> {
    let kind = E::Kind::from_name(name)
        .ok_or_else(|| format!("no {} plugin named `{name}` is linked", E::Kind::CATEGORY))?;
    let ctx = PluginContext {
        config,
        entry: kind.entry(),
        worker: Some(worker),
    };
    E::create(kind, &ctx).map_err(|e| format!("{}:{}: {e}", E::Kind::CATEGORY, kind.name()))
}

/// How a worker's requests leave it, kept across its phases: the transport (its
/// connections) and the URL choice (its strategy's sequence).
struct Egress<P: PluginSet> {
    transport: Rc<P::Transport>,
    urls: Rc<UrlPicker<P::UrlSelectionStrategy>>,
}

async fn worker_main<P: PluginSet>(
    id: u32,
    count: u32,
    shared: Arc<Shared>,
    tx: RecordSender,
) -> Result<(), String> {
    let share = WorkerShare { id, count };
    let config = &shared.config;
    let setup = (|| {
        let transport: P::Transport = create(&config.transport, config, share)?;
        let strategy: P::UrlSelectionStrategy =
            create(&config.url_selection_strategy, config, share)?;
        let sampler: Option<P::DatasetSampler> = match &config.dataset_sampling_strategy {
            Some(name) => Some(create(name, config, share)?),
            None => None,
        };
        let egress = Egress::<P> {
            transport: Rc::new(transport),
            urls: Rc::new(UrlPicker::new(strategy, config.url.len())),
        };
        Ok::<_, String>((egress, sampler))
    })();
    let (egress, mut sampler) = match setup {
        Ok(t) => t,
        Err(e) => {
            // Keep the barrier protocol so the other workers are not left waiting.
            shared.stop.store(true, Ordering::SeqCst);
            for phase_idx in 0..shared.phases.len() {
                start_barrier(&shared, phase_idx);
                shared.barrier.wait();
            }
            return Err(e);
        }
    };
    let tx = Rc::new(tx);
    let mut first_error = None;

    for (phase_idx, plan) in shared.phases.iter().enumerate() {
        start_barrier(&shared, phase_idx);
        if first_error.is_none() && !shared.stop.load(Ordering::SeqCst) {
            let slots_total = plan
                .load
                .as_deref()
                .unwrap_or(config)
                .effective_concurrency();
            let phase = PhaseRun {
                share,
                phase_idx,
                plan,
                slots_total,
                egress: &egress,
                sampler: &mut sampler,
            };
            if let Err(e) = run_phase::<P>(phase, &shared, &tx).await {
                shared.stop.store(true, Ordering::SeqCst);
                first_error = Some(e);
            }
        }
        // The barrier blocks this thread, and the executor with it: the phase's last
        // records go over now rather than once the next phase has begun.
        tx.flush_block();
        shared.barrier.wait();
    }
    first_error.map_or(Ok(()), Err)
}

/// What a worker brings to one phase.
struct PhaseRun<'a, P: PluginSet> {
    share: WorkerShare,
    phase_idx: usize,
    plan: &'a PhasePlan,
    slots_total: Option<u32>,
    egress: &'a Egress<P>,
    /// `--dataset-sampling-strategy`; `None` takes the dataset in order.
    sampler: &'a mut Option<P::DatasetSampler>,
}

async fn run_phase<P: PluginSet>(
    phase: PhaseRun<'_, P>,
    shared: &Arc<Shared>,
    tx: &Rc<RecordSender>,
) -> Result<(), String> {
    let PhaseRun {
        share,
        phase_idx,
        plan,
        slots_total,
        egress,
        sampler,
    } = phase;
    let config = plan.load.as_deref().unwrap_or(&shared.config);
    let clock = shared.clock;
    let slots = Slots::new(concurrency_share(slots_total, share.id, share.count));
    if slots_total.is_some() && concurrency_share(slots_total, share.id, share.count) == Some(0) {
        return Ok(());
    }
    // Sessions ask it for their later turns' instants (`session::run`).
    let mut timing: P::TimingStrategy = create(&config.effective_timing_mode(), config, share)?;
    // The arrival pattern sees this phase's own bounds (a warmup's count and duration, not
    // the run's): a pattern may shape its arrivals by them (`poisson` places exactly
    // `rate x duration`).
    let bounded = ProfileConfig {
        request_count: plan.count,
        benchmark_duration: plan.duration_ns.map(|ns| ns as f64 / 1e9),
        ..config.clone()
    };
    let concurrency_ramp =
        ramp_from_one::<P>(config, share, config.concurrency_ramp_duration, slots_total)?;
    // `--prefill-concurrency`, split over the workers as the concurrency is (the run has
    // no more workers than prefill slots, so each has one once any ramp is over).
    let prefill_total = config.prefill_concurrency;
    let prefill = match prefill_total {
        Some(_) => Some(session::Prefill {
            slots: Slots::new(concurrency_share(prefill_total, share.id, share.count)),
            endpoint: Rc::new(create(&config.endpoint_type, config, share)?),
        }),
        None => None,
    };
    let prefill_ramp = ramp_from_one::<P>(
        config,
        share,
        config.prefill_concurrency_ramp_duration,
        prefill_total,
    )?;
    let prefill_slots = prefill.as_ref().map(|p| p.slots.clone());
    // Job APIs only (endpoint metadata `requires_polling`); `None` for every other endpoint.
    let job_endpoint: Option<Rc<P::Endpoint>> = job_endpoint::<P>(config, share)?;

    let cancel = CancelSignal::default();
    // As AIPerf's simulator, which draws no cancellation for a warmup request.
    let cancel_share = match plan.phase {
        Phase::Warmup => 0.0,
        _ => config.request_cancellation_rate.clamp(0.0, 100.0) / 100.0,
    };
    let cancel_after =
        std::time::Duration::from_secs_f64(config.request_cancellation_delay.max(0.0));
    let seed = config.random_seed.unwrap_or_else(|| clock.wall_ns(0));
    let mut draws = SplitMix::new(seed ^ (u64::from(share.id) << 48) ^ 0x6361_6e63);

    let phase_start = shared.phase_start_ns[phase_idx].load(Ordering::SeqCst);
    let pattern = config.effective_arrival_pattern();
    let mut arrivals: Arrivals<P::ArrivalPattern, P::Ramp> =
        match (config.request_rate_ramp_duration, config.request_rate) {
            (Some(duration), Some(rate)) if duration > 0.0 => {
                // Under a rate ramp every worker runs AIPerf's one rate loop and keeps its
                // share of the sends (`rate_ramp`), so its pattern serves the whole run
                // and draws alike on every worker: one seed for all.
                let whole = ProfileConfig {
                    random_seed: Some(seed),
                    ..bounded
                };
                let one = WorkerShare { id: 0, count: 1 };
                let ramp: P::Ramp = create(&config.ramp_type, config, share)?;
                let step = rate_ramp::update_interval_s();
                Arrivals::new(
                    create(&pattern, &whole, one)?,
                    Some(RateRamp::new(ramp, rate, duration, step, share)),
                )
            }
            _ => Arrivals::new(create(&pattern, &bounded, share)?, None),
        };
    // Every worker is past the phase's start barrier: the earlier phases drew all they
    // will.
    let first_draw = timing.after_draws(shared.next_conversation.load(Ordering::SeqCst));
    let dataset = match &shared.on_demand {
        Some(on_demand) => {
            // Composed ahead in draw order, the draws passed by would hold their place.
            on_demand.pass(first_draw);
            DatasetView::Composed {
                turns: &on_demand.turns,
            }
        }
        None => DatasetView::Held(&shared.conversations),
    };
    timing
        .prepare(dataset, share, phase_start)
        .map_err(|e| format!("timing_strategy {}: {e}", config.effective_timing_mode()))?;
    let deadline = plan.duration_ns.map(|d| phase_start + d);
    let history_endpoint: Option<Rc<P::Endpoint>> = match &shared.session_bodies {
        Some(_) => Some(Rc::new(create(&config.endpoint_type, config, share)?)),
        None => None,
    };
    let stopped = CancelSignal::default();
    // This worker's loop starts no more sessions: `stopped`, or every session was started.
    let closed = CancelSignal::default();
    let grace = shared.config.grace_period(plan.phase == Phase::Warmup);
    let grace_end = match (deadline, grace) {
        (Some(d), Some(g)) => d.saturating_add((g.max(0.0) * 1e9) as u64),
        // No duration, or no grace period: in-flight requests finish however long.
        _ => u64::MAX,
    };
    let ctx = Rc::new(session::PhaseContext {
        shared: shared.clone(),
        timing: RefCell::new(timing),
        transport: egress.transport.clone(),
        urls: egress.urls.clone(),
        job_endpoint,
        history_endpoint,
        tx: tx.clone(),
        worker_id: share.id,
        phase: plan.phase,
        phase_idx,
        count: plan.count,
        deadline,
        grace_end,
        cancel: cancel.clone(),
        stopped: stopped.clone(),
        cancel_share,
        cancel_after,
        prefill,
    });
    let runners = session::Runners::new(ctx.clone());
    let _close_runners = session::CloseRunners(runners.clone());
    let past_deadline = |t: Nanos| deadline.is_some_and(|d| t >= d);
    // The phase closed because its duration ended, not because the run stopped: the
    // arrivals due until the deadline while every slot was busy were skipped, and the
    // loop goes through them (counting each) before it ends, so that sent and skipped
    // add up to the schedule's R x D.
    let duration_over = || !shared.stop.load(Ordering::Relaxed) && past_deadline(clock.now());
    if plan.phase == Phase::Profiling && grace_end != u64::MAX {
        // The run ends with this phase: past its grace period nothing more is written. A
        // client far behind its rate still holds arrivals due before the deadline: they
        // are recorded as kept from being sent (as after a signal), not sent only to be
        // cancelled at once.
        crate::http::client::halt_at(grace_end);
    }
    let phase_done = CancelSignal::default();
    let ramps = [
        (concurrency_ramp, Some(&slots), slots_total),
        (prefill_ramp, prefill_slots.as_ref(), prefill_total),
    ];
    for (ramp, ramped, total) in ramps {
        let (Some(ramp), Some(ramped)) = (ramp, ramped) else {
            continue;
        };
        ramped.set_capacity(concurrency_share(Some(1), share.id, share.count).unwrap_or(0));
        monoio::spawn(ramp_concurrency(
            ramp,
            ramped.clone(),
            total,
            share,
            phase_start,
            clock,
            phase_done.clone(),
        ));
    }
    monoio::spawn(watchdog(
        shared.clone(),
        Limits {
            phase_idx,
            count: plan.count,
            sessions: plan.sessions,
            deadline: deadline.unwrap_or(u64::MAX),
            grace_end,
        },
        Signals {
            stopped: stopped.clone(),
            closed: closed.clone(),
            cancel: cancel.clone(),
        },
        phase_done.clone(),
    ));

    // Later turns of the sessions started on ticks, waiting for ticks of their own.
    let later_turns = paced::TurnQueue::default();
    // Nothing left for this loop: the run stopped, or no session may start and none of
    // this worker's sessions has a turn left to put on a tick (AIPerf's loop keeps ticking
    // for those after its last new session).
    let ended = || race(stopped.fired(), later_turns.finished(&closed));
    // Open-loop arrivals before this instant came while every slot was busy: skipped.
    let mut skip_before: Nanos = 0;
    // Ticks before this instant came while no session could start and no later turn
    // waited: they pass unused, as AIPerf's do (not skipped: no slot was missing).
    let mut unused_before: Nanos = 0;
    // When this loop last got a slot it had waited for: a scheduled request due while it
    // waited is held back by the limit too (AIPerf waits for each one's slot apart).
    let mut unblocked: Nanos = 0;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let now = clock.now();
        let next = ctx.timing.borrow_mut().next_credit(&mut arrivals, now);
        // An open-loop arrival under a concurrency cap: AIPerf sends it only if a slot
        // is free, else skips it (a queue behind the cap would grow without bound).
        let tick = matches!(next, NextCredit::At(_));
        let (intended, session) = match next {
            NextCredit::Done => break,
            NextCredit::At(at) => (Some(at), None),
            NextCredit::Turn {
                at,
                conversation,
                turn,
                turns,
                user,
                draw,
            } => (Some(at), Some((conversation, turn, turns, user, draw))),
            NextCredit::WhenSlotFree => (None, None),
        };
        if let Some(at) = intended {
            if past_deadline(at) {
                break;
            }
            if tick && at < skip_before {
                shared.skipped_arrivals[phase_idx].fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if tick && at < unused_before {
                continue;
            }
            if at > clock.now() {
                let wake = crate::engine::pacer::sleep_until(clock.instant(at));
                if let Either::Right(_) = race(wake, ended()).await {
                    break;
                }
            }
        }
        // A record thread that falls behind holds back new requests (counted, reported).
        if let Either::Right(_) = race(tx.room(&clock), ended()).await {
            break;
        }
        if let (true, Some(at)) = (tick, intended) {
            // A tick goes first to a later turn waiting for one, as AIPerf's goes to its
            // continuation queue; the turn's session already holds its concurrency slot.
            if later_turns.has_waiting() {
                // AIPerf's loop waits here for the turn's prefill slot; the wait shifts
                // the turn's schedule, as below.
                let (prefill, held_back) = match &prefill_slots {
                    None => (None, 0),
                    Some(p) => match race(p.acquire_timed(&clock), ended()).await {
                        Either::Left((slot, waited)) => (Some(slot), waited),
                        Either::Right(_) => break,
                    },
                };
                // Due before the deadline (checked above), it goes however late: the rate
                // offers all R x D of its arrivals.
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                // Its session may have stopped waiting meanwhile (the run stopped).
                let Some(turn) = later_turns.pop() else {
                    continue;
                };
                let credit = shared.credits[phase_idx].fetch_add(1, Ordering::Relaxed);
                if plan.count.is_some_and(|c| credit >= c) {
                    break;
                }
                shared.sent.fetch_add(1, Ordering::Relaxed);
                turn.grant(paced::Tick {
                    at: at.saturating_add(held_back),
                    credit,
                    prefill,
                });
                continue;
            }
            // No turn waits and no session may start: while this worker's sessions still
            // have turns to come, its ticks pass unused until one of those turns waits
            // (waited for here rather than tick by tick: a rate the loop cannot keep up
            // with would never let the sessions run).
            let sessions_used_up = plan
                .sessions
                .is_some_and(|n| shared.sessions[phase_idx].load(Ordering::Relaxed) >= n);
            if sessions_used_up && later_turns.has_live() {
                match race(later_turns.queued(), ended()).await {
                    Either::Left(()) => unused_before = clock.now(),
                    Either::Right(_) => break,
                }
                continue;
            }
        }
        let mut slot_wait = 0;
        let guard = if tick {
            match slots.try_acquire() {
                Some(guard) => guard,
                None => {
                    shared.skipped_arrivals[phase_idx].fetch_add(1, Ordering::Relaxed);
                    match wait_for_room(&slots, &later_turns, &closed, &clock).await {
                        Some(freed) => skip_before = freed,
                        None if later_turns.has_live() => skip_before = clock.now(),
                        None if duration_over() => skip_before = deadline.unwrap_or(0),
                        None => break,
                    }
                    continue;
                }
            }
        } else {
            // A scheduled request (a trace, a user's turn) waits for its slot, as AIPerf's
            // does; the wait shifts its schedule, as below for the prefill slot.
            match race(slots.acquire_timed(&clock), closed.fired()).await {
                Either::Left((guard, waited)) => {
                    slot_wait = waited;
                    guard
                }
                Either::Right(()) => break,
            }
        };
        // The prefill slot comes second, as in AIPerf; an open-loop arrival that finds
        // none is skipped like one that finds no concurrency slot.
        // A wait for it shifts the request's schedule: the limit held it back, not the
        // client.
        let (prefill, held_back) = match &prefill_slots {
            None => (None, 0),
            Some(prefill) if tick => match prefill.try_acquire() {
                Some(slot) => (Some(slot), 0),
                None => {
                    drop(guard);
                    shared.skipped_arrivals[phase_idx].fetch_add(1, Ordering::Relaxed);
                    match wait_for_room(prefill, &later_turns, &closed, &clock).await {
                        Some(freed) => skip_before = freed,
                        None if later_turns.has_live() => skip_before = clock.now(),
                        None if duration_over() => skip_before = deadline.unwrap_or(0),
                        None => break,
                    }
                    continue;
                }
            },
            Some(prefill) => match race(prefill.acquire_timed(&clock), closed.fired()).await {
                Either::Left((slot, waited)) => (Some(slot), waited),
                Either::Right(()) => break,
            },
        };
        // A scheduled arrival is judged by when it was due (checked above): one due
        // before the deadline that the client reaches late still goes, so a rate offers
        // all R x D of its arrivals and the lateness shows in the records, not as a
        // request missing without a word. A closed-loop request goes while the duration
        // lasts.
        // Read after the waits for slots: a closed-loop request is due now, and its
        // lateness counts from here.
        let now = clock.now();
        if shared.stop.load(Ordering::Relaxed) || (intended.is_none() && past_deadline(now)) {
            break;
        }
        // The session limit first: a credit taken for a session that may not start would
        // be lost to the later turns of those that did (3 sessions of 3 turns with
        // --request-count 9 sent 8 at --concurrency 2).
        if plan
            .sessions
            .is_some_and(|n| shared.sessions[phase_idx].fetch_add(1, Ordering::Relaxed) >= n)
        {
            // Another worker took the last session since the check above: as there.
            if tick && later_turns.has_live() {
                continue;
            }
            break;
        }
        let credit = shared.credits[phase_idx].fetch_add(1, Ordering::Relaxed);
        if plan.count.is_some_and(|c| credit >= c) {
            break;
        }
        if session.is_none() {
            shared.drawn_sessions[phase_idx].fetch_add(1, Ordering::Relaxed);
            if plan.count == Some(credit + 1) {
                shared.last_credit_opened[phase_idx].store(true, Ordering::Relaxed);
            }
        }
        let (conversation, turn, turns, entry) = match (session, &shared.on_demand) {
            (Some((conversation, turn, turns, _, _)), None) => (conversation, turn, turns, None),
            // Composed on demand, a scheduled session takes the draw it was given.
            (Some((conversation, turn, turns, _, draw)), Some(on_demand)) => {
                let Some(draw) = draw else {
                    return Err(format!(
                        "timing_strategy {} scheduled conversation {conversation} without \
                         its draw, which a dataset composed on demand needs",
                        config.effective_timing_mode()
                    ));
                };
                // Its credit is taken: it waits for its conversation until the run stops
                // or the phase's grace period ends, not only while the loop is open
                // (the loop closes when the count's last credit is taken, and the session
                // of a credit taken just before went missing, unrecorded).
                match on_demand.take_draw(draw, shared, &cancel).await? {
                    Some(entry) if entry.index == conversation => {
                        (conversation, turn, turns, Some(entry))
                    }
                    Some(entry) => {
                        return Err(format!(
                            "timing_strategy {} scheduled conversation {conversation} as draw \
                             {draw}, which is conversation {}",
                            config.effective_timing_mode(),
                            entry.index
                        ))
                    }
                    None => {
                        count_unsent(shared, phase_idx, intended.unwrap_or(now));
                        break;
                    }
                }
            }
            // Composed on demand, the conversations come in the order of their draws.
            (None, Some(on_demand)) => match on_demand.take(shared, &cancel).await {
                Some(entry) => {
                    // Counted as with the dataset held: a later phase's strategy starts
                    // after these draws.
                    shared.next_conversation.fetch_add(1, Ordering::Relaxed);
                    (entry.index, 0, u32::MAX, Some(entry))
                }
                None => {
                    count_unsent(shared, phase_idx, intended.unwrap_or(now));
                    // The grace period ended with no signal: the arrivals still due before
                    // the deadline are counted the same way (the loop reaches each at
                    // once now), so the schedule's R x D are all accounted for.
                    if !shared.stop.load(Ordering::Relaxed) && intended.is_some() {
                        continue;
                    }
                    break;
                }
            },
            // Sampled sessions run whole conversations; the dataset is read in order.
            (None, None) => {
                let n = shared.conversations.len().max(1);
                let draw = shared.next_conversation.fetch_add(1, Ordering::Relaxed);
                let index = match sampler.as_mut() {
                    Some(sampler) => sampler.index(draw, n).min(n - 1),
                    None => (draw % n as u64) as usize,
                };
                (index, 0, u32::MAX, None)
            }
        };
        let length = match &entry {
            Some(entry) => entry.conversation.turns.len(),
            None => shared
                .conversations
                .get(conversation)
                .map_or(0, |c| c.turns.len()),
        };
        if turn as usize >= length {
            return Err(format!(
                "timing_strategy {} scheduled turn {turn} of conversation {conversation}, \
                 which the dataset does not have",
                config.effective_timing_mode()
            ));
        }
        let end = turn
            .saturating_add(turns.max(1))
            .min(u32::try_from(length).unwrap_or(u32::MAX));
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let cancel_after =
            (cancel_share > 0.0 && draws.next_f64() < cancel_share).then_some(cancel_after);
        let intended = intended.map_or(now, |at| {
            at.max(unblocked)
                .saturating_add(slot_wait)
                .saturating_add(held_back)
        });
        if slot_wait > 0 || held_back > 0 {
            unblocked = now;
        }
        let start = session::SessionStart {
            conversation,
            user: session.and_then(|(_, _, _, user, _)| user),
            entry,
            turn,
            end,
            credit,
            intended,
            cancel_after,
            draws: (end - turn > 1).then(|| SplitMix::new(draws.next_u64())),
            prefill,
            // A session started on a tick sends its later turns on ticks too.
            paced: (tick && end - turn > 1).then(|| later_turns.enter()),
        };
        runners.start(start, guard);
    }
    if shared.stop.load(Ordering::Relaxed) {
        count_unreached(shared, &ctx, &mut arrivals, phase_idx, plan.count, deadline);
    }
    // Turns still waiting for a tick get none; their sessions end.
    later_turns.close();
    // In-flight requests finish, unless the grace period after the duration ends or the
    // run is interrupted: then the watchdog cancels them and each records its cancellation.
    slots.idle().await;
    phase_done.fire();
    Ok(())
}

/// After a signal: the open-loop arrivals due before it that this worker's loop had not
/// reached (a client behind its rate) are counted as unsent, so that the stop accounts
/// for every arrival of the schedule up to it, as the grace period's end does.
fn count_unreached<S: TimingStrategyProtocol, A: ArrivalPatternProtocol, T, E, U>(
    shared: &Shared,
    ctx: &session::PhaseContext<S, T, E, U>,
    arrivals: &mut A,
    phase_idx: usize,
    count: Option<u64>,
    deadline: Option<Nanos>,
) {
    let now = shared.clock.now();
    let stop = crate::http::client::halted_since(now).unwrap_or(now);
    loop {
        let next = ctx.timing.borrow_mut().next_credit(arrivals, now);
        let NextCredit::At(at) = next else {
            return;
        };
        if at >= stop || deadline.is_some_and(|d| at >= d) {
            return;
        }
        let credit = shared.credits[phase_idx].fetch_add(1, Ordering::Relaxed);
        if count.is_some_and(|c| credit >= c) {
            return;
        }
        count_unsent(shared, phase_idx, at);
    }
}

/// An arrival of phase `phase_idx`, due at `intended`, that the stop kept from being sent
/// before its conversation was composed.
fn count_unsent(shared: &Shared, phase_idx: usize, intended: Nanos) {
    shared.unsent_arrivals[phase_idx].fetch_add(1, Ordering::Relaxed);
    shared
        .unsent_arrival_first_intended_ns
        .fetch_min(intended, Ordering::Relaxed);
}

/// Meets the other workers before a phase. One of them fixes the phase's start, a
/// millisecond ahead so no schedule starts in the past, and every worker's schedule then
/// shares that zero (a trace split over workers keeps its exact instants).
fn start_barrier(shared: &Shared, phase_idx: usize) {
    if shared.barrier.wait().is_leader() {
        // A dataset composed on demand drops the draw passed by in `run_phase`.
        if phase_idx > 0 && draw_was_dropped(shared, phase_idx - 1) {
            shared.next_conversation.fetch_add(1, Ordering::SeqCst);
        }
        let start = shared.clock.now() + 1_000_000;
        shared.phase_start_ns[phase_idx].store(start, Ordering::SeqCst);
    }
    shared.barrier.wait();
}

/// Whether AIPerf 0.13 would have drawn one more conversation in phase `phase_idx` than
/// it sent, so that the next phase's draws start one further on. Its issuing loop draws a
/// new session's conversation as soon as the one before is sent, unless that one's credit
/// was the phase's last: a phase that drew sessions and then ended on a later turn (every
/// multi-turn phase bounded by a count), on its duration or on its session limit drops
/// that draw. Checked against AIPerf after warmups of 2 and 3 requests of two-turn
/// conversations (concurrency and rate) and of a duration; a count of single-turn
/// requests drops nothing.
fn draw_was_dropped(shared: &Shared, phase_idx: usize) -> bool {
    shared.drawn_sessions[phase_idx].load(Ordering::SeqCst) > 0
        && !shared.last_credit_opened[phase_idx].load(Ordering::SeqCst)
}

/// What ends a phase's issuing on every worker.
struct Limits {
    phase_idx: usize,
    count: Option<u64>,
    sessions: Option<u64>,
    deadline: Nanos,
    grace_end: Nanos,
}

/// A worker's local view of its phase's end.
struct Signals {
    /// No more requests: the run stopped, the duration is over or every credit is out.
    stopped: CancelSignal,
    /// No more sessions from the worker's loop: `stopped`, or every session was started.
    closed: CancelSignal,
    /// Requests in flight are cancelled.
    cancel: CancelSignal,
}

/// Turns the run's shared stop and cancel instructions and its counters (atomics written
/// by other threads) into this worker's local signals. A worker waiting for a slot or an
/// instant learns here that the others used up the count, instead of when its wait ends
/// (a concurrency ramp's first slot, a long interval). Polling keeps the worker free of
/// cross-thread wakers; 5 ms is far below any grace period and costs one timer per worker.
async fn watchdog(shared: Arc<Shared>, limits: Limits, signals: Signals, phase_done: CancelSignal) {
    let tick = std::time::Duration::from_millis(5);
    let used_up = |counter: &AtomicU64, limit: Option<u64>| {
        limit.is_some_and(|n| counter.load(Ordering::Relaxed) >= n)
    };
    loop {
        let now = shared.clock.now();
        if shared.stop.load(Ordering::Relaxed)
            || now >= limits.deadline
            || used_up(&shared.credits[limits.phase_idx], limits.count)
        {
            signals.stopped.fire();
            signals.closed.fire();
        }
        // Later turns of started sessions still go: only the loop stops.
        if used_up(&shared.sessions[limits.phase_idx], limits.sessions) {
            signals.closed.fire();
        }
        let cancel_at = shared.cancel_at_ns.load(Ordering::Relaxed);
        if now >= cancel_at.min(limits.grace_end) {
            signals.cancel.fire();
        }
        if let Either::Right(()) = race(monoio::time::sleep(tick), phase_done.fired()).await {
            return;
        }
    }
}

/// A ramp of a slot count from 1 to `total` over `duration` seconds (`--ramp-type`), when
/// there is one to ramp.
fn ramp_from_one<P: PluginSet>(
    config: &ProfileConfig,
    share: WorkerShare,
    duration: Option<f64>,
    total: Option<u32>,
) -> Result<Option<P::Ramp>, String> {
    match (duration, total) {
        (Some(duration), Some(total)) if duration > 0.0 && total > 1 => {
            let mut ramp: P::Ramp = create(&config.ramp_type, config, share)?;
            ramp.configure(1.0, f64::from(total), duration);
            Ok(Some(ramp))
        }
        _ => Ok(None),
    }
}

/// Raises this worker's share of some slots (concurrency, prefill) along the ramp, in
/// whole slots: a slot count takes effect once the ramp's value reaches it, as AIPerf's
/// discrete steps do (from 1 to 4 over 1 s: 2 at 333 ms, 3 at 667 ms, 4 at 1 s).
async fn ramp_concurrency<R: crate::protocols::RampProtocol>(
    ramp: R,
    slots: Slots,
    total: Option<u32>,
    share: WorkerShare,
    start: Nanos,
    clock: RunClock,
    phase_done: CancelSignal,
) {
    // The tolerance keeps a step due at this instant from rounding down.
    const EPS: f64 = 1e-9;
    loop {
        let elapsed_s = clock.now().saturating_sub(start) as f64 / 1e9;
        let value = ramp.value_at(elapsed_s);
        let overall = match value {
            Some(v) => ((v + EPS).floor().max(1.0) as u32).min(total.unwrap_or(u32::MAX)),
            None => total.unwrap_or(1),
        };
        slots.set_capacity(concurrency_share(Some(overall), share.id, share.count).unwrap_or(0));
        let Some(v) = value else {
            return;
        };
        // Sleep to the instant the ramp reaches the next whole slot (found by bisection:
        // a ramp is known only by its values), not by polling, which opened each slot up
        // to a poll late.
        let next = (v + EPS).floor() + 1.0;
        let reaches = |t: f64| ramp.value_at(t).is_none_or(|x| x + EPS >= next);
        let (mut lo, mut span) = (elapsed_s, 1e-3);
        while !reaches(elapsed_s + span) && span < 1e10 {
            span *= 2.0;
        }
        let mut hi = elapsed_s + span;
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if reaches(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let at = start.saturating_add((hi * 1e9).ceil() as u64);
        let wake = crate::engine::pacer::sleep_until(clock.instant(at));
        if let Either::Right(()) = race(wake, phase_done.fired()).await {
            return;
        }
    }
}

/// Marks a request whose transport future was dropped.
pub(crate) fn mark_cancelled(record: &mut RequestRecord, now: Nanos, why: &str) {
    record.was_cancelled = true;
    record.end_ns = now;
    if record.outcome.is_none() {
        record.outcome = Some(Outcome::Cancelled);
        record.error = Some(ErrorDetails::new(
            Some(499),
            "RequestCancellationError",
            why,
        ));
    }
}

/// The run's endpoint, on this worker, when it is a job API (metadata
/// `requires_polling`): only those need it here, to decide their follow-up exchanges.
fn job_endpoint<P: PluginSet>(
    config: &ProfileConfig,
    share: WorkerShare,
) -> Result<Option<Rc<P::Endpoint>>, String> {
    let kind = <P::Endpoint as DispatchEnum>::Kind::from_name(&config.endpoint_type);
    let polls = kind.is_some_and(|k| {
        k.entry()
            .metadata::<crate::metadata::EndpointMetadata>()
            .is_ok_and(|m| m.requires_polling)
    });
    if !polls {
        return Ok(None);
    }
    let endpoint: P::Endpoint = create(&config.endpoint_type, config, share)?;
    Ok(Some(Rc::new(endpoint)))
}

/// Follow-up exchanges of a job API (e.g. `video_generation`: submit, poll until done,
/// optionally download). Each goes through the worker's transport to the submit's URL and
/// is folded into the same record, so the request spans submit to completion and its
/// timestamps stay on this thread's clock. The endpoint peeks at the last response's JSON
/// to decide (a poll cannot wait for the record thread); full parsing still happens there.
///
/// Boxed: its future (a second exchange, a sleep, a record) would otherwise sit in every
/// request's future, job API or not, and be copied with it at spawn and completion.
pub(crate) fn follow_ups<'a, E: EndpointProtocol, T: TransportProtocol>(
    endpoint: &'a E,
    transport: &'a T,
    url: usize,
    clock: &'a RunClock,
    record: &'a mut RequestRecord,
) -> std::pin::Pin<Box<impl std::future::Future<Output = ()> + 'a>> {
    Box::pin(follow_ups_inner(endpoint, transport, url, clock, record))
}

async fn follow_ups_inner<E: EndpointProtocol, T: TransportProtocol>(
    endpoint: &E,
    transport: &T,
    url: usize,
    clock: &RunClock,
    record: &mut RequestRecord,
) {
    let mut sent = 0u32;
    while record.outcome.is_none() {
        match endpoint.follow_up(record, sent) {
            FollowUp::Done => return,
            FollowUp::Fail { outcome, error } => {
                record.end_ns = record.end_ns.max(clock.now());
                record.outcome = Some(outcome);
                record.error = Some(error);
                return;
            }
            FollowUp::Send(next) => {
                if next.delay_ns > 0 {
                    monoio::time::sleep(std::time::Duration::from_nanos(next.delay_ns)).await;
                }
                let bytes =
                    transport.prepare_method(next.method, &next.path, &next.headers, &next.body);
                let mut part = RequestRecord::default();
                transport.send(&bytes, url, false, clock, &mut part).await;
                record.absorb_follow_up(part, next.keep_responses);
                sent = sent.saturating_add(1);
            }
        }
    }
}

/// After an arrival found every slot busy: waits until one is free, or until a later turn
/// waits for a tick (which needs no slot), and says when, so that the arrivals up to then
/// are skipped in one go, as AIPerf skips each of them at its tick; `None` once the
/// phase closed. Looking at every later arrival instead never let the worker run its
/// requests when the rate outpaced that loop (10 million a second spun a core for good),
/// and woke it at every tick of a busy spell.
async fn wait_for_room(
    slots: &Slots,
    turns: &paced::TurnQueue,
    closed: &CancelSignal,
    clock: &RunClock,
) -> Option<Nanos> {
    match race(slots.acquire(), race(turns.queued(), closed.fired())).await {
        // Not kept: the arrival it goes to still waits for its instant, and takes it then.
        Either::Left(slot) => drop(slot),
        Either::Right(Either::Left(())) => {}
        Either::Right(Either::Right(())) => return None,
    }
    Some(clock.now())
}
