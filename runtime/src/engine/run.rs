//! The run's lifecycle: prepare, measure, process, export.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::Duration;

use crate::config::{redact_args, ProfileConfig};
use crate::engine::on_demand::{self, InputsWriter};
use crate::engine::pipeline::{self, create_all, tokenizer_plugin, PipelineSettings};
use crate::engine::worker::{self, Driver, PhasePlan, PreparedRequest, Shared};
use crate::engine::{health, outcome, phases, Progress};
use crate::plugin::{DispatchEnum, PluginContext, PluginKind, PluginSet};
use crate::protocols::{
    ConsoleExporterProtocol, DataExporterProtocol, DatasetComposerProtocol, EndpointProtocol,
    TokenizerProtocol, TransportProtocol, UiProtocol,
};
use crate::record::{Phase, RunClock};
use crate::results::RunResults;

/// How a finished run went.
#[derive(Debug)]
pub struct RunOutcome {
    pub results: RunResults,
    pub console: String,
    pub exported: Vec<PathBuf>,
    /// Artifacts that could not be written, each already reported.
    pub failures: Vec<String>,
    /// 0; 130 or 143 when a SIGINT or SIGTERM stopped the run; 1 when an artifact failed.
    pub exit_code: u8,
}

/// SIGINTs and SIGTERMs received, together; the main thread turns them into stop and
/// cancel instructions. SIGTERM (`docker stop`, Kubernetes) counts as a Ctrl-C: a run
/// stopped from outside still exports what it measured.
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);
/// The first of those signals, whose number sets the exit status (128 + signal).
static FIRST_SIGNAL: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_interrupt(signal: libc::c_int) {
    let _ = FIRST_SIGNAL.compare_exchange(0, signal as u64, Ordering::SeqCst, Ordering::SeqCst);
    if INTERRUPTS.fetch_add(1, Ordering::SeqCst) >= 2 {
        // A third signal while results are being written: the user wants out now.
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
}

fn install_interrupt_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches atomics and calls an async-signal-safe function.
        unsafe {
            libc::signal(signal, on_interrupt as *const () as libc::sighandler_t);
        }
    }
}

/// SIGINTs and SIGTERMs received so far.
fn interrupts() -> u64 {
    INTERRUPTS.load(Ordering::SeqCst)
}

/// The exit status of a run stopped by a signal: 130 after SIGINT, 143 after SIGTERM.
fn interrupted_exit_code() -> Option<u8> {
    match FIRST_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(u8::try_from(128 + signal).unwrap_or(130)),
    }
}

pub(crate) fn create<E: DispatchEnum>(name: &str, config: &ProfileConfig) -> Result<E, String> {
    let kind = E::Kind::from_name(name)
        .ok_or_else(|| format!("no {} plugin named `{name}` is linked", E::Kind::CATEGORY))?;
    let ctx = PluginContext {
        config,
        entry: kind.entry(),
        worker: None,
    };
    E::create(kind, &ctx).map_err(|e| format!("{}:{}: {e}", E::Kind::CATEGORY, kind.name()))
}

fn driver_of(config: &ProfileConfig) -> Result<Driver, String> {
    match config.io_driver.as_str() {
        "auto" => Ok(Driver::Auto),
        "uring" | "io_uring" | "io-uring" => Ok(Driver::Uring),
        "epoll" | "legacy" => Ok(Driver::Epoll),
        other => Err(format!(
            "unknown --io-driver `{other}` (expected auto, uring or epoll)"
        )),
    }
}

/// The artifact directory AIPerf would pick when none is given.
fn default_artifact_dir<P: PluginSet>(config: &ProfileConfig) -> PathBuf {
    let model = if config.model.len() > 1 {
        format!("{}_multi", config.model_name())
    } else {
        config.model_name().to_owned()
    };
    let model = model.replace('/', "_");
    let service_kind = "openai";
    // The plugin's name, also when it was chosen by its class path.
    let endpoint = <P::Endpoint as DispatchEnum>::Kind::from_name(&config.endpoint_type)
        .map_or_else(|| config.endpoint_type.clone(), |k| k.name().to_owned());
    PathBuf::from("artifacts").join(format!(
        "{model}-{service_kind}-{endpoint}-{}",
        config.stimulus()
    ))
}

/// Removes what an earlier run into the same directory wrote under the names this run
/// uses and will not rewrite (records with `--export-level summary`, phase files without
/// a warmup), and the ready marker until this run's results are complete. Files of other
/// names (another `--profile-export-prefix`) are another run's, kept on purpose.
fn clear_stale_artifacts(dir: &Path, config: &ProfileConfig, writes_inputs: bool) {
    let prefix = config.profile_export_prefix.as_deref();
    let export = |name: &str| dir.join(crate::results::export_file_name(prefix, name));
    let mut stale = vec![dir.join(".aiperf_results_ready.json")];
    if !writes_inputs {
        stale.push(dir.join("inputs.json"));
    }
    if !config.export_level.writes_records() {
        stale.push(export(crate::export::RECORDS_FILE));
    }
    if config.export_level != crate::config::ExportLevel::Raw {
        stale.push(export(crate::export::RAW_FILE));
    }
    // Written only when the run has time slices, which is known only at its end.
    stale.push(export(crate::export::TIMESLICES_JSON_FILE));
    stale.push(export(crate::export::TIMESLICES_CSV_FILE));
    if !config.has_warmup() {
        stale.push(dir.join(phases::MANIFEST_FILE));
        for phase in [Phase::Warmup, Phase::Profiling] {
            let phase_dir = dir.join("phases").join(phase.as_str());
            for name in [crate::export::JSON_FILE, crate::export::CSV_FILE] {
                stale.push(phase_dir.join(crate::results::export_file_name(prefix, name)));
            }
        }
    }
    for path in stale {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!("removed {} of an earlier run", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot remove {} of an earlier run: {e}", path.display()),
        }
    }
    if !config.has_warmup() {
        // The phase directories go once empty; one holding another prefix's files stays
        // (`remove_dir` refuses a directory that is not empty).
        let phases = dir.join("phases");
        let dirs = [phases.join("warmup"), phases.join("profiling"), phases];
        for path in dirs.iter().filter(|d| std::fs::remove_dir(d).is_ok()) {
            tracing::debug!("removed the empty {} of an earlier run", path.display());
        }
    }
}

/// Descriptors the client needs beside its connections (rings, files, the mock's pipes).
const SPARE_FDS: u64 = 64;

/// Lifts the open-file soft limit to the hard one (as Go's runtime does for every
/// program): each connection is a descriptor, and the common default of 1,024 would fail
/// a `--concurrency 1000` run with "Too many open files" that reads like the server's
/// fault. Warns when even the hard limit is below what the run's concurrency needs.
/// The process's open-file limit (soft), when it can be read.
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

fn raise_open_file_limit(config: &ProfileConfig) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: a valid rlimit, read above; raising the soft limit up to the hard one
        // needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::debug!(
                from = limit.rlim_cur,
                to = raised.rlim_cur,
                "open-file limit"
            );
            limit = raised;
        }
    }
    let urls = config.url.len().max(1) as u64;
    let Some(needed) = config
        .effective_concurrency()
        .map(|c| u64::from(c) * urls + SPARE_FDS)
    else {
        return;
    };
    if limit.rlim_cur < needed {
        tracing::warn!(
            "the open-file limit is {}, and --concurrency {} over {urls} URL(s) may need {} \
             connections: requests past it fail with \"Too many open files\" (raise it with \
             `ulimit -n`)",
            limit.rlim_cur,
            config.effective_concurrency().unwrap_or(0),
            needed - SPARE_FDS
        );
    }
}

/// Refuses a `--url` that cannot be one and, for `https`, a trust setup that cannot work
/// (an unreadable or empty `--ca-cert`, no system store, a host that cannot be a TLS
/// name), before anything is written: the workers would otherwise find it only once the
/// run had started. The TLS configuration built here is the one they reuse.
fn check_urls_and_tls(config: &ProfileConfig) -> Result<(), String> {
    use crate::http::tls;
    use crate::http::url::{redact_for_message, BaseUrl, Scheme};
    let mut any_https = false;
    for url in &config.url {
        // The URL is shown without its password: one with credentials is refused here.
        let shown = || redact_for_message(url);
        let base = BaseUrl::parse(url).map_err(|e| format!("--url {}: {e}", shown()))?;
        if base.scheme() != Scheme::Https {
            continue;
        }
        any_https = true;
        tls::client_config(config.ca_cert.as_deref()).map_err(|e| match e {
            tls::TlsSetupError::CaFile { .. } | tls::TlsSetupError::CaFileEmpty { .. } => {
                format!("--ca-cert: {e}")
            }
            _ => format!("--url {}: {e}", shown()),
        })?;
        tls::server_name(base.host()).map_err(|e| format!("--url {}: {e}", shown()))?;
    }
    if let (Some(ca), false) = (&config.ca_cert, any_https) {
        tracing::warn!("--ca-cert {} is not used: no --url is https", ca.display());
    }
    Ok(())
}

