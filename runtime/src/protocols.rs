//! One protocol trait per plugin category (see `categories.yaml`).
//!
//! Generated dispatch enums implement these by delegation (`#[protocol]`), so every
//! plugin call is a `match` plus a direct call. Types in signatures are written as
//! `crate::` paths because the delegation is expanded in the generated crate.
//!
//! Categories the engine drives today have the methods it calls; the others carry the
//! shape of their AIPerf counterparts and grow as their plugins land.

use aiperf_macros::protocol;

/// What a timing strategy asks the worker to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextCredit {
    /// Send when the schedule says: at this run instant (open loop). The engine gives
    /// such a tick to a later turn of one of the worker's sessions when one waits for a
    /// tick (its previous response back, its delay over), as AIPerf's rate loop does, and
    /// only otherwise starts a session with it.
    At(crate::record::Nanos),
    /// Send as soon as a concurrency slot is free (closed loop).
    WhenSlotFree,
    /// Start a session of this conversation at this run instant (trace replay, per-user
    /// sessions): send turn `turn`, then the later ones, at most `turns` turns in all,
    /// each after the previous one's response at the instant
    /// [`TimingStrategyProtocol::next_turn_at`] gives. `conversation` indexes the dataset
    /// given to `prepare`.
    Turn {
        at: crate::record::Nanos,
        conversation: usize,
        turn: u32,
        turns: u32,
        /// The simulated user sending the session (user-centric mode), numbered across
        /// the run as AIPerf 0.13 numbers its users: the session's X-Correlation-ID is the
        /// number. `None`: the session has a random id.
        user: Option<u64>,
        /// The session's place in the run's draws of conversations, when the strategy
        /// takes them in the dataset's order (draw `d` is conversation `d` modulo the
        /// dataset's size, counted across phases as
        /// [`after_draws`](TimingStrategyProtocol::after_draws) tells): a dataset too large
        /// to hold is then composed draw by draw ahead of the sessions, and each session
        /// takes its own draw. `None`: the run holds the dataset for this strategy.
        draw: Option<u64>,
    },
    /// This worker's schedule is exhausted.
    Done,
}

// ---------------------------------------------------------------------------- timing

/// Decides when a worker issues its next request.
#[protocol]
pub trait TimingStrategyProtocol {
    /// Called once per phase before the first credit, with the whole dataset and this
    /// worker's share of the run. Strategies that schedule specific conversations (trace
    /// replay, user sessions) pick this worker's part here; `start` is the phase's first
    /// instant. A synthetic dataset too large to hold comes as its turn counts alone
    /// ([`DatasetView::Composed`](crate::dataset::DatasetView)), only to a strategy whose
    /// sessions give their [`draw`](NextCredit::Turn).
    fn prepare(
        &mut self,
        dataset: crate::dataset::DatasetView<'_>,
        worker: crate::plugin::WorkerShare,
        start: crate::record::Nanos,
    ) -> Result<(), crate::plugin::PluginError> {
        let _ = (dataset, worker, start);
        Ok(())
    }

    /// How many conversations the run's earlier phases (a warmup) drew before this one,
    /// the one AIPerf draws and drops at a phase's end included.
    /// Called before [`prepare`](Self::prepare). A strategy that picks its sessions'
    /// conversations itself starts after them, as AIPerf's sampler, shared by the
    /// phases, does: else the warmup's prompts open the profiling phase, and a server's
    /// prefix cache answers them. Returns the first draw this phase's sessions take
    /// (`drawn` unless the strategy passes some by): a dataset composed ahead of the
    /// sessions drops the draws passed by.
    fn after_draws(&mut self, drawn: u64) -> u64 {
        drawn
    }

    /// The next credit of this worker, given its arrival pattern and the current instant.
    /// A credit starts a session (or, [`NextCredit::At`], goes to a later turn waiting
    /// for a tick); the engine sends later turns itself.
    fn next_credit<A: crate::protocols::ArrivalPatternProtocol>(
        &mut self,
        arrivals: &mut A,
        now: crate::record::Nanos,
    ) -> crate::protocols::NextCredit;

