//! The record thread: turns raw request records into parsed records and metrics, off
//! the measuring threads.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;

use crate::config::ProfileConfig;
use crate::export::RecordWriter;
use crate::plugin::{DispatchEnum, PluginContext, PluginError, PluginKind, PluginSet};
use crate::protocols::{
    EndpointProtocol, RecordProcessorProtocol, ResultsProcessorProtocol, TokenizerProtocol,
};
use crate::record::{
    ErrorDetails, Outcome, ParsedRecord, ParsedResponse, Phase, RequestRecord, ResponseData,
    RunClock,
};
use crate::results::{ErrorCount, MetricRecord, MetricResult};

/// What the record thread hands back when every worker is done.
pub(crate) struct PipelineOutput {
    pub metrics: Vec<MetricResult>,
    pub error_summary: Vec<ErrorCount>,
    /// Response events and the socket reads that carried them, over all requests.
    pub events: u64,
    pub reads: u64,
}

pub(crate) struct PipelineSettings {
    pub config: ProfileConfig,
    pub clock: RunClock,
    pub records_path: PathBuf,
    /// Session id of each dataset entry, for the records' `conversation_id`.
    pub conversation_ids: Vec<String>,
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
    rx: Receiver<RequestRecord>,
) -> Result<PipelineOutput, String> {
    let config = &settings.config;
    let endpoint: P::Endpoint = create_named(&config.endpoint_type, config)?;
    let tokenizer: P::Tokenizer = create_named(tokenizer_plugin::<P>(config)?, config)?;
    let mut record_processors: Vec<P::RecordProcessor> = create_all(config)?;
    let mut results_processors: Vec<P::ResultsProcessor> = create_all(config)?;
    let mut writer = RecordWriter::create(&settings.records_path)
        .map_err(|e| format!("cannot write {}: {e}", settings.records_path.display()))?;
    writer.set_has_warmup(config.warmup_request_count > 0);
    writer.set_conversation_ids(settings.conversation_ids);

    let mut errors: Vec<ErrorCount> = Vec::new();
    let mut metrics = MetricRecord::default();
    let (mut events, mut reads) = (0u64, 0u64);
    for raw in rx {
        events += raw.responses.len() as u64;
        reads += u64::from(raw.reads);
        let record = parse_record(&endpoint, &tokenizer, raw, config.use_server_token_count);
        metrics.clear();
        for processor in record_processors.iter_mut() {
            processor.process_record(&record, &mut metrics);
        }
        if let Err(e) = writer.write(&settings.clock, &record, &metrics) {
            return Err(format!(
                "cannot write {}: {e}",
                settings.records_path.display()
            ));
        }
        if record.raw.phase != Some(Phase::Profiling) {
            continue;
        }
        if let Some(err) = &record.error {
            match errors.iter_mut().find(|e| &e.error_details == err) {
                Some(entry) => entry.count += 1,
                None => errors.push(ErrorCount {
                    error_details: err.clone(),
                    count: 1,
                }),
            }
        }
        for processor in results_processors.iter_mut() {
            processor.process_result(&record, &metrics);
        }
    }
    writer
        .finish()
        .map_err(|e| format!("cannot write {}: {e}", settings.records_path.display()))?;

    let mut summary = Vec::new();
    for processor in results_processors.iter_mut() {
        processor.summarize(&mut summary);
    }
    errors.sort_by_key(|e| std::cmp::Reverse(e.count));
    Ok(PipelineOutput {
        metrics: summary,
        error_summary: errors,
        events,
        reads,
    })
}

/// Reads the responses with the endpoint, settles the outcome and counts tokens.
pub(crate) fn parse_record<E: EndpointProtocol, T: TokenizerProtocol>(
    endpoint: &E,
    tokenizer: &T,
    raw: RequestRecord,
    use_server_token_count: bool,
) -> ParsedRecord {
    let mut responses: Vec<ParsedResponse> = Vec::with_capacity(raw.responses.len());
    let mut inband: Option<ErrorDetails> = None;
    for chunk in &raw.responses {
        match endpoint.parse_response(chunk) {
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
        (None, _, None) if !responses.iter().any(|r| r.data.is_content()) => (
            Outcome::EmptyOutput,
            Some(ErrorDetails::new(
                raw.status,
                "EmptyOutput",
                "the response carried no content (no text, reasoning or data)",
            )),
        ),
        (None, _, None) => (Outcome::Success, None),
    };

    let mut output = String::new();
    let mut reasoning = String::new();
    let mut usage = None;
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
        (raw.input_tokens.map(u64::from), count(&output), reasoning)
    };
    ParsedRecord {
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