/// Runs a whole benchmark with the linked plugin set.
pub fn run_profile<P: PluginSet>(mut config: ProfileConfig) -> Result<RunOutcome, String> {
    // Before any slow preparation, so an early Ctrl-C still ends in written results.
    install_interrupt_handlers();
    let launched = std::time::Instant::now();
    config.validate()?;
    check_urls_and_tls(&config)?;
    if config.has_own_warmup_load() && !config.has_warmup() {
        // AIPerf 0.13 ignores them too; a script written for it still runs.
        tracing::warn!(
            "the warmup load flags are not used: there is no warmup (give \
             --warmup-request-count, --warmup-duration or --num-warmup-sessions)"
        );
    }
    check_plugin_names::<P>(&config)?;
    // A pattern that cannot work with the load asked (`constant` without a rate) says so
    // now, not when a worker creates it (after a warmup, with files already written).
    for load in [Some(config.clone()), config.warmup_load()]
        .into_iter()
        .flatten()
    {
        let pattern = load.effective_arrival_pattern();
        create::<P::ArrivalPattern>(&pattern, &load)?;
    }
    let driver = driver_of(&config)?;
    // Before the readiness probe, which authenticates as the endpoint does (the Messages
    // API takes its key in `x-api-key`, not `Authorization`).
    let endpoint: P::Endpoint = create(&config.endpoint_type, &config)?;
    // Before any slow preparation, so a server that never comes up fails the run early.
    if config.wait_for_model_timeout > 0.0 {
        let mut headers = Vec::new();
        endpoint.request_headers(&mut headers);
        if let Err(e) = super::readiness::wait_for_endpoint(&config, &headers, || interrupts() > 0)
        {
            // Stopped by a signal before anything was sent: nothing to write, and the exit
            // status says which signal, as for any interrupted run.
            if let Some(code) = interrupted_exit_code() {
                tracing::warn!("{e}");
                std::process::exit(i32::from(code));
            }
            return Err(e);
        }
    }
    raise_open_file_limit(&config);
    if let (Some(slice), Some(duration)) = (config.slice_duration, config.benchmark_duration) {
        if slice >= duration {
            tracing::warn!(
                "--slice-duration {slice} is not shorter than --benchmark-duration \
                 {duration}: every request starts in the first time slice, so the run \
                 makes one"
            );
        }
    }

    if config.is_concurrency_burst() && config.request_rate.is_some() {
        tracing::warn!(
            "--request-rate is not used: --arrival-pattern concurrency_burst sends whenever \
             a --concurrency slot is free"
        );
    }
    if crate::plugin::normalize_name(&config.effective_timing_mode()) == "fixed_schedule" {
        let unused = paced_flags_given(&config);
        if !unused.is_empty() {
            tracing::warn!(
                "{} not used: a fixed_schedule run sends each request at its timestamp",
                unused.join(", ")
            );
        }
    }

    // Everything the measuring threads need is computed before the clock starts.
    let metadata = endpoint.metadata().clone();
    if let Some(kind) = &config.request_content_type {
        let form = kind.eq_ignore_ascii_case("multipart/form-data");
        if form && !metadata.requires_form_data {
            return Err(format!(
                "--request-content-type multipart/form-data is for endpoints that post forms \
                 (such as video_generation); endpoint `{}` posts JSON",
                config.endpoint_type
            ));
        }
        if !form && metadata.requires_form_data {
            return Err(format!(
                "endpoint `{}` posts multipart/form-data; --request-content-type {kind} does \
                 not fit it",
                config.endpoint_type
            ));
        }
    }
    let prefill = config.prefill_concurrency.is_some()
        || (config.has_warmup() && config.warmup_prefill_concurrency.is_some());
    if prefill && !metadata.supports_streaming {
        return Err(format!(
            "endpoint `{}` does not stream, and --prefill-concurrency needs a stream: a \
             request's prefill slot is freed at its first token",
            config.endpoint_type
        ));
    }
    if config.streaming && !metadata.supports_streaming {
        tracing::warn!(
            "endpoint `{}` does not stream; --streaming is ignored",
            config.endpoint_type
        );
        config.streaming = false;
    }
    for note in unused_settings(&config, metadata.supports_images, metadata.supports_audio) {
        tracing::warn!("{note}");
    }
    // An SLO on a metric this run cannot compute would judge every request bad.
    let computed = crate::metrics::RecordMetricsOptions {
        streaming: config.streaming,
        produces_tokens: metadata.produces_tokens,
        tokenizes_input: metadata.tokenizes_input,
        supports_images: metadata.supports_images,
        supports_audio: metadata.supports_audio,
        produces_videos: metadata.produces_videos,
    };
    crate::metrics::Goodput::from_config(&config, &computed)?;
    let system_prompt = prompt_context::<P>(&config, &metadata)?;
    let tokenizer: P::Tokenizer = create(tokenizer_plugin::<P>(&config)?, &config)?;
    tracing::debug!(elapsed = ?launched.elapsed(), "tokenizer ready");
    // With `on_demand` (the dataset's size, how sessions take it and, read by draw, its
    // turn counts), `dataset` stays empty: the preparation thread composes the
    // conversations while the run goes.
    let mut on_demand: Option<(usize, on_demand::Order, Vec<u32>)> = None;
    // AIPerf writes no `inputs.json` for a trace: its payloads would be the trace again,
    // or huge (`DatasetManager._should_skip_inputs_json`).
    let mut trace = false;
    let mut dataset = match &config.input_file {
        Some(file) => {
            let (dataset, is_trace) = load_custom_dataset::<P>(&config, file, &tokenizer)?;
            trace = is_trace;
            dataset
        }
        None => {
            let mut composer: P::DatasetComposer = create(&config.dataset_composer, &config)?;
            let plan = composer.entries().and_then(|entries| {
                let order = compose_on_demand(&config, entries)?;
                let turns = match order {
                    on_demand::Order::Next => Vec::new(),
                    // The strategy plans whole conversations: it needs every turn count.
                    on_demand::Order::ByDraw { .. } => (0..entries)
                        .map(|i| composer.turns(i))
                        .collect::<Option<_>>()?,
                };
                Some((entries, order, turns))
            });
            match plan {
                Some(plan) => {
                    tracing::info!(
                        entries = plan.0,
                        threads = on_demand::composers(&config),
                        "composing the dataset's conversations as sessions take them"
                    );
                    on_demand = Some(plan);
                    Vec::new()
                }
                None => composer
                    .create_dataset(&tokenizer)
                    .map_err(|e| format!("dataset: {e}"))?,
            }
        }
    };
    tracing::debug!(
        elapsed = ?launched.elapsed(),
        conversations = dataset.len(),
        "dataset composed"
    );
    if dataset.is_empty() && on_demand.is_none() {
        return Err("the dataset is empty: nothing to send".into());
    }
    let timestamped = dataset
        .first()
        .and_then(|c| c.turns.first())
        .is_some_and(|t| t.timestamp_ms.is_some());
    if timestamped && !config.fixed_schedule && !config.no_fixed_schedule {
        promote_trace::<P>(&mut config)?;
    }
    // Decided with the timing (a timestamped trace replays in its own order).
    let mode = crate::plugin::normalize_name(&config.effective_timing_mode());
    let offsets = config.fixed_schedule_start_offset.is_some()
        || config.fixed_schedule_end_offset.is_some()
        || config.was_given("fixed_schedule_auto_offset");
    if offsets && mode != "fixed_schedule" {
        // AIPerf 0.13's words; the offsets would be dropped without a word.
        return Err(
            "--fixed-schedule-{auto,start,end}-offset requires --fixed-schedule. Pass \
                    --fixed-schedule with a trace file to enable offsets, or drop these flags."
                .into(),
        );
    }
    if config.ignore_trace_delays && mode == "fixed_schedule" {
        // As AIPerf: the timestamps chose the mode before they could be ignored.
        tracing::warn!(
            "--ignore-trace-delays does nothing in a fixed_schedule run (add \
             --no-fixed-schedule to send the trace's turns back to back)"
        );
    }
    if mode == "fixed_schedule" {
        let rows: u64 = dataset.iter().map(|c| c.turns.len() as u64).sum();
        if let Some(asked) = config.request_count.filter(|&n| n > rows) {
            // A replay ends with its trace, as AIPerf's; a count beyond it is not reached.
            tracing::warn!(
                "--request-count {asked}: the trace has {rows} request{}, each sent once at \
                 its timestamp, so the run sends {rows}",
                if rows == 1 { "" } else { "s" }
            );
        }
    }
    let finishing = on_demand::Finishing {
        system_prompt: system_prompt.as_deref().map(Arc::from),
        ignore_delays: config.ignore_trace_delays && mode != "fixed_schedule",
    };
    for conversation in &mut dataset {
        finishing.apply(conversation);
    }
    if config.dataset_sampling_strategy.is_some() && mode != "request_rate" {
        tracing::warn!(
            "--dataset-sampling-strategy is not used: the {mode} timing strategy picks each \
             session's conversation itself"
        );
    }
    // Named once the timing is settled: a trace that replays its timestamps is a
    // `fixed_schedule` run, as in AIPerf's directory name.
    let artifact_dir = config
        .artifact_dir
        .clone()
        .unwrap_or_else(|| default_artifact_dir::<P>(&config));
    std::fs::create_dir_all(&artifact_dir).map_err(|e| {
        // `create_dir_all` says only "File exists" of a file in the way.
        let what = match std::fs::metadata(&artifact_dir) {
            Ok(m) if !m.is_dir() => "it is a file, not a directory".to_owned(),
            _ => e.to_string(),
        };
        format!(
            "cannot create the artifact directory {}: {what}",
            artifact_dir.display()
        )
    })?;
    clear_stale_artifacts(&artifact_dir, &config, !trace);
    let log_file = artifact_dir.join("logs").join("aiperf.log");
    if let Err(e) = crate::logging::set_file(&log_file) {
        tracing::warn!(
            "cannot write {}: {e}; logging to the console only",
            log_file.display()
        );
    }

    let transport: P::Transport = create(&config.transport, &config)?;
    let path = config.custom_endpoint.clone().or_else(|| {
        if config.streaming {
            metadata
                .streaming_path
                .clone()
                .or_else(|| metadata.endpoint_path.clone())
        } else {
            metadata.endpoint_path.clone()
        }
    });
    let path = path.unwrap_or_default();
    let mut headers = Vec::new();
    endpoint.request_headers(&mut headers);
    headers.push((
        "Accept".to_owned(),
        if config.streaming {
            "text/event-stream"
        } else {
            "application/json"
        }
        .to_owned(),
    ));
    // Form bodies carry their own `Content-Type` (with the boundary), added per request.
    if !metadata.requires_form_data {
        headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
    }
    headers.push((
        "User-Agent".to_owned(),
        concat!("aiperf-gen/", env!("CARGO_PKG_VERSION")).into(),
    ));

    let template = RequestTemplate {
        path: path.clone(),
        headers: headers.clone(),
        form_data: metadata.requires_form_data,
    };
    let inputs_path = artifact_dir.join("inputs.json");
    // Chat sends a conversation's history: later turns are built with the replies.
    let sends_history = endpoint
        .format_session_payload(&[], &crate::dataset::Turn::default(), &mut Vec::new())
        .unwrap_or(false);
    let multi_turn = dataset.iter().any(|c| c.turns.len() > 1)
        || (on_demand.is_some()
            && (config.conversation_turn_mean > 1.0 || config.conversation_turn_stddev > 0.0));
    let session_bodies = (sends_history && multi_turn).then_some(worker::SessionBodies {
        path: path.clone(),
        headers: headers.clone(),
    });
    let in_order = config.dataset_sampling_strategy.is_none();
    let on_demand = on_demand
        .map(|(entries, order, turns)| on_demand::OnDemand::new(entries, in_order, order, turns));
    let mut requests = Vec::with_capacity(dataset.len());
    let mut turn_offsets = Vec::with_capacity(dataset.len());
    for (i, conversation) in dataset.iter().enumerate() {
        turn_offsets.push(requests.len());
        for (t, turn) in conversation.turns.iter().enumerate() {
            requests.push(PreparedRequest {
                bytes: Staged::default(),
                conversation_index: i,
                turn_index: t as u32,
                input_tokens: with_context_tokens(turn, &metadata, &tokenizer),
                max_tokens: turn.max_tokens,
            });
        }
    }
    if requests.is_empty() && on_demand.is_none() {
        return Err("the dataset has no turns: nothing to send".into());
    }
    // The first requests are prepared here, so the workers start with them and a payload
    // the endpoint cannot format fails the run before it starts; the rest is prepared in
    // order on a thread of its own while the first requests are already out.
    let eager = requests.len().min(EAGER_REQUESTS);
    let mut body = Vec::new();
    for req in &requests[..eager] {
        let turn = turn_of(&dataset, req).ok_or("the dataset changed while prepared")?;
        req.bytes
            .set(template.build(&endpoint, &transport, turn, &mut body)?);
    }
    drop(transport);
    // The preparation thread makes a tokenizer of its own when it composes.
    drop(tokenizer);

    let mut phases = Vec::new();
    if config.has_warmup() {
        phases.push(PhasePlan {
            phase: Phase::Warmup,
            count: (config.warmup_request_count > 0).then_some(config.warmup_request_count),
            duration_ns: config.warmup_duration.map(|s| (s.max(0.0) * 1e9) as u64),
            sessions: config.warmup_num_sessions,
            load: config.warmup_load().map(Arc::new),
        });
    }
    let count = config.effective_request_count();
    let duration_ns = config.benchmark_duration.map(|s| (s.max(0.0) * 1e9) as u64);
    phases.push(PhasePlan {
        phase: Phase::Profiling,
        count,
        duration_ns,
        sessions: config.conversation_num,
        load: None,
    });

    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let mut workers = config.workers.unwrap_or(cpus).max(1);
    // A worker with no concurrency slot would only idle, and one without a prefill slot
    // (in any phase) could send nothing at all.
    let prefill = phases
        .iter()
        .filter_map(|p| p.load.as_deref().unwrap_or(&config).prefill_concurrency)
        .min();
    // Arrivals at a rate take a concurrency slot if one is free anywhere in the run, and
    // are skipped otherwise (AIPerf's slots are global). Split over workers, an arrival
    // was skipped while another worker had a slot free (40/s capped at 2: 19.4/s sent
    // over two workers against 24.1 over one, AIPerf 23.9), so such a run has one.
    let capped_rate = phases.iter().any(|p| {
        let load = p.load.as_deref().unwrap_or(&config);
        load.request_rate.is_some() && load.concurrency.is_some()
    });
    // Later turns of a paced run wait for a tick of the worker that started their session
    // (`paced`): over several workers, a tick passed unused on one while another's turn
    // waited (3 sessions of 3 turns at 50/s: 39 requests/s over two workers, 47.6 over
    // one, AIPerf 47.1), so such a run has one, as AIPerf's single loop.
    let paced_turns = multi_turn
        && mode == "request_rate"
        && phases
            .iter()
            .any(|p| p.load.as_deref().unwrap_or(&config).request_rate.is_some());
    let caps = [
        (config.effective_concurrency(), "--concurrency"),
        (prefill, "--prefill-concurrency (the least of any phase)"),
        (
            capped_rate.then_some(1),
            "--request-rate with --concurrency (arrivals share the slots of the run)",
        ),
        (
            paced_turns.then_some(1),
            "--request-rate with multi-turn sessions (later turns share the rate's ticks)",
        ),
    ];
    let lowest = caps
        .into_iter()
        .filter_map(|(cap, flag)| Some((cap?.max(1), flag)))
        .min_by_key(|&(cap, _)| cap);
    if let Some((cap, flag)) = lowest.filter(|&(cap, _)| cap < workers) {
        if config.workers.is_some() {
            let slots = if cap == 1 { "slot" } else { "slots" };
            match flag.starts_with("--request-rate") {
                true => tracing::warn!("--workers {workers} lowered to 1: {flag}"),
                false => tracing::warn!(
                    "--workers {workers} lowered to {cap}: {flag} gives {cap} {slots}, and a \
                     worker without one would send nothing"
                ),
            }
        }
        workers = cap;
    }
    let uring = match driver {
        Driver::Epoll => false,
        Driver::Uring => true,
        Driver::Auto => monoio::utils::detect_uring(),
    };
    let driver_name = if uring { "io_uring" } else { "epoll" };
    if driver == Driver::Auto && !uring {
        tracing::info!("io_uring is unavailable here; workers run on epoll");
    }
    tracing::info!(
        workers,
        driver = driver_name,
        since_launch = ?launched.elapsed(),
        "starting the measuring workers"
    );

    // Composed on demand, conversation `i` is named by the run's `SessionIds`, as the
    // records file names a conversation it has no id for.
    let conversation_ids: Vec<String> = dataset.iter().map(|c| c.session_id.clone()).collect();
    let clock = RunClock::new();
    let first_profiling_send = config
        .slice_duration
        .map(|_| Arc::new(AtomicU64::new(u64::MAX)));
    let phase_count = phases.len();
    let phase_starts: Arc<[AtomicU64]> =
        (0..phase_count).map(|_| AtomicU64::new(u64::MAX)).collect();
    let shared = Arc::new(Shared {
        clock,
        streaming: config.streaming,
        requests,
        turn_offsets,
        conversations: dataset,
        on_demand,
        fixed_schedule: mode == "fixed_schedule",
        sends_images: metadata.supports_images,
        sends_audio: metadata.supports_audio,
        credits: (0..phase_count).map(|_| AtomicU64::new(0)).collect(),
        sessions: (0..phase_count).map(|_| AtomicU64::new(0)).collect(),
        drawn_sessions: (0..phase_count).map(|_| AtomicU64::new(0)).collect(),
        last_credit_opened: (0..phase_count).map(|_| AtomicBool::new(false)).collect(),
        session_bodies,
        phase_start_ns: phase_starts.clone(),
        first_profiling_send: first_profiling_send.clone(),
        phases,
        barrier: Barrier::new(workers as usize),
        stop: AtomicBool::new(false),
        cancel_at_ns: AtomicU64::new(u64::MAX),
        next_conversation: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        skipped_arrivals: (0..phase_count).map(|_| AtomicU64::new(0)).collect(),
        unsent_arrivals: (0..phase_count).map(|_| AtomicU64::new(0)).collect(),
        unsent_arrival_first_intended_ns: AtomicU64::new(u64::MAX),
        preparation: Preparation::default(),
        given_request_id: super::ids::given_header(&config.headers, "x-request-id"),
        given_correlation_id: super::ids::given_header(
            &config.headers,
            config.correlation_header(),
        ),
        config: config.clone(),
    });

    let (mut tx, rx, backlog) = pipeline::record_channel();
    let records_path = artifact_dir.join(crate::results::export_file_name(
        config.profile_export_prefix.as_deref(),
        crate::export::RECORDS_FILE,
    ));
    let raw_path = (config.export_level == crate::config::ExportLevel::Raw).then(|| {
        artifact_dir.join(crate::results::export_file_name(
            config.profile_export_prefix.as_deref(),
            crate::export::RAW_FILE,
        ))
    });
    let failure_abort = Arc::new(AtomicBool::new(false));
    let stopped_at = Arc::new(AtomicU64::new(u64::MAX));
    let abort_run = pipeline::RunAbort::new(shared.clone(), stopped_at.clone());
    match config.failed_request_threshold {
        Some(threshold) => {
            let floor = pipeline::failure_floor(&config);
            let brake = pipeline::FailureBrake::new(threshold, floor, abort_run.clone());
            tx.set_failure_brake(Arc::new(brake));
        }
        // The record thread spools the run's records (see `PipelineSettings::spool_dir`).
        None => tx.frame_in_blocks(),
    }
    let raw_export = raw_path.clone();
    let settings = PipelineSettings {
        config: config.clone(),
        clock,
        records_path,
        raw_path,
        spool_dir: Some(artifact_dir.clone()),
        conversation_ids,
        session_ids: crate::dataset::SessionIds::for_run(config.random_seed),
        first_profiling_send,
        phase_starts,
        stopped_at: stopped_at.clone(),
        failure_abort: failure_abort.clone(),
        abort_run,
    };
    let pipeline_thread = std::thread::Builder::new()
        .name("aiperf-records".into())
        .spawn({
            let backlog = backlog.clone();
            move || pipeline::run_pipeline::<P>(settings, rx, backlog)
        })
        .map_err(|e| format!("cannot start the record thread: {e}"))?;

    let preparer = std::thread::Builder::new()
        .name("aiperf-prepare".into())
        .spawn({
            let shared = shared.clone();
            let config = config.clone();
            move || match &shared.on_demand {
                Some(_) => {
                    let inputs = InputsWriter::create(&inputs_path);
                    let prepared =
                        on_demand::prepare::<P>(&shared, &config, &template, finishing, inputs);
                    if let Err(e) = prepared {
                        shared.preparation.fail(&shared, e);
                    }
                }
                None => {
                    let inputs = (!trace).then_some(inputs_path.as_path());
                    prepare_in_background::<P>(&shared, &config, &template, eager, inputs)
                }
            }
        })
        .map_err(|e| format!("cannot start the preparation thread: {e}"))?;
    // The workers start with the first conversations ready, as with a dataset held whole
    // (its first requests are prepared above), and a payload the endpoint cannot format
    // stops the run before it sends anything.
    if let Some(on_demand) = &shared.on_demand {
        on_demand.wait_ready(EAGER_REQUESTS, &shared);
    }

    let mut handles = Vec::with_capacity(workers as usize);
    for id in 0..workers {
        let shared = shared.clone();
        let tx = tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("aiperf-worker-{id}"))
            .spawn(move || worker::run_worker::<P>(id, workers, shared, tx, driver))
            .map_err(|e| format!("cannot start worker {id}: {e}"))?;
        handles.push(handle);
    }
    drop(tx);

    let ui_name = config.ui_type.clone().unwrap_or_else(|| {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let simple = <P::Ui as DispatchEnum>::Kind::from_name("simple").is_some();
        if tty && simple { "simple" } else { "none" }.to_owned()
    });
    let mut ui: P::Ui = create(&ui_name, &config)?;
    // A timed warmup's request count is not known ahead.
    let total = config
        .effective_request_count()
        .filter(|_| config.warmup_duration.is_none())
        .map(|n| n + config.warmup_request_count);
    ui.on_start(total, config.benchmark_duration);
    let progress = |shared: &Shared| Progress {
        sent: shared.sent.load(Ordering::Relaxed),
        completed: shared.completed.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        total,
        elapsed_s: shared.clock.now() as f64 / 1e9,
        duration_s: config.benchmark_duration,
    };
    let grace_ns = (config.benchmark_grace_period.max(0.0) * 1e9) as u64;
    let mut interrupts_seen = 0;
    // The exit status of a signal that stopped the run. One that comes once every request
    // has ended (while the records are written) stops nothing: the results are complete.
    let mut stopped_by_signal = None;
    let mut last_progress = std::time::Instant::now();
    ui.on_progress(&progress(&shared));
    while !handles.iter().all(|h| h.is_finished()) {
        let interrupts = INTERRUPTS.load(Ordering::Relaxed);
        if interrupts > interrupts_seen {
            if handles.iter().all(|h| h.is_finished()) {
                // Every request had ended (the loop sleeps between its checks).
                break;
            }
            // Two signals may come between two looks: each still says what it did.
            let first = interrupts_seen == 0;
            interrupts_seen = interrupts;
            stopped_by_signal = stopped_by_signal.or_else(interrupted_exit_code);
            shared.stop.store(true, Ordering::SeqCst);
            crate::http::client::halt(shared.clock.now());
            stopped_at.fetch_min(shared.clock.now(), Ordering::SeqCst);
            if first {
                let cancel_at = shared.clock.now().saturating_add(grace_ns);
                shared.cancel_at_ns.fetch_min(cancel_at, Ordering::SeqCst);
                // "Up to": a duration run's own deadline (its end plus the grace period)
                // may cut them sooner.
                tracing::warn!(
                    "interrupted: no new requests; in-flight requests get up to {} s \
                     (Ctrl-C or SIGTERM again to cancel them now)",
                    config.benchmark_grace_period
                );
            }
            if interrupts >= 2 {
                shared.cancel_at_ns.store(0, Ordering::SeqCst);
                tracing::warn!("interrupted again: cancelling in-flight requests");
            }
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            ui.on_progress(&progress(&shared));
            last_progress = std::time::Instant::now();
        }
        std::thread::sleep(MAIN_POLL);
    }
    let mut worker_errors = Vec::new();
    let mut reports = Vec::new();
    for handle in handles {
        match handle.join() {
            Ok(Ok(report)) => reports.push(report),
            Ok(Err(e)) => worker_errors.push(e),
            Err(_) => worker_errors.push("a worker thread panicked".to_owned()),
        }
    }
    ui.on_finish(&progress(&shared));
    let end_ns = shared.clock.now();
    if let Some(on_demand) = &shared.on_demand {
        on_demand.close();
    }
    if preparer.join().is_err() {
        return Err("the preparation thread panicked".into());
    }
    if let Some(e) = shared.preparation.error() {
        return Err(e);
    }
    let output = match pipeline_thread.join() {
        Ok(r) => r?,
        Err(_) => return Err("the record thread panicked".into()),
    };
    if let Some(e) = worker_errors.into_iter().next() {
        return Err(e);
    }

    // The root summary is the profiling phase's, as in AIPerf; a run that sent nothing
    // spans its whole life.
    let window = output.profiling.window.unwrap_or((0, end_ns));
    let aborted = failure_abort.load(Ordering::SeqCst);
    if interrupts() > interrupts_seen {
        tracing::info!(
            "interrupted after the last request ended: the results are complete and are \
             being written"
        );
    }
    let was_cancelled = stopped_by_signal.is_some() || aborted;
    let facts = crate::export::input_config::RunFacts {
        artifact_dir: &artifact_dir,
        ui: &ui_name,
        conversations: shared
            .on_demand
            .as_ref()
            .map_or(shared.conversations.len(), |d| d.entries),
        turns: shared.requests.len(),
        workers,
        log_level: crate::logging::level(),
    };
    let results = RunResults {
        metrics: output.profiling.metrics.clone(),
        error_summary: output.profiling.error_summary.clone(),
        warmup_metrics: output.warmup.as_ref().map(|w| w.metrics.clone()),
        metrics_title: metadata
            .metrics_title
            .clone()
            .unwrap_or_else(|| "LLM Metrics".into()),
        artifact_dir: artifact_dir.clone(),
        benchmark_id: benchmark_id(),
        input_config: crate::export::input_config::build(&config, &facts),
        client_config: crate::export::input_config::client_settings(&config, &facts),
        cli_command: cli_command(),
        random_seed: config.random_seed,
        start_time: local_iso_time(clock.wall_ns(window.0)),
        end_time: local_iso_time(clock.wall_ns(window.1)),
        was_cancelled,
        client_health: serde_json::Value::Null,
        export_prefix: config.profile_export_prefix.clone(),
        timeslices: output.timeslices,
    };
    // A closed loop is judged after its first wave (see `PhaseSummary::steady_lateness`);
    // a run no longer than that wave, on all of it.
    let (lateness, lateness_after) = match &output.profiling.steady_lateness {
        Some((first, steady)) => (steady.as_ref(), *first),
        None => {
            let all = results.metric("scheduling_lateness");
            (all.and_then(|m| m.stats.as_ref()), 0)
        }
    };
    // The profiling phase's requests the stop kept from being sent: records of those that
    // waited for a connection, and arrivals whose conversation was not composed yet (no
    // record); how late the earliest was when the stop came.
    let unsent = output.profiling.unsent
        + shared
            .unsent_arrivals
            .last()
            .map_or(0, |n| n.load(Ordering::Relaxed));
    let first_unsent = output
        .profiling
        .unsent_first_intended_ns
        .unwrap_or(u64::MAX)
        .min(
            shared
                .unsent_arrival_first_intended_ns
                .load(Ordering::Relaxed),
        );
    let unsent_wait_max_s = crate::http::client::halted_since(shared.clock.now())
        .filter(|_| unsent > 0 && first_unsent != u64::MAX)
        .map_or(0.0, |at| at.saturating_sub(first_unsent) as f64 / 1e9);
    let (health, health_text) = health::assess(
        lateness,
        output.events,
        output.reads,
        &reports,
        driver_name,
        &health::ClientWaits {
            backlog: backlog.report(),
            unprepared: shared.preparation.waits(),
            unprepared_s: shared.preparation.waited_s(),
            // The profiling phase's, as every figure of the root summary.
            skipped_arrivals: shared
                .skipped_arrivals
                .last()
                .map_or(0, |n| n.load(Ordering::Relaxed)),
            concurrency: config.effective_concurrency(),
            prefill_concurrency: config.prefill_concurrency,
            record_thread: output.report,
            records_after_run_s: output.after_run_s,
            out_of_descriptors: crate::http::client::OUT_OF_DESCRIPTORS.load(Ordering::Relaxed),
            open_file_limit: open_file_limit(),
            unsent,
            unsent_wait_max_s,
            lateness_after,
            requests: output.profiling.total + output.profiling.cut_off,
        },
    );
    let mut results = results;
    results.client_health = health;

    // Every artifact is attempted even when another failed (a full disk loses one file,
    // not the summary); each failure is reported as it happens and fails the exit status.
    let mut failures: Vec<String> = output.jsonl_error.clone().into_iter().collect();
    let mut failed = |what: String| {
        tracing::error!("{what}");
        failures.push(what);
    };
    if let Some(warmup) = &output.warmup {
        let started = |i: usize| {
            let at = shared.phase_start_ns[i].load(Ordering::SeqCst);
            (at != u64::MAX).then_some(at)
        };
        let phase_runs = [
            phases::PhaseRun {
                phase: Phase::Warmup,
                summary: warmup,
                started: started(0),
                // Cut short only when the run stopped before profiling began.
                was_cancelled: was_cancelled && output.profiling.total == 0,
            },
            phases::PhaseRun {
                phase: Phase::Profiling,
                summary: &output.profiling,
                started: started(1),
                was_cancelled,
            },
        ];
        for failure in phases::write(&results, &clock, &phase_runs) {
            failed(failure);
        }
    }
    let mut exported = Vec::new();
    match create_all::<P::DataExporter>(&config) {
        Ok(exporters) => {
            for exporter in exporters {
                match exporter.export(&results) {
                    Ok(path) => exported.push(path),
                    // An exporter with nothing to write this run (time slices when no
                    // profiling request finished) writes no file, as in AIPerf.
                    Err(e @ crate::plugin::PluginError::Disabled(_)) => tracing::info!("{e}"),
                    Err(e) => failed(format!("export: {e}")),
                }
            }
        }
        Err(e) => failed(e),
    }
    // The raw exchanges are listed as AIPerf lists them: after the summaries, before the
    // time slices.
    if let Some(raw) = raw_export.filter(|p| p.is_file()) {
        let slices = exported.iter().position(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n.contains("_timeslices."))
        });
        exported.insert(slices.unwrap_or(exported.len()), raw);
    }
    let mut console = String::new();
    if was_cancelled {
        console.push_str(&crate::export::incomplete_results_banner(
            crate::export::INCOMPLETE_REASON_CANCELLED,
        ));
    }
    match create_all::<P::ConsoleExporter>(&config) {
        Ok(exporters) => {
            for exporter in exporters {
                if let Err(e) = exporter.export(&results, &mut console) {
                    failed(format!("console: {e}"));
                }
            }
        }
        Err(e) => failed(e),
    }
    if output.profiling.total == 0 {
        // Empty tables alone would read as a broken run.
        let why = match &output.warmup {
            _ if output.profiling.cut_off > 0 => format!(
                "the run stopped with its {} in flight (see the note below)",
                n_requests(output.profiling.cut_off)
            ),
            Some(w) if w.total > 0 => format!(
                "the run stopped during the warmup ({} warmup requests, summarized in \
                 warmup_metrics and phases/warmup/)",
                w.total
            ),
            Some(w) if w.cut_off > 0 => format!(
                "the run stopped during the warmup, cancelling its {} in flight",
                n_requests(w.cut_off)
            ),
            _ if output.profiling.span.is_none() => "no profiling request was sent".to_owned(),
            _ => "the run stopped before any request finished".to_owned(),
        };
        let note = format!("WARNING: no profiling request finished: {why}.");
        tracing::warn!("{}", note.trim_start_matches("WARNING: "));
        console.push('\n');
        console.push_str(&note);
        console.push('\n');
    }
    // A run cut short says so beside its tables, not only in the log: its figures cover
    // what finished.
    let stopped = if aborted {
        Some(format!(
            "WARNING: the run was ended early by --failed-request-threshold {}: {} of {} \
             profiling requests failed; the results cover the requests that finished \
             (was_cancelled in the JSON).",
            config.failed_request_threshold.unwrap_or(0.0),
            output.profiling.errors,
            output.profiling.total
        ))
    } else {
        stopped_by_signal.map(|code| {
            let signal = if code == 143 { "SIGTERM" } else { "SIGINT" };
            format!(
                "WARNING: the run was interrupted ({signal}); the results cover the requests \
                 that finished (was_cancelled in the JSON)."
            )
        })
    };
    if let Some(note) = stopped {
        console.push('\n');
        console.push_str(&note);
        console.push('\n');
    }
    // AIPerf keeps no record of requests cut off by a stop; the records file keeps them,
    // so say how many and where.
    let warmup = output
        .warmup
        .as_ref()
        .map_or((0, 0), |w| (w.cut_off, w.unsent));
    let profiling = (output.profiling.cut_off, output.profiling.unsent);
    for (n, unsent, stopped) in [
        (warmup.0 - warmup.1, false, "the warmup stopped"),
        (warmup.1, true, "the warmup stopped"),
        (profiling.0 - profiling.1, false, "the run stopped"),
        (profiling.1, true, "the run stopped"),
    ] {
        if n == 0 {
            continue;
        }
        let (were, them) = if n == 1 {
            ("was", "it")
        } else {
            ("were", "them")
        };
        let kept = match config.export_level.writes_records() {
            true => format!(
                "; {} keeps {them} (error 499, was_cancelled)",
                crate::results::export_file_name(
                    config.profile_export_prefix.as_deref(),
                    crate::export::RECORDS_FILE,
                ),
            ),
            false => String::new(),
        };
        let note = if unsent {
            format!(
                "NOTE: {} waiting for a connection when {stopped} {were} not sent: the \
                 metrics leave {them} out{kept}.",
                n_requests(n),
            )
        } else {
            format!(
                "NOTE: {} in flight when {stopped} {were} cancelled: like AIPerf, the \
                 metrics leave {them} out{kept}.",
                n_requests(n),
            )
        };
        tracing::info!("{}", note.trim_start_matches("NOTE: "));
        console.push('\n');
        console.push_str(&note);
        console.push('\n');
    }
    if let Some(warning) = outcome::failure_warning(&results) {
        tracing::warn!("{}", warning.trim_start_matches("WARNING: "));
        console.push('\n');
        console.push_str(&warning);
        console.push('\n');
    }
    console.push('\n');
    console.push_str(&health_text);
    let console_name = crate::results::export_file_name(
        config.profile_export_prefix.as_deref(),
        crate::export::CONSOLE_FILE,
    );
    if let Err(e) = write_file(&artifact_dir.join(console_name), &console) {
        failed(e);
    }
    // Tools that watch the directory read this last: everything above is as complete as
    // it will get. A file that could not be written makes the results partial.
    let partial = was_cancelled || !failures.is_empty();
    if let Err(e) = write_file(
        &artifact_dir.join(".aiperf_results_ready.json"),
        &format!("{{\"ready\":true,\"was_cancelled\":{was_cancelled},\"partial\":{partial}}}\n"),
    ) {
        tracing::error!("{e}");
        failures.push(e);
    }
    // AIPerf 0.13 exits 1 when no request succeeded: every one failed, or none finished.
    // A run ended by --failed-request-threshold is no exception either way: AIPerf's
    // help says it exits non-zero, but it exits 0 when some requests succeeded.
    let none_succeeded = output.profiling.errors == output.profiling.total;
    let exit_code = match stopped_by_signal {
        Some(code) if failures.is_empty() => code,
        _ if failures.is_empty() && !none_succeeded => 0,
        _ => 1,
    };
    Ok(RunOutcome {
        results,
        console,
        exported,
        failures,
        exit_code,
    })
}

