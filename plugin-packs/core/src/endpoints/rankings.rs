//! Rerankers: NIM (`/v1/ranking`), Cohere (`/v2/rerank`) and Hugging Face TEI
//! (`/rerank`). Each turn ranks the passages (texts named `passages`) against its query
//! (the first text named `query` or `queries`), as AIPerf's rankings composer writes them.

use aiperf_runtime::dataset::Turn;
use aiperf_runtime::metadata::EndpointMetadata;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::EndpointProtocol;
use aiperf_runtime::record::{ErrorDetails, ParsedResponse, ResponseChunk};

use super::payload::{rankings_query, Field, InputShape};
use super::response::{parse_rankings, RankingsShape};
use super::{model_value, BodyContext, Prepared};

/// What the three rerankers share: a compiled body and the shape of their answer.
#[derive(Debug, Clone)]
struct Reranker {
    prepared: Prepared,
    shape: RankingsShape,
}

impl Reranker {
    fn new(
        ctx: &PluginContext<'_>,
        fields: fn(&BodyContext<'_>, bool) -> Vec<(&'static str, Field)>,
        shape: RankingsShape,
    ) -> Result<Self, PluginError> {
        Ok(Reranker {
            // Rerankers have no output length: a turn's `max_tokens` is not sent.
            prepared: Prepared::new(ctx, fields, false)?,
            shape,
        })
    }

    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) -> Result<(), PluginError> {
        if rankings_query(turn).is_none() {
            return Err(PluginError::Config(
                "rankings need a text named `query` (or `queries`) and texts named `passages` \
                 (the synthetic composer writes them for rankings endpoints)"
                    .into(),
            ));
        }
        if turn.texts_named("passages").next().is_none() {
            tracing::warn!("a rankings request has a query but no passages to rank");
        }
        self.prepared.format_payload(turn, body);
        Ok(())
    }
}

/// NVIDIA NIM: `{"model","query":{"text"},"passages":[{"text"}]}`; answers
/// `{"rankings":[{"index","logit"}]}`.
#[derive(Debug, Clone)]
pub struct NimRankingsEndpoint(Reranker);

fn nim_fields(body: &BodyContext<'_>, _with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    vec![
        ("model", model_value(body)),
        ("query", Field::Input(InputShape::QueryObject)),
        ("passages", Field::Input(InputShape::PassageObjects)),
    ]
}

impl Plugin for NimRankingsEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Reranker::new(ctx, nim_fields, RankingsShape::Nim).map(NimRankingsEndpoint)
    }
}

impl EndpointProtocol for NimRankingsEndpoint {
    fn metadata(&self) -> &EndpointMetadata {
        &self.0.prepared.metadata
    }

    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) -> Result<(), PluginError> {
        self.0.format_payload(turn, body)
    }

    fn request_headers(&self, headers: &mut Vec<(String, String)>) {
        self.0.prepared.request_headers(headers);
    }

    fn parse_response(
        &self,
        chunk: &ResponseChunk,
    ) -> Result<Option<ParsedResponse>, ErrorDetails> {
        parse_rankings(chunk, self.0.shape)
    }
}

/// Cohere: `{"model","query","documents":[...]}`; answers
/// `{"results":[{"index","relevance_score"}]}`.
#[derive(Debug, Clone)]
pub struct CohereRankingsEndpoint(Reranker);

fn cohere_fields(body: &BodyContext<'_>, _with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    vec![
        ("model", model_value(body)),
        ("query", Field::Input(InputShape::Query)),
        ("documents", Field::Input(InputShape::Passages)),
    ]
}

impl Plugin for CohereRankingsEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Reranker::new(ctx, cohere_fields, RankingsShape::Cohere).map(CohereRankingsEndpoint)
    }
}