    /// When turn `turn` (after the first) of a session of `conversation` may be sent: the
    /// previous turn was due at `previous_at` and its response ended at `previous_end`.
    /// The engine sends a session's turns in order, each only once the previous response
    /// has ended, and never before the instant returned here (a session started on a
    /// [`NextCredit::At`] tick also waits for a later tick). The default is AIPerf's
    /// rule for rate and concurrency runs: the turn's `delay_ms` after that response.
    fn next_turn_at(
        &self,
        conversation: &crate::dataset::Conversation,
        turn: u32,
        previous_at: crate::record::Nanos,
        previous_end: crate::record::Nanos,
    ) -> crate::record::Nanos {
        let _ = previous_at;
        let delay = conversation
            .turns
            .get(turn as usize)
            .and_then(|t| t.delay_ms)
            .map_or(0, crate::dataset::ms_to_ns);
        previous_end.saturating_add(delay)
    }
}

/// Generates the intervals between request starts.
#[protocol]
pub trait ArrivalPatternProtocol {
    /// Nanoseconds until the next arrival; `None` means "no pacing" (fill the slots).
    fn next_interval_ns(&mut self) -> Option<u64>;
    /// Changes the rate (requests per second) for later intervals.
    fn set_rate(&mut self, rate: f64);
    fn rate(&self) -> f64;
}

/// Moves a load setting from a start value to a target.
#[protocol]
pub trait RampProtocol {
    /// Sets what to ramp: from `start` to `target` over `duration_s` seconds.
    fn configure(&mut self, start: f64, target: f64, duration_s: f64);
    /// The value at `elapsed_s` seconds, `None` once the ramp is complete (the value is
    /// then the target).
    fn value_at(&self, elapsed_s: f64) -> Option<f64>;
}

// --------------------------------------------------------------------------- dataset

/// Holds the composed dataset for the run.
#[protocol]
pub trait DatasetBackingStoreProtocol {
    fn add_conversation(&mut self, conversation: crate::dataset::Conversation);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Gives a worker read access to conversations.
#[protocol]
pub trait DatasetClientStoreProtocol {
    fn conversation(&self, index: usize) -> Option<&crate::dataset::Conversation>;
}

/// Chooses the conversation of each new session (`--dataset-sampling-strategy`).
///
/// Every worker holds its own instance, and the run numbers its new sessions across
/// workers (`draw` 0, 1, 2, ...): a sampler answers from `draw` alone, so the sequence of
/// conversations is the same whichever worker starts which session, and reproducible with
/// `--random-seed`.
#[protocol]
pub trait DatasetSamplerProtocol {
    /// The conversation (below `count`, which is at least 1) of the run's `draw`-th session.
    fn index(&mut self, draw: u64, count: usize) -> usize;
}

/// Builds the dataset: all of it before the run, or, for a composer that can make each
/// conversation from its index alone, one conversation at a time while the run goes (a
/// dataset of 100,000 unique prompts need not be held at once).
#[protocol]
pub trait DatasetComposerProtocol {
    fn create_dataset<T: crate::protocols::TokenizerProtocol>(
        &mut self,
        tokenizer: &T,
    ) -> Result<Vec<crate::dataset::Conversation>, crate::plugin::PluginError>;

    /// How many conversations [`compose`](Self::compose) makes, when it can make each
    /// alone: conversation `i` is then the same whenever, and by whichever instance of the
    /// composer (for the same configuration, in the same process), it is made, and the
    /// same as `create_dataset`'s `i`-th. `None` when only `create_dataset` can make them.
    /// Conversation `i`'s `session_id` must then be the run's
    /// [`SessionIds`](crate::dataset::SessionIds)`::for_run(random_seed).id(i)`: the
    /// records of conversations that are not held are named from their index so.
    fn entries(&self) -> Option<usize> {
        None
    }

    /// How many turns conversation `index` (below [`entries`](Self::entries)) has,
    /// without composing it: the same count [`compose`](Self::compose) gives it. `None`
    /// when only composing tells; a strategy that plans whole conversations ahead
    /// (user-centric) then needs the dataset held.
    fn turns(&self, index: usize) -> Option<u32> {
        let _ = index;
        None
    }