/// How often the main thread looks for a signal or the workers' end: a Ctrl-C stops new
/// requests, and a finished run exits, within this (it once slept 100 ms between looks,
/// which every run paid at its end). The progress display is redrawn less often.
const MAIN_POLL: Duration = Duration::from_millis(5);
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Requests prepared before the workers start; the rest follow on the preparation thread.
const EAGER_REQUESTS: usize = 64;

/// A synthetic dataset whose prompts and bodies would take more than this is composed
/// while the run goes (see `on_demand`); smaller ones are made once and reused, which
/// costs nothing per request.
const ON_DEMAND_BYTES: f64 = 16.0 * 1024.0 * 1024.0;

/// Whether `entries` synthetic conversations are composed as sessions take them, and in
/// which order sessions take them: when holding them all would cost more than
/// [`ON_DEMAND_BYTES`], in a run that draws its sessions' conversations (in order, or by
/// `--dataset-sampling-strategy`), or a user-centric one (see [`by_draw`]); not a trace
/// schedule, which picks conversations by index. Everything a turn carries is held twice,
/// in the turn and again in its request's body: a token of prompt is about 8 bytes, a
/// pixel of a synthetic image about 4 (its noise does not compress; base64 adds a third),
/// a sample of audio 2 and a third.
fn compose_on_demand(config: &ProfileConfig, entries: usize) -> Option<on_demand::Order> {
    let mode = crate::plugin::normalize_name(&config.effective_timing_mode());
    let turns = config.conversation_turn_mean.max(1.0) + config.conversation_turn_stddev;
    let context = [
        config.prompt_prefix_length,
        config.prompt_prefix_user_context_length,
    ];
    let tokens = f64::from(config.synthetic_input_tokens_mean)
        * f64::from(config.prompt_batch_size.max(1))
        + context.iter().flatten().map(|&n| f64::from(n)).sum::<f64>();
    let images = f64::from(config.image_batch_size)
        * f64::from(config.image_width_mean)
        * f64::from(config.image_height_mean)
        * 4.0;
    let top_rate_hz = config
        .audio_sample_rates
        .iter()
        .fold(0.0, |a: f64, &b| a.max(b))
        * 1e3;
    let audio = f64::from(config.audio_batch_size)
        * config.audio_length_mean.max(0.0)
        * top_rate_hz
        * 2.0
        * 4.0
        / 3.0;
    let per_turn = (tokens + 64.0) * 8.0 + images + audio;
    let bytes = entries as f64 * turns * per_turn * 2.0;
    if bytes <= ON_DEMAND_BYTES {
        return None;
    }
    match mode.as_str() {
        "request_rate" => Some(on_demand::Order::Next),
        "user_centric_rate" => by_draw(config, entries),
        _ => None,
    }
}