impl EndpointProtocol for CohereRankingsEndpoint {
    fn metadata(&self) -> &EndpointMetadata {
        &self.0.prepared.metadata
    }

    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) -> Result<(), PluginError> {
        self.0.format_payload(turn, body)
    }

    fn request_headers(&self, headers: &mut Vec<(String, String)>) {
        self.0.prepared.request_headers(headers);
    }

    fn parse_response(
        &self,
        chunk: &ResponseChunk,
    ) -> Result<Option<ParsedResponse>, ErrorDetails> {
        parse_rankings(chunk, self.0.shape)
    }
}

/// Hugging Face TEI: `{"query","texts":[...]}` (the server serves one model, so none is
/// named); answers a bare `[{"index","score"}]`.
#[derive(Debug, Clone)]
pub struct HfTeiRankingsEndpoint(Reranker);

fn tei_fields(_body: &BodyContext<'_>, _with_max_tokens: bool) -> Vec<(&'static str, Field)> {
    vec![
        ("query", Field::Input(InputShape::Query)),
        ("texts", Field::Input(InputShape::Passages)),
    ]
}

impl Plugin for HfTeiRankingsEndpoint {
    fn create(ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Reranker::new(ctx, tei_fields, RankingsShape::Tei).map(HfTeiRankingsEndpoint)
    }
}

impl EndpointProtocol for HfTeiRankingsEndpoint {
    fn metadata(&self) -> &EndpointMetadata {
        &self.0.prepared.metadata
    }

    fn format_payload(&self, turn: &Turn, body: &mut Vec<u8>) -> Result<(), PluginError> {
        self.0.format_payload(turn, body)
    }

    fn request_headers(&self, headers: &mut Vec<(String, String)>) {
        self.0.prepared.request_headers(headers);
    }