    /// Conversation `index`, below [`entries`](Self::entries).
    fn compose<T: crate::protocols::TokenizerProtocol>(
        &mut self,
        index: usize,
        tokenizer: &T,
    ) -> Result<crate::dataset::Conversation, crate::plugin::PluginError> {
        let _ = tokenizer;
        Err(crate::plugin::PluginError::Other(format!(
            "this composer makes its conversations together, not conversation {index} alone"
        )))
    }
}

/// Reads a custom file format into conversations.
#[protocol]
pub trait CustomDatasetLoaderProtocol {
    /// Whether this loader understands a file, from its first line and name.
    fn can_load(&self, first_line: Option<&str>, file_name: &str) -> bool;
    /// Reads the whole file; the tokenizer synthesises prompt text where rows give only
    /// lengths (trace formats).
    fn load<T: crate::protocols::TokenizerProtocol>(
        &mut self,
        content: &str,
        file_name: &str,
        tokenizer: &T,
    ) -> Result<Vec<crate::dataset::Conversation>, crate::plugin::PluginError>;
    /// Reads a directory given as `--input-file` (`dir` ends with `/`): its files as
    /// `(name, content)`, in name order. `can_load` saw the first file's first line and
    /// `dir`. Formats that read one file keep this default, which says so.
    fn load_dir<T: crate::protocols::TokenizerProtocol>(
        &mut self,
        files: &[(String, String)],
        dir: &str,
        tokenizer: &T,
    ) -> Result<Vec<crate::dataset::Conversation>, crate::plugin::PluginError> {
        let _ = (files, tokenizer);
        Err(crate::plugin::PluginError::Config(format!(
            "{dir} is a directory, and this dataset format reads one file"
        )))
    }
}

// ------------------------------------------------------------------ endpoint, transport

/// What a job-style endpoint (metadata `requires_polling`) wants after a response.
#[derive(Debug, Clone, PartialEq)]
pub enum FollowUp {
    /// The request is complete.
    Done,
    /// Send another exchange for the same request (e.g. poll the job).
    Send(FollowUpRequest),
    /// Stop and record this failure (e.g. the job did not finish in time).
    Fail {
        outcome: crate::record::Outcome,
        error: crate::record::ErrorDetails,
    },
}

/// One more HTTP exchange of a request, sent through the run's transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpRequest {
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// Path joined to the base URL as an endpoint path is (already percent-encoded).
    pub path: String,
    /// Every header to send (the transport adds `Host`, `Connection`, `Content-Length`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before sending (poll interval).
    pub delay_ns: u64,
    /// Keep the exchange's response bytes in the record; false keeps only their times,
    /// for bodies nobody parses (a downloaded video).
    pub keep_responses: bool,
}

/// Formats requests for one API and reads its responses.
#[protocol]
pub trait EndpointProtocol {
    fn metadata(&self) -> &crate::metadata::EndpointMetadata;
    /// Writes the JSON request body for a turn into `body`.
    fn format_payload(
        &self,
        turn: &crate::dataset::Turn,
        body: &mut Vec<u8>,
    ) -> Result<(), crate::plugin::PluginError>;
    /// Writes the body of a later turn of a session for APIs that carry the conversation
    /// (chat): `history` holds the session's earlier turns, the user's and the assistant's
    /// replies (role `assistant`), oldest first, as AIPerf accumulates them. Returns
    /// `Ok(false)`, writing nothing, for APIs that send each turn alone (the default): the
    /// engine then sends the turn's body prepared before the run.
    fn format_session_payload(
        &self,
        history: &[crate::dataset::Turn],
        turn: &crate::dataset::Turn,
        body: &mut Vec<u8>,
    ) -> Result<bool, crate::plugin::PluginError> {
        let _ = (history, turn, body);
        Ok(false)
    }
    /// Headers this API needs beyond the transport's.
    fn request_headers(&self, headers: &mut Vec<(String, String)>);
    /// Reads one response unit. `Ok(None)` for units that carry nothing (e.g. `[DONE]`);
    /// `Err` when the server reported an error inside a successful response.
    fn parse_response(
        &self,
        chunk: &crate::record::ResponseChunk,
    ) -> Result<Option<crate::record::ParsedResponse>, crate::record::ErrorDetails>;
    /// Reads every response unit of a finished request, in order, pushing one result per
    /// unit onto `out`: what the record's metrics and a session's next turn are made of.
    /// The default reads each unit alone with [`parse_response`](Self::parse_response);
    /// an API whose units depend on each other overrides it (the Responses API repeats a
    /// streamed text in a closing event, the Messages API splits its usage over two
    /// events), as AIPerf's endpoints override `extract_response_data`.
    fn parse_responses(
        &self,
        chunks: &[crate::record::ResponseChunk],
        out: &mut Vec<Result<Option<crate::record::ParsedResponse>, crate::record::ErrorDetails>>,
    ) {
        out.extend(chunks.iter().map(|chunk| self.parse_response(chunk)));
    }
    /// Job APIs only (metadata `requires_polling`): called by the worker after each
    /// exchange of a request whose transport outcome is still open, with the record so
    /// far and the number of follow-ups already sent. May peek at the last response.
    fn follow_up(
        &self,
        record: &crate::record::RequestRecord,
        sent: u32,
    ) -> crate::protocols::FollowUp {
        let _ = (record, sent);
        crate::protocols::FollowUp::Done
    }
}