/// How a user-centric run takes a dataset composed on demand: by draw, each user's
/// session the draw the strategy gives it, the queue spanning the opening users' draws
/// (`--num-users` + 1, started in another order than drawn). Only when the warmup, if
/// any, draws in order (its sessions take the first draws, the users the next), no
/// `--dataset-sampling-strategy` draws otherwise, and the dataset is well beyond what
/// the users hold anyway (the opening's draws queued, and a session in flight per user):
/// else holding it costs no more.
fn by_draw(config: &ProfileConfig, entries: usize) -> Option<on_demand::Order> {
    let in_order = |c: &ProfileConfig| {
        crate::plugin::normalize_name(&c.effective_timing_mode()) == "request_rate"
    };
    let warmup_in_order =
        !config.has_warmup() || config.warmup_load().is_some_and(|w| in_order(&w));
    let reserve = usize::try_from(config.num_users?).ok()?.checked_add(1)?;
    let held_anyway = reserve.saturating_mul(2);
    let beyond = entries / 2 > held_anyway;
    (warmup_in_order && config.dataset_sampling_strategy.is_none() && beyond)
        .then_some(on_demand::Order::ByDraw { reserve })
}

/// How a worker that finds its request unprepared waits for it (monoio's timer rounds
/// this up to its 1 ms tick; the preparation thread is normally far ahead).
const UNPREPARED_POLL: Duration = Duration::from_micros(200);