    fn parse_response(
        &self,
        chunk: &ResponseChunk,
    ) -> Result<Option<ParsedResponse>, ErrorDetails> {
        parse_rankings(chunk, self.0.shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::test_support::{chunk, shipped};
    use crate::test_config::{config, context};
    use aiperf_runtime::record::ResponseData;

    fn turn() -> Turn {
        Turn {
            texts: vec![
                "what?".into(),
                "p \"1\"".into(),
                "p2".into(),
                "stray".into(),
            ],
            text_names: vec!["query".into(), "passages".into(), "passages".into()],
            max_tokens: Some(7),
            ..Turn::default()
        }
    }

    fn body<E: EndpointProtocol>(e: &E, turn: &Turn) -> Result<String, PluginError> {
        let mut body = Vec::new();
        e.format_payload(turn, &mut body)?;
        Ok(String::from_utf8(body).unwrap())
    }

    fn args() -> Vec<&'static str> {
        vec!["-m", "rr", "--extra-inputs", "truncate:END"]
    }

    #[test]
    fn metadata_is_aiperfs() {
        let cfg = config(&args());
        let nim = NimRankingsEndpoint::create(&context(&cfg, shipped("nim_rankings"))).unwrap();
        let cohere =
            CohereRankingsEndpoint::create(&context(&cfg, shipped("cohere_rankings"))).unwrap();
        let tei =
            HfTeiRankingsEndpoint::create(&context(&cfg, shipped("hf_tei_rankings"))).unwrap();
        let all = [
            (nim.metadata(), "/v1/ranking", "Rankings Metrics"),
            (cohere.metadata(), "/v2/rerank", "Ranking Metrics"),
            (tei.metadata(), "/rerank", "Ranking Metrics"),
        ];
        for (m, path, title) in all {
            assert_eq!(m.endpoint_path.as_deref(), Some(path));
            assert_eq!(m.metrics_title.as_deref(), Some(title));
            assert!(!m.supports_streaming && !m.produces_tokens && m.tokenizes_input);
        }
    }

    #[test]
    fn payloads() {
        let cfg = config(&args());
        let nim = NimRankingsEndpoint::create(&context(&cfg, shipped("nim_rankings"))).unwrap();
        assert_eq!(
            body(&nim, &turn()).unwrap(),
            r#"{"model":"rr","query":{"text":"what?"},"passages":[{"text":"p \"1\""},{"text":"p2"}],"truncate":"END"}"#
        );
        let cohere =
            CohereRankingsEndpoint::create(&context(&cfg, shipped("cohere_rankings"))).unwrap();
        assert_eq!(
            body(&cohere, &turn()).unwrap(),
            r#"{"model":"rr","query":"what?","documents":["p \"1\"","p2"],"truncate":"END"}"#
        );
        let tei =
            HfTeiRankingsEndpoint::create(&context(&cfg, shipped("hf_tei_rankings"))).unwrap();
        assert_eq!(
            body(&tei, &turn()).unwrap(),
            r#"{"query":"what?","texts":["p \"1\"","p2"],"truncate":"END"}"#
        );
        // `queries` is accepted; a turn without a query is refused.
        let mut queries = turn();
        queries.text_names[0] = "queries".into();
        assert!(body(&tei, &queries)
            .unwrap()
            .starts_with(r#"{"query":"what?""#));
        let plain = Turn {
            texts: vec!["x".into()],
            ..Turn::default()
        };
        assert!(matches!(body(&nim, &plain), Err(PluginError::Config(_))));
    }

    #[test]
    fn parses_each_answer_shape() {
        let cfg = config(&args());
        let nim = NimRankingsEndpoint::create(&context(&cfg, shipped("nim_rankings"))).unwrap();
        let cohere =
            CohereRankingsEndpoint::create(&context(&cfg, shipped("cohere_rankings"))).unwrap();
        let tei =
            HfTeiRankingsEndpoint::create(&context(&cfg, shipped("hf_tei_rankings"))).unwrap();
        let rankings = |count| Some(ResponseData::Rankings { count });
        let data = |r: Result<Option<ParsedResponse>, ErrorDetails>| r.unwrap().map(|p| p.data);

        let nim_body = r#"{"rankings":[{"index":1,"logit":2.5},{"index":0,"logit":-1.0}]}"#;
        assert_eq!(data(nim.parse_response(&chunk(1, nim_body))), rankings(2));
        assert_eq!(
            data(nim.parse_response(&chunk(1, r#"{"rankings":[]}"#))),
            None
        );

        let cohere_body = r#"{"id":"x","results":[{"index":0,"relevance_score":0.9},null,5],"meta":{"billed_units":{"search_units":1}}}"#;
        assert_eq!(
            data(cohere.parse_response(&chunk(1, cohere_body))),
            rankings(1)
        );

        // AIPerf 0.13 reads no usage from a rankings answer.
        let with_usage = r#"{"rankings":[{"index":0,"logit":1}],"usage":{"prompt_tokens":9}}"#;
        let parsed = nim.parse_response(&chunk(1, with_usage)).unwrap().unwrap();
        assert_eq!(parsed.usage, None);
        let usage_only = r#"{"results":[],"usage":{"prompt_tokens":9}}"#;
        assert_eq!(cohere.parse_response(&chunk(1, usage_only)), Ok(None));

        let tei_body = r#"[{"index":1,"score":0.99},{"index":0,"score":0.01}]"#;
        assert_eq!(data(tei.parse_response(&chunk(1, tei_body))), rankings(2));
        let tei_results = r#"{"results":[{"index":0,"score":1}]}"#;
        assert_eq!(
            data(tei.parse_response(&chunk(1, tei_results))),
            rankings(1)
        );
        // The NIM shape is not a TEI answer, nor a bare list a NIM one.
        assert_eq!(data(tei.parse_response(&chunk(1, nim_body))), None);
        assert_eq!(data(nim.parse_response(&chunk(1, tei_body))), None);

        let err = tei
            .parse_response(&chunk(
                1,
                r#"{"error":"Input validation error","error_type":"Validation"}"#,
            ))
            .unwrap_err();
        assert_eq!(err.kind, "Validation");
        assert!(cohere.parse_response(&chunk(1, "<html>")).is_err());
    }
}