/// Carries requests to the server and times the response.
#[protocol]
pub trait TransportProtocol {
    /// Serializes a request for `path` with the given headers and body (one buffer,
    /// written with one write).
    fn prepare(&self, path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8>;
    /// [`prepare`](Self::prepare) with another method than `POST` (job polls use `GET`).
    /// Transports that only post keep this default.
    fn prepare_method(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Vec<u8> {
        let _ = method;
        self.prepare(path, headers, body)
    }
    /// Sends a prepared request to `--url` number `url_index` (what the run's
    /// url_selection_strategy chose, below the number of URLs) and fills the record's
    /// timestamps, responses and transport-level outcome. A job API's follow-ups reuse
    /// their submit's index: the job lives on that server.
    async fn send(
        &self,
        request: &[u8],
        url_index: usize,
        streaming: bool,
        clock: &crate::record::RunClock,
        record: &mut crate::record::RequestRecord,
    );
}

// ---------------------------------------------------------------------- processing

/// Computes per-request metrics.
#[protocol]
pub trait RecordProcessorProtocol {
    fn process_record(
        &mut self,
        record: &crate::record::ParsedRecord,
        out: &mut crate::results::MetricRecord,
    );
}

/// Aggregates per-request metrics into run-level results. An instance sees the records of
/// one phase: the profiling phase's set makes the root summary, and a run with a warmup
/// has a second set for the warmup's own (`warmup_metrics`).
#[protocol]
pub trait ResultsProcessorProtocol {
    fn process_result(
        &mut self,
        record: &crate::record::ParsedRecord,
        metrics: &crate::results::MetricRecord,
    );
    /// Appends the run-level metrics. `window` is the phase's observation window on the
    /// run clock (start, end), `None` when it sent nothing: rates are per second of it and
    /// time-weighted metrics cover it, as AIPerf's phase start and `requests_end_ns` do.
    fn summarize(
        &mut self,
        window: Option<(crate::record::Nanos, crate::record::Nanos)>,
        out: &mut Vec<crate::results::MetricResult>,
    );
}

/// Writes results to files.
#[protocol]
pub trait DataExporterProtocol {
    /// Writes its file and returns its path.
    fn export(
        &self,
        results: &crate::results::RunResults,
    ) -> Result<std::path::PathBuf, crate::plugin::PluginError>;
}

/// Prints results to the terminal.
#[protocol]
pub trait ConsoleExporterProtocol {
    /// Appends its text to `out`; nothing when it has nothing to say.
    fn export(
        &self,
        results: &crate::results::RunResults,
        out: &mut String,
    ) -> Result<(), crate::plugin::PluginError>;
}

// ------------------------------------------------------------------------ accuracy

/// Supplies an accuracy problem set.
#[protocol]
pub trait AccuracyBenchmarkProtocol {
    fn load_problems(
        &mut self,
        n_shots: u32,
    ) -> Result<Vec<crate::accuracy::Problem>, crate::plugin::PluginError>;
}

/// Grades one response against the ground truth.
#[protocol]
pub trait AccuracyGraderProtocol {
    fn grade(&self, response: &str, ground_truth: &str) -> crate::accuracy::Grade;
}

// ------------------------------------------------------------------- ui, selection

/// Shows progress, from the main thread, never from a measuring worker.
#[protocol]
pub trait UiProtocol {
    fn on_start(&mut self, total_requests: Option<u64>, duration_s: Option<f64>);
    fn on_progress(&mut self, progress: &crate::engine::Progress);
    fn on_finish(&mut self, progress: &crate::engine::Progress);
}

/// Spreads requests over several base URLs. Each measuring worker owns one instance,
/// created with its `WorkerShare`, and asks it once per request when there are several
/// `--url`s; the engine takes the answer modulo the number of URLs.
#[protocol]
pub trait UrlSelectionStrategyProtocol {
    fn next_url_index(&mut self) -> usize;
}

// -------------------------------------------------------------------------- services

/// A component of the engine.
#[protocol]
pub trait ServiceProtocol {
    fn service_id(&self) -> &str;
    fn start(&mut self) -> Result<(), crate::plugin::PluginError>;
    fn stop(&mut self);
}

/// Decides how the engine's components run (threads, pods).
#[protocol]
pub trait ServiceManagerProtocol {
    /// Starts the named services; returns how many instances run.
    fn run_services(&mut self, services: &[&str]) -> Result<usize, crate::plugin::PluginError>;
    fn shutdown(&mut self);
}

// --------------------------------------------------------------- plots, telemetry

/// Renders a chart from results.
#[protocol]
pub trait PlotProtocol {
    fn can_handle(&self, results: &crate::results::RunResults) -> bool;
    fn render(
        &self,
        results: &crate::results::RunResults,
        out_dir: &std::path::Path,
    ) -> Result<Vec<std::path::PathBuf>, crate::plugin::PluginError>;
}

/// Samples GPU metrics.
#[protocol]
pub trait GpuTelemetryCollectorProtocol {
    fn collect(
        &mut self,
        out: &mut Vec<crate::telemetry::GpuSample>,
    ) -> Result<(), crate::plugin::PluginError>;
}

// ------------------------------------------------------------------ communication

/// Carries shard results between machines.
#[protocol]
pub trait CommunicationProtocol {
    /// The address a client of `kind` connects or binds to.
    fn address(&self, kind: &str) -> String;
}

/// One end of a communication backend.
#[protocol]
pub trait CommunicationClientProtocol {
    fn send(&mut self, message: &[u8]) -> Result<(), crate::plugin::PluginError>;
    fn recv(&mut self) -> Result<Option<Vec<u8>>, crate::plugin::PluginError>;
}

/// Fans messages in from several senders to one receiver.
#[protocol]
pub trait MessageProxyProtocol {
    /// Forwards what is pending; returns the number of messages moved.
    fn forward(&mut self) -> Result<usize, crate::plugin::PluginError>;
}

// ------------------------------------------------------------------------ tokenizer

/// Counts tokens.
#[protocol]
pub trait TokenizerProtocol {
    fn count(&self, text: &str) -> usize;
    fn encode(&self, text: &str) -> Vec<u32>;
    fn decode(&self, tokens: &[u32]) -> String;
    /// Size of the vocabulary (token ids are below it).
    fn vocab_size(&self) -> u32;
    /// Newline-separated words that are each exactly one token and never merge when
    /// concatenated, if the tokenizer ships such a list: synthetic prompts of exact
    /// length then need no tokenizing (and no vocabulary load) before the run starts.
    fn plain_words(&self) -> Option<&'static str> {
        None
    }
    /// The text of the token that opens every `hash_ids` block of a trace prompt, taking
    /// one of the block's tokens (AIPerf's `block_separation_token_id`: BOS, else EOS),
    /// if the tokenizer has one; `count` must count that text as one token.
    fn block_separator(&self) -> Option<&'static str> {
        None
    }
    /// Whether `count(a + " " + b) == count(a) + count(" " + b)` whenever `a` ends in a
    /// character that is not whitespace: true of a tokenizer whose pieces never span a
    /// space after such a character (tiktoken's patterns split there, and nothing looks
    /// behind). A later turn of a conversation counts its whole history as its input, as
    /// AIPerf counts it; with this, the record thread counts only what the turn adds.
    fn counts_add_at_spaces(&self) -> bool {
        false
    }
}