/// What every request shares: the endpoint path, the headers and the body's framing.
pub(crate) struct RequestTemplate {
    path: String,
    headers: Vec<(String, String)>,
    /// Posted as `multipart/form-data` (the endpoint's metadata `requires_form_data`).
    form_data: bool,
}

impl RequestTemplate {
    /// The request bytes of a turn; `body` is left holding its JSON payload (for
    /// `inputs.json`).
    pub(crate) fn build<E: EndpointProtocol, T: TransportProtocol>(
        &self,
        endpoint: &E,
        transport: &T,
        turn: &crate::dataset::Turn,
        body: &mut Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        body.clear();
        endpoint
            .format_payload(turn, body)
            .map_err(|e| format!("payload: {e}"))?;
        if !self.form_data {
            return Ok(transport.prepare(&self.path, &self.headers, body));
        }
        // AIPerf's transport posts the endpoint's JSON object as a form.
        let form = crate::http::multipart::form_data(body).map_err(|e| format!("payload: {e}"))?;
        let mut headers = self.headers.clone();
        headers.push(("Content-Type".to_owned(), form.content_type));
        Ok(transport.prepare(&self.path, &headers, &form.body))
    }
}

fn turn_of<'a>(
    dataset: &'a [crate::dataset::Conversation],
    req: &PreparedRequest,
) -> Option<&'a crate::dataset::Turn> {
    dataset
        .get(req.conversation_index)?
        .turns
        .get(req.turn_index as usize)
}

/// A request's bytes: set once, before the run or during it on the preparation thread,
/// and read by the workers through [`ready`](Self::ready).
#[derive(Debug, Default)]
pub(crate) struct Staged(OnceLock<Vec<u8>>);

impl Staged {
    pub(crate) fn get(&self) -> Option<&[u8]> {
        self.0.get().map(Vec::as_slice)
    }

    pub(crate) fn set(&self, bytes: Vec<u8>) {
        // Each request is prepared exactly once (eagerly or on the thread, by index).
        let _ = self.0.set(bytes);
    }

    /// The bytes, at once when prepared. Otherwise the worker waits (without blocking its
    /// thread) and the wait is counted: the client, not the server, held the request
    /// back. A failed preparation never completes this; the run cancels the request.
    pub async fn ready<'a>(&'a self, preparation: &Preparation, clock: &RunClock) -> &'a [u8] {
        if let Some(bytes) = self.0.get() {
            return bytes;
        }
        let from = clock.now();
        loop {
            // Boxed, as in `session::send_turn`: inline, the aligned timer entry would sit in
            // every request's task.
            Box::pin(monoio::time::sleep(UNPREPARED_POLL)).await;
            if let Some(bytes) = self.0.get() {
                preparation.count_wait(clock, from);
                return bytes;
            }
        }
    }
}

/// The preparation thread's outcome, and the waits it caused.
#[derive(Debug, Default)]
pub(crate) struct Preparation {
    waits: AtomicU64,
    waited_ns: AtomicU64,
    error: Mutex<Option<String>>,
}

impl Preparation {
    /// Requests a worker found unprepared.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    pub fn waited_s(&self) -> f64 {
        self.waited_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// A worker waited from `from` for what the preparation thread had not made yet.
    pub fn count_wait(&self, clock: &RunClock, from: u64) {
        self.waits.fetch_add(1, Ordering::Relaxed);
        let waited = clock.now().saturating_sub(from);
        self.waited_ns.fetch_add(waited, Ordering::Relaxed);
    }

    fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    /// Ends the run over a failed preparation: requests waiting for bytes that will never
    /// come are cancelled with it.
    pub(crate) fn fail(&self, shared: &Shared, e: String) {
        if let Ok(mut error) = self.error.lock() {
            error.get_or_insert(e);
        }
        shared.stop.store(true, Ordering::SeqCst);
        shared.cancel_at_ns.store(0, Ordering::SeqCst);
    }
}

/// Prepares every request from `from` on, in order, and writes `inputs.json` (every
/// payload, as AIPerf lists them) as it goes, unless its path is `None`. Runs on its own thread with its own endpoint
/// and transport, beside the workers: a large dataset no longer delays the first request.
fn prepare_in_background<P: PluginSet>(
    shared: &Shared,
    config: &ProfileConfig,
    template: &RequestTemplate,
    from: usize,
    inputs_path: Option<&Path>,
) {
    let fail = |e: String| shared.preparation.fail(shared, e);
    let (endpoint, transport) = match (
        create::<P::Endpoint>(&config.endpoint_type, config),
        create::<P::Transport>(&config.transport, config),
    ) {
        (Ok(e), Ok(t)) => (e, t),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let mut inputs = match inputs_path {
        Some(path) => InputsWriter::create(path),
        None => InputsWriter::none(),
    };
    let mut body = Vec::new();
    let mut index = 0;
    for conversation in &shared.conversations {
        inputs.begin(&conversation.session_id);
        for turn in &conversation.turns {
            match template.build(&endpoint, &transport, turn, &mut body) {
                Ok(bytes) => {
                    if let Some(req) = shared.requests.get(index).filter(|_| index >= from) {
                        req.bytes.set(bytes);
                    }
                }
                Err(e) => return fail(e),
            }
            index += 1;
            inputs.payload(&body);
        }
        inputs.end();
    }
    inputs.finish();
}

/// Every plugin the run will create must be linked; say so before any work is done.
/// The `--system-prompt` text, once the endpoint is known to send it, as AIPerf 0.13's
/// `validate_system_prompt_compatibility` requires; the prefix prompt flags are refused
/// for an endpoint that neither tokenizes its input nor produces tokens, as its converter
/// refuses them. The synthetic system and user context prompts are not refused for an
/// endpoint without a system role (AIPerf composes them and the endpoint leaves them
/// out): a warning says they are not sent.
fn prompt_context<P: PluginSet>(
    config: &ProfileConfig,
    metadata: &crate::metadata::EndpointMetadata,
) -> Result<Option<String>, String> {
    if !(metadata.tokenizes_input || metadata.produces_tokens) {
        let flags = config.prefix_prompt_flags();
        if !flags.is_empty() {
            return Err(format!(
                "Prefix prompt options ({}) cannot be used with --endpoint-type {}.",
                flags.join(", "),
                config.endpoint_type
            ));
        }
    }
    let system_prompt = config.system_prompt()?;
    if metadata.consumes_system_message {
        return Ok(system_prompt);
    }
    if system_prompt.is_some() {
        type Kind<P> = <<P as PluginSet>::Endpoint as DispatchEnum>::Kind;
        let mut supported: Vec<&str> = Kind::<P>::all()
            .iter()
            .filter(|k| {
                k.entry()
                    .metadata::<crate::metadata::EndpointMetadata>()
                    .is_ok_and(|m| m.consumes_system_message)
            })
            .map(|k| k.name())
            .collect();
        supported.sort_unstable();
        return Err(format!(
            "{} '{}' (no system role), so the text would never reach the wire. Supported \
             endpoint types: {}.",
            ProfileConfig::SYSTEM_PROMPT_UNSUPPORTED,
            config.endpoint_type,
            supported.join(", ")
        ));
    }
    if config.prompt_prefix_shared_system_length.is_some()
        || config.prompt_prefix_user_context_length.is_some()
    {
        tracing::warn!(
            "endpoint type '{}' has no system role: the --shared-system-prompt-length and \
             --user-context-prompt-length prompts are not sent",
            config.endpoint_type
        );
    }
    Ok(system_prompt)
}

/// A turn's input tokens as AIPerf counts them from the body it sends: with the
/// conversation's system and user context messages when the endpoint sends them, all
/// texts joined by one space and tokenized again.
pub(crate) fn with_context_tokens<T: TokenizerProtocol>(
    turn: &crate::dataset::Turn,
    metadata: &crate::metadata::EndpointMetadata,
    tokenizer: &T,
) -> Option<u32> {
    let sent = metadata.consumes_system_message && turn.raw_payload.is_none();
    if !sent || turn.context_messages().next().is_none() {
        return turn.input_tokens;
    }
    let texts = turn
        .context_messages()
        .chain(turn.texts.iter().map(String::as_str));
    let joined = texts.collect::<Vec<_>>().join(" ");
    Some(u32::try_from(tokenizer.count(&joined)).unwrap_or(u32::MAX))
}

fn check_plugin_names<P: PluginSet>(config: &ProfileConfig) -> Result<(), String> {
    fn check<E: DispatchEnum>(name: &str, flag: &str) -> Result<(), String> {
        if E::Kind::from_name(name).is_some() {
            return Ok(());
        }
        let linked: Vec<&str> = E::Kind::all().iter().map(|k| k.name()).collect();
        Err(format!(
            "{flag} needs the {} plugin `{name}`, which this binary does not link \
             (linked: {})",
            E::Kind::CATEGORY,
            if linked.is_empty() {
                "none".to_owned()
            } else {
                linked.join(", ")
            }
        ))
    }
    check::<P::Endpoint>(&config.endpoint_type, "--endpoint-type")?;
    check::<P::Transport>(&config.transport, "--transport")?;
    check::<P::UrlSelectionStrategy>(&config.url_selection_strategy, "--url-strategy")?;
    let mode = config.effective_timing_mode();
    check::<P::TimingStrategy>(&mode, "the timing mode")?;
    let pattern = config.effective_arrival_pattern();
    let why = if config.arrival_smoothness.is_some() && config.arrival_pattern.is_none() {
        "--arrival-smoothness"
    } else {
        "--arrival-pattern"
    };
    check::<P::ArrivalPattern>(&pattern, why)?;
    if config.input_file.is_none() {
        check::<P::DatasetComposer>(&config.dataset_composer, "--dataset-composer")?;
    }
    if let Some(ui) = &config.ui_type {
        check::<P::Ui>(ui, "--ui-type")?;
    }
    if config.concurrency_ramp_duration.is_some() || config.request_rate_ramp_duration.is_some() {
        check::<P::Ramp>(&config.ramp_type, "--ramp-type")?;
    }
    if let Some(kind) = &config.custom_dataset_type {
        check::<P::CustomDatasetLoader>(kind, "--custom-dataset-type")?;
    }
    if let Some(sampler) = &config.dataset_sampling_strategy {
        check::<P::DatasetSampler>(sampler, "--dataset-sampling-strategy")?;
    }
    tokenizer_plugin::<P>(config).map(|_| ())
}

/// Settings that a run accepts and then does not use, each said once at start-up: AIPerf
/// takes them silently, so they are not refused, but a run should not look as if they
/// shaped it.
fn unused_settings(config: &ProfileConfig, images_sent: bool, audio_sent: bool) -> Vec<String> {
    let mut notes = Vec::new();
    let synthetic = config.input_file.is_none();
    let (width, height) = (config.image_width_mean, config.image_height_mean);
    let images = synthetic && width > 0 && height > 0 && config.image_batch_size > 0;
    if synthetic && (width > 0) != (height > 0) {
        notes.push(
            "no synthetic images are made: they need both --image-width-mean and \
             --image-height-mean"
                .to_owned(),
        );
    }
    if config.was_given("image_format") && !images {
        notes.push("--image-format is not used: no synthetic images are made".to_owned());
    }
    let side = crate::limits::MAX_IMAGE_SIDE;
    if images && (width > side || height > side) {
        notes.push(format!(
            "synthetic images are at most {side} pixels a side: larger sizes are cut to it"
        ));
    }
    if images && !images_sent {
        notes.push(format!(
            "endpoint `{}` sends no images: the synthetic images are not sent",
            config.endpoint_type
        ));
    }
    let audio = synthetic && config.audio_length_mean > 0.0 && config.audio_batch_size > 0;
    if audio && !audio_sent {
        notes.push(format!(
            "endpoint `{}` sends no audio: the synthetic clips are not sent",
            config.endpoint_type
        ));
    }
    if config.warmup_arrival_pattern.is_some()
        && config.warmup_request_rate.or(config.request_rate).is_none()
    {
        notes.push(
            "--warmup-arrival-pattern is not used: the warmup has no rate to shape \
             (--warmup-request-rate or --request-rate)"
                .to_owned(),
        );
    }
    if config.prefill_concurrency_ramp_duration.is_some() && config.prefill_concurrency.is_none() {
        notes.push(
            "--prefill-concurrency-ramp-duration is not used without --prefill-concurrency"
                .to_owned(),
        );
    }
    if config.has_warmup()
        && config.warmup_prefill_concurrency_ramp_duration.is_some()
        && config
            .warmup_prefill_concurrency
            .or(config.prefill_concurrency)
            .is_none()
    {
        notes.push(
            "--warmup-prefill-concurrency-ramp-duration is not used: the warmup has no \
             prefill concurrency (--warmup-prefill-concurrency or --prefill-concurrency)"
                .to_owned(),
        );
    }
    if config.was_given("random_corpus_style") && config.random_range_ratio.is_none() {
        notes.push(
            "--random-corpus-style is not used without --random-range-ratio (AIPerf's \
             other use of it, with --prompt-corpus random, has no counterpart here)"
                .to_owned(),
        );
    }
    notes
}

/// The flags given that pace a run by a rate, which a `fixed_schedule` run does not use.
fn paced_flags_given(config: &ProfileConfig) -> Vec<&'static str> {
    [
        ("--request-rate", config.request_rate.is_some()),
        ("--user-centric-rate", config.user_centric_rate.is_some()),
        ("--num-users", config.num_users.is_some()),
        ("--arrival-smoothness", config.arrival_smoothness.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}

/// AIPerf 0.13's promotion of a timestamped trace to a `fixed_schedule` run: only when
/// `--custom-dataset-type` names a trace format (`is_trace`), and refused when a flag of a
/// paced mode says the user wanted that instead. Other timestamped datasets are sent as
/// the timing flags say, their timestamps unused unless `--fixed-schedule` is given.
fn promote_trace<P: PluginSet>(config: &mut ProfileConfig) -> Result<(), String> {
    use crate::metadata::CustomDatasetLoaderMetadata;
    type Kind<P> = <<P as PluginSet>::CustomDatasetLoader as DispatchEnum>::Kind;
    let trace = config.custom_dataset_type.as_deref().and_then(|name| {
        let kind = Kind::<P>::from_name(name)?;
        let meta: CustomDatasetLoaderMetadata = kind.entry().metadata().ok()?;
        meta.is_trace.then(|| kind.name())
    });
    let Some(format) = trace else {
        tracing::info!(
            "the dataset has timestamps, which are not replayed: --fixed-schedule replays \
             them (AIPerf does so by itself only for a trace format named by \
             --custom-dataset-type)"
        );
        return Ok(());
    };
    if config.timing_mode.is_some() {
        return Ok(());
    }
    let paced = paced_flags_given(config);
    if !paced.is_empty() {
        return Err(format!(
            "the {format} dataset has timestamps, so the run would replay them \
             (fixed_schedule), which does not use {}; drop {} to replay the trace, or pass \
             --no-fixed-schedule to keep the pacing and not use the timestamps",
            paced.join(", "),
            if paced.len() == 1 { "it" } else { "them" }
        ));
    }
    tracing::info!(
        "the {format} trace has timestamps: replaying them (--no-fixed-schedule to not)"
    );
    config.fixed_schedule = true;
    Ok(())
}

/// Reads `--input-file` with the loader named by `--custom-dataset-type`, or the one
/// linked loader that recognises the file.
/// Also says whether the loader reads a trace format (`is_trace`).
fn load_custom_dataset<P: PluginSet>(
    config: &ProfileConfig,
    file: &Path,
    tokenizer: &P::Tokenizer,
) -> Result<(Vec<crate::dataset::Conversation>, bool), String> {
    use crate::protocols::CustomDatasetLoaderProtocol;
    type Kind<P> = <<P as PluginSet>::CustomDatasetLoader as DispatchEnum>::Kind;
    let read = |path: &Path| {
        let bytes =
            std::fs::read(path).map_err(|e| format!("--input-file {}: {e}", path.display()))?;
        let mut text = String::from_utf8(bytes).map_err(|e| {
            // Where, so the row can be found and mended.
            let at = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
            format!("{}:{line}: the file is not UTF-8 text", path.display())
        })?;
        // Editors on Windows start UTF-8 files with a byte order mark, which no JSON row
        // may hold: the first row read as invalid JSON at column 1.
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        Ok::<_, String>(text)
    };
    // A directory is several files of one format (random_pool's pools), in name order.
    let (files, name) = if file.is_dir() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(file)
            .map_err(|e| format!("--input-file {}: {e}", file.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(format!(
                "--input-file {}: the directory has no files",
                file.display()
            ));
        }
        let files = paths
            .iter()
            .map(|p| Ok((p.display().to_string(), read(p)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let dir = format!("{}/", file.display().to_string().trim_end_matches('/'));
        (files, dir)
    } else {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (vec![(file.display().to_string(), read(file)?)], name)
    };
    let directory = name.ends_with('/');
    let first_line = files[0].1.lines().find(|l| !l.trim().is_empty());
    let linked: Vec<&str> = Kind::<P>::all().iter().map(|k| k.name()).collect();
    if linked.is_empty() {
        return Err(
            "--input-file needs a custom_dataset_loader plugin, and this binary links \
                    none (build it with a pack that has one, e.g. core)"
                .into(),
        );
    }
    let is_trace = |kind: Kind<P>| {
        let meta: Option<crate::metadata::CustomDatasetLoaderMetadata> =
            kind.entry().metadata().ok();
        meta.is_some_and(|m| m.is_trace)
    };
    let (mut loader, trace): (P::CustomDatasetLoader, bool) = match &config.custom_dataset_type {
        Some(name) => (
            create(name, config)?,
            Kind::<P>::from_name(name).is_some_and(is_trace),
        ),
        None => {
            let mut matching = Vec::new();
            for &kind in Kind::<P>::all() {
                let ctx = PluginContext {
                    config,
                    entry: kind.entry(),
                    worker: None,
                };
                let candidate = P::CustomDatasetLoader::create(kind, &ctx)
                    .map_err(|e| format!("custom_dataset_loader:{}: {e}", kind.name()))?;
                if candidate.can_load(first_line, &name) {
                    matching.push((kind, candidate));
                }
            }
            match matching.len() {
                1 => {
                    let (kind, loader) = matching.remove(0);
                    (loader, is_trace(kind))
                }
                0 if first_line.is_none() && !directory => {
                    return Err(format!(
                        "{} has no rows: it is empty or holds only blank lines",
                        file.display()
                    ))
                }
                0 => {
                    return Err(format!(
                        "no custom dataset loader recognises {}; pick one with \
                         --custom-dataset-type ({})",
                        file.display(),
                        linked.join(", ")
                    ))
                }
                _ => {
                    let names: Vec<&str> = matching.iter().map(|(k, _)| k.name()).collect();
                    return Err(format!(
                        "several loaders recognise {} ({}); pick one with --custom-dataset-type",
                        file.display(),
                        names.join(", ")
                    ));
                }
            }
        }
    };
    // Loaders name the file (and line) in their messages: given the path as the user
    // wrote it, they need no prefix here.
    let loaded = match directory {
        true => loader.load_dir(&files, &name, tokenizer),
        false => loader.load(&files[0].1, &files[0].0, tokenizer),
    };
    loaded.map(|d| (d, trace)).map_err(|e| e.to_string())
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Twelve hex digits, unique enough to tell runs apart.
fn benchmark_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    // splitmix64 finaliser: spreads nearby timestamps over the whole range.
    let mut z = mixed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:012x}", (z ^ (z >> 31)) & 0xffff_ffff_ffff)
}

fn cli_command() -> String {
    redact_args(std::env::args()).join(" ")
}

/// `2026-12-04T17:25:53.123456`: local time, microseconds, no zone (as AIPerf writes).
pub(crate) fn local_iso_time(wall_ns: u64) -> String {
    let secs = (wall_ns / 1_000_000_000) as libc::time_t;
    let micros = (wall_ns % 1_000_000_000) / 1000;
    // SAFETY: `tm` is plain data; localtime_r writes it and does not retain pointers.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return String::new();
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// `n` requests, in words: "one request", "3 requests".
fn n_requests(n: u64) -> String {
    match n {
        1 => "one request".to_owned(),
        n => format!("{n} requests"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts characters, so a count shows exactly which texts were joined, and how.
    struct Chars;

    impl TokenizerProtocol for Chars {
        fn count(&self, text: &str) -> usize {
            text.chars().count()
        }
        fn encode(&self, _: &str) -> Vec<u32> {
            Vec::new()
        }
        fn decode(&self, _: &[u32]) -> String {
            String::new()
        }
        fn vocab_size(&self) -> u32 {
            0
        }
    }

    /// AIPerf counts a request's input from its body: with the system and user context
    /// messages when the endpoint sends them, every text joined by one space.
    #[test]
    fn context_messages_count_when_the_endpoint_sends_them() {
        let chat: crate::metadata::EndpointMetadata = serde_json::from_value(
            serde_json::json!({"metrics_title": null, "endpoint_path": null,
                "supports_streaming": true, "tokenizes_input": true, "produces_tokens": true,
                "consumes_system_message": true}),
        )
        .expect("metadata");
        let completions = crate::metadata::EndpointMetadata {
            consumes_system_message: false,
            ..chat.clone()
        };
        let turn = crate::dataset::Turn {
            texts: vec!["hello".into(), "you".into()],
            input_tokens: Some(2),
            system_message: Some("SYS".into()),
            user_context_message: Some("CONTEXT".into()),
            ..Default::default()
        };
        // "SYS CONTEXT hello you"
        assert_eq!(with_context_tokens(&turn, &chat, &Chars), Some(21));
        assert_eq!(with_context_tokens(&turn, &completions, &Chars), Some(2));
        let system_only = crate::dataset::Turn {
            user_context_message: None,
            ..turn.clone()
        };
        assert_eq!(with_context_tokens(&system_only, &chat, &Chars), Some(13));
        // A body sent as given carries neither.
        let raw = crate::dataset::Turn {
            raw_payload: Some(serde_json::json!({})),
            ..turn.clone()
        };
        assert_eq!(with_context_tokens(&raw, &chat, &Chars), Some(2));
        let plain = crate::dataset::Turn {
            system_message: None,
            user_context_message: None,
            ..turn
        };
        assert_eq!(with_context_tokens(&plain, &chat, &Chars), Some(2));
    }

    /// A worker that reaches a request before the preparation thread waits for it without
    /// blocking its thread, gets exactly the bytes prepared, and the wait is counted; a
    /// prepared request costs no wait.
    #[test]
    fn unprepared_requests_wait_visibly() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        let clock = RunClock::new();
        let preparation = Preparation::default();
        let ready = Staged::default();
        ready.set(b"GET / HTTP/1.1\r\n\r\n".to_vec());
        let got = rt.block_on(ready.ready(&preparation, &clock)).to_vec();
        assert_eq!(got, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(preparation.waits(), 0);

        let late = Arc::new(Staged::default());
        let setter = std::thread::spawn({
            let late = late.clone();
            move || {
                std::thread::sleep(Duration::from_millis(20));
                late.set(b"late".to_vec());
            }
        });
        let (got, other_ticks) = rt.block_on(async {
            // The worker's other tasks keep running meanwhile.
            let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
            monoio::spawn({
                let ticks = ticks.clone();
                async move {
                    for _ in 0..5 {
                        monoio::time::sleep(Duration::from_millis(1)).await;
                        ticks.set(ticks.get() + 1);
                    }
                }
            });
            let got = late.ready(&preparation, &clock).await.to_vec();
            (got, ticks.get())
        });
        setter.join().expect("setter");
        assert_eq!(got, b"late");
        assert_eq!(other_ticks, 5);
        assert_eq!(preparation.waits(), 1);
        assert!(
            preparation.waited_s() >= 0.015,
            "{}",
            preparation.waited_s()
        );
    }

    #[test]
    fn iso_time_has_microseconds_and_no_zone() {
        let text = local_iso_time(1_700_000_000_123_456_789);
        assert_eq!(text.len(), "2023-11-14T22:13:20.123456".len(), "{text}");
        assert!(text.ends_with(".123456"), "{text}");
    }
}

#[cfg(test)]
mod unused_settings_tests {
    use clap::{Args as _, Command, FromArgMatches as _};

    use super::*;

    fn notes(args: &[&str], images: bool, audio: bool) -> Vec<String> {
        let matches = ProfileConfig::augment_args(Command::new("profile"))
            .try_get_matches_from(["profile", "-m", "m"].iter().chain(args))
            .expect("valid flags");
        let mut config = ProfileConfig::from_arg_matches(&matches).expect("a config");
        config.note_given(&matches);
        unused_settings(&config, images, audio)
    }

    /// What is accepted and then not used is said once, word for word; a run that uses
    /// everything hears nothing.
    #[test]
    fn settings_a_run_does_not_use_are_named() {
        assert!(notes(
            &["--image-width-mean", "8", "--image-height-mean", "8"],
            true,
            true
        )
        .is_empty());
        assert_eq!(
            notes(
                &["--image-width-mean", "32", "--image-format", "png"],
                true,
                true
            ),
            [
                "no synthetic images are made: they need both --image-width-mean and \
                 --image-height-mean",
                "--image-format is not used: no synthetic images are made",
            ]
        );
        assert_eq!(
            notes(
                &["--image-width-mean", "5000", "--image-height-mean", "8"],
                false,
                true
            ),
            [
                "synthetic images are at most 4096 pixels a side: larger sizes are cut to it",
                "endpoint `chat` sends no images: the synthetic images are not sent",
            ]
        );
        assert_eq!(
            notes(&["--audio-length-mean", "1"], true, false),
            ["endpoint `chat` sends no audio: the synthetic clips are not sent"]
        );
        assert_eq!(
            notes(
                &[
                    "--warmup-request-count",
                    "3",
                    "--warmup-arrival-pattern",
                    "constant"
                ],
                true,
                true
            ),
            [
                "--warmup-arrival-pattern is not used: the warmup has no rate to shape \
                 (--warmup-request-rate or --request-rate)"
            ]
        );
        assert_eq!(
            notes(&["--random-corpus-style", "sglang"], true, true),
            [
                "--random-corpus-style is not used without --random-range-ratio (AIPerf's \
                 other use of it, with --prompt-corpus random, has no counterpart here)"
            ]
        );
    }
}

#[cfg(test)]
mod on_demand_tests {
    use clap::{Args as _, Command, FromArgMatches as _};

    use super::*;

    fn config_of(args: &[&str]) -> ProfileConfig {
        let matches = ProfileConfig::augment_args(Command::new("profile"))
            .try_get_matches_from(["profile", "-m", "m"].iter().chain(args))
            .expect("valid flags");
        ProfileConfig::from_arg_matches(&matches).expect("a config")
    }

    /// A user-centric run's synthetic dataset is composed on demand, read by draw with
    /// the opening users' draws in reserve, when it is large, and well beyond what its
    /// users hold anyway; a warmup drawing otherwise than in order, or a sampler, keeps it
    /// held.
    #[test]
    fn user_centric_datasets_are_composed_on_demand_when_large() {
        let order = |args: &[&str], entries| {
            let mut all = vec!["--isl", "550", "--session-turns-mean", "2"];
            all.extend_from_slice(args);
            compose_on_demand(&config_of(&all), entries)
        };
        let users = ["--user-centric-rate", "10", "--num-users", "20"];
        assert_eq!(
            order(&users, 2000),
            Some(on_demand::Order::ByDraw { reserve: 21 })
        );
        // Some 16 MiB of prompts and bodies: held.
        assert_eq!(order(&users, 800), None);
        // Not twice what the users hold (the opening's draws and a session each) past
        // half of it.
        let many = ["--user-centric-rate", "10", "--num-users", "600"];
        assert_eq!(order(&many, 2400), None);
        assert_eq!(
            order(&many, 2500),
            Some(on_demand::Order::ByDraw { reserve: 601 })
        );
        let warmup = [&users[..], &["--warmup-request-count", "4"]].concat();
        assert_eq!(
            order(&warmup, 2000),
            Some(on_demand::Order::ByDraw { reserve: 21 })
        );
        let sampled = [&users[..], &["--dataset-sampling-strategy", "shuffle"]].concat();
        assert_eq!(order(&sampled, 2000), None);
        assert_eq!(
            order(&["--request-rate", "10"], 2000),
            Some(on_demand::Order::Next)
        );
    }
}
