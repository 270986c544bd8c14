//! OpenTelemetry export against an in-test OTLP/HTTP receiver, and `traceparent` reaching an MCP
//! server over Streamable HTTP as `_meta.traceparent`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use switchboard::config::model::{AgentLimits, AgentMode};
use switchboard::domain::{ConversationId, RunEvent, RunId, RunStatus, StepKind};
use switchboard::domain::{ToolCall, ToolDefinition};
use switchboard::engine::tools::CallContext;
use switchboard::engine::{self, EventSink, RunSpec, ToolFailure, ToolInvoker, ToolOutput};
use switchboard::llm::{
    Capabilities, ChatModel, ChatRequest, ChatResponse, FinishReason, LlmError, StreamEvent, Usage,
};
use switchboard::mcp::CallOptions;
use switchboard::runs::HubTools;
use switchboard::telemetry::{Telemetry, TelemetryConfig};

use crate::support::{self, McpHttpServer, TestHub};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

// ---------------------------------------------------------------------------------------------
// A minimal OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body.

/// Each export request with its `content-type`.
type Requests = Arc<Mutex<Vec<(Option<String>, ExportTraceServiceRequest)>>>;

#[derive(Clone, Default)]
struct Received {
    requests: Requests,
}

impl Received {
    /// Every span received so far, with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let requests = self.requests.lock().expect("lock");
        let mut spans = Vec::new();
        for (_, request) in requests.iter() {
            for resource_spans in &request.resource_spans {
                let service = resource_spans
                    .resource
                    .as_ref()
                    .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                    .and_then(|kv| kv.value.as_ref()?.value.clone())
                    .map_or_else(String::new, |v| match v {
                        AnyValue::StringValue(s) => s,
                        other => format!("{other:?}"),
                    });
                for scope in &resource_spans.scope_spans {
                    spans.extend(scope.spans.iter().map(|s| (service.clone(), s.clone())));
                }
            }
        }
        spans
    }

    fn content_types(&self) -> Vec<Option<String>> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .map(|(ct, _)| ct.clone())
            .collect()
    }
}

async fn traces(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> impl axum::response::IntoResponse {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            received
                .requests
                .lock()
                .expect("lock")
                .push((content_type, request));
            let response = ExportTraceServiceResponse::default().encode_to_vec();
            (
                axum::http::StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                response,
            )
        }
        Err(_) => (
            axum::http::StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain")],
            b"bad protobuf".to_vec(),
        ),
    }
}

/// Start the receiver on port 0; returns its base URL (what `OTEL_EXPORTER_OTLP_ENDPOINT` holds).
async fn start_receiver() -> (String, Received, CancellationToken) {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(received.clone());
    let stop = CancellationToken::new();
    let base = support::serve_local(app, &stop).await;
    (base, received, stop)
}

// ---------------------------------------------------------------------------------------------
// Fakes (the minimal parts of `src/engine/tests.rs`).

struct ScriptedModel {
    replies: Mutex<VecDeque<ChatResponse>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl ChatModel for ScriptedModel {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            streaming: true,
            tools: true,
            parallel_tool_calls: true,
        }
    }

    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>> {
        self.requests.lock().expect("lock").push(request);
        let reply = self.replies.lock().expect("lock").pop_front();
        async move {
            reply.ok_or_else(|| LlmError::ProviderDown {
                model: "fake".into(),
                message: "script exhausted".into(),
            })
        }
        .boxed()
    }

    fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> BoxStream<'static, Result<StreamEvent, LlmError>> {
        self.requests.lock().expect("lock").push(request);
        let item = match self.replies.lock().expect("lock").pop_front() {
            Some(reply) => Ok(StreamEvent::Completed(reply)),
            None => Err(LlmError::ProviderDown {
                model: "fake".into(),
                message: "script exhausted".into(),
            }),
        };
        Box::pin(futures::stream::iter(vec![item]))
    }
}

/// `echo` answers after 5 ms; `broken` fails as an unreachable server would. Records the
/// `traceparent` each call was given.
#[derive(Default)]
struct FakeTools {
    traceparents: Mutex<Vec<(String, Option<String>)>>,
}

impl ToolInvoker for FakeTools {
    fn definitions(&self) -> Vec<ToolDefinition> {
        ["echo", "broken"]
            .into_iter()
            .map(|name| ToolDefinition {
                name: name.to_owned(),
                description: String::new(),
                parameters: json!({"type": "object"}),
                strict: false,
            })
            .collect()
    }

    fn server_of(&self, name: &str) -> Option<String> {
        ["echo", "broken"]
            .contains(&name)
            .then(|| "fake".to_owned())
    }

    fn validate(&self, _name: &str, _arguments: &Value) -> Result<(), ToolFailure> {
        Ok(())
    }

    fn invoke(
        &self,
        name: &str,
        arguments: Value,
        context: CallContext,
    ) -> BoxFuture<'static, Result<ToolOutput, ToolFailure>> {
        let traceparent = context.traceparent;
        self.traceparents
            .lock()
            .expect("lock")
            .push((name.to_owned(), traceparent));
        let name = name.to_owned();
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if name == "broken" {
                return Err(ToolFailure::Unavailable {
                    message: "connection refused".to_owned(),
                });
            }
            Ok(ToolOutput {
                text: arguments.to_string(),
                raw: json!({"content": [{"type": "text", "text": arguments.to_string()}]}),
                is_error: false,
                server: "fake".to_owned(),
            })
        }
        .boxed()
    }
}

/// Feeds the exporter exactly as the run service's sink does, and keeps the events.
struct TelemetrySink {
    telemetry: Telemetry,
    events: Mutex<Vec<RunEvent>>,
}

impl EventSink for TelemetrySink {
    fn emit(&self, event: RunEvent) {
        self.telemetry.record(&event);
        self.events.lock().expect("lock").push(event);
    }
}

fn usage(input: u64, output: u64) -> Option<Usage> {
    Some(Usage {
        input_tokens: input,
        output_tokens: output,
    })
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()
}

fn attr_str<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key)? {
        AnyValue::StringValue(s) => Some(s),
        _ => None,
    }
}

fn attr_int(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key)? {
        AnyValue::IntValue(i) => Some(*i),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ms_to_nanos(ms: i64) -> u64 {
    u64::try_from(ms).expect("positive") * 1_000_000
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_run_is_exported_as_one_trace_with_genai_spans() {
    let (base, received, stop) = start_receiver().await;
    let mut config = TelemetryConfig::new(&base);
    config.service_name = "switchboard-test".to_owned();
    let telemetry = Telemetry::start(&config).expect("exporter starts");

    let model = Arc::new(ScriptedModel {
        replies: Mutex::new(VecDeque::from([
            ChatResponse {
                content: String::new(),
                tool_calls: vec![
                    ToolCall {
                        id: "a".into(),
                        name: "echo".into(),
                        arguments: r#"{"x":1}"#.into(),
                    },
                    ToolCall {
                        id: "b".into(),
                        name: "broken".into(),
                        arguments: "{}".into(),
                    },
                ],
                finish_reason: FinishReason::ToolCalls,
                usage: usage(10, 5),
            },
            ChatResponse {
                content: "done".into(),
                tool_calls: Vec::new(),
                finish_reason: FinishReason::Stop,
                usage: usage(20, 2),
            },
        ])),
        requests: Mutex::new(Vec::new()),
    });
    let tools = Arc::new(FakeTools::default());
    let run_id = RunId::new();
    let spec = RunSpec {
        run_id,
        conversation_id: Some(ConversationId::new()),
        agent: Some("helper".to_owned()),
        model_name: "fake-model".to_owned(),
        work: switchboard::engine::Work::Chat(model.clone()),
        tools: tools.clone(),
        system_prompt: None,
        history: Vec::new(),
        user_message: "go".to_owned(),
        mode: AgentMode::React,
        limits: AgentLimits::default(),
        cancel: CancellationToken::new(),
        trace_id: Some(TRACE_ID.into()),
        temperature: None,
        user: None,
        max_argument_bytes: switchboard::config::model::DEFAULT_MAX_ARGUMENT_BYTES,
        approver: None,
        checkpoints: None,
    };
    let sink = Arc::new(TelemetrySink {
        telemetry: telemetry.clone(),
        events: Mutex::new(Vec::new()),
    });
    let outcome = engine::execute(spec, sink.clone()).await;
    // `broken` failed and was not retried: the run answered, but `partial`.
    assert_eq!(outcome.status, RunStatus::Partial, "{outcome:?}");
    assert_eq!(
        telemetry.open_runs(),
        0,
        "the run's entry is removed when it finishes"
    );
    telemetry.flush().await.expect("flush");

    let events = sink.events.lock().expect("lock").clone();
    let spans = received.spans();
    assert!(
        received
            .content_types()
            .iter()
            .all(|ct| ct.as_deref() == Some("application/x-protobuf"))
    );
    assert!(
        spans
            .iter()
            .all(|(service, _)| service == "switchboard-test"),
        "service.name: {spans:?}"
    );
    let spans: Vec<Span> = spans.into_iter().map(|(_, s)| s).collect();
    assert!(
        spans.iter().all(|s| hex(&s.trace_id) == TRACE_ID),
        "one trace, the run's trace id"
    );

    // The root: the run.
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "{spans:#?}");
    let root = roots[0];
    assert_eq!(root.name, "invoke_agent helper");
    assert_eq!(
        attr_str(root, "gen_ai.operation.name"),
        Some("invoke_agent")
    );
    assert_eq!(attr_str(root, "gen_ai.agent.name"), Some("helper"));
    assert_eq!(attr_str(root, "gen_ai.request.model"), Some("fake-model"));
    assert_eq!(attr_int(root, "gen_ai.usage.input_tokens"), Some(30));
    assert_eq!(attr_int(root, "gen_ai.usage.output_tokens"), Some(7));
    assert_eq!(
        attr_str(root, "switchboard.run.id"),
        Some(run_id.to_string().as_str())
    );
    assert_eq!(attr_str(root, "switchboard.run.status"), Some("partial"));
    let (run_start, run_end) = events.iter().fold((0, 0), |(start, end), e| match e {
        RunEvent::RunStarted { at, .. } => (*at, end),
        RunEvent::RunFinished { at, .. } => (start, *at),
        _ => (start, end),
    });
    assert_eq!(root.start_time_unix_nano, ms_to_nanos(run_start));
    assert_eq!(root.end_time_unix_nano, ms_to_nanos(run_end));
    assert!(
        root.end_time_unix_nano > root.start_time_unix_nano,
        "the tools took 5 ms"
    );

    // One child per step, with the step's times and kind-specific attributes.
    let by_id: HashMap<String, &Span> = spans.iter().map(|s| (hex(&s.span_id), s)).collect();
    let mut kinds = Vec::new();
    for event in &events {
        let RunEvent::StepStarted {
            step,
            kind,
            name,
            at,
            ..
        } = event
        else {
            continue;
        };
        kinds.push(*kind);
        let span = by_id
            .get(&format!("{:016x}", u64::from(*step) + 1))
            .unwrap_or_else(|| panic!("no span for step {step}"));
        assert_eq!(
            span.parent_span_id, root.span_id,
            "step {step} is a child of the run"
        );
        assert_eq!(span.start_time_unix_nano, ms_to_nanos(*at));
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        assert!(
            span.start_time_unix_nano >= root.start_time_unix_nano
                && span.end_time_unix_nano <= root.end_time_unix_nano
        );
        assert_eq!(
            attr_int(span, "switchboard.step.index"),
            Some(i64::from(*step))
        );
        match (kind, name.as_str()) {
            (StepKind::Plan, _) => {
                assert_eq!(span.name, "chat fake-model");
                assert_eq!(attr_str(span, "gen_ai.operation.name"), Some("chat"));
                assert_eq!(attr_str(span, "gen_ai.request.model"), Some("fake-model"));
                assert!(attr_int(span, "gen_ai.usage.input_tokens").is_some_and(|n| n > 0));
                assert!(attr_int(span, "gen_ai.usage.output_tokens").is_some_and(|n| n > 0));
            }
            (StepKind::Act, tool) => {
                assert_eq!(span.name, format!("execute_tool {tool}"));
                assert_eq!(
                    attr_str(span, "gen_ai.operation.name"),
                    Some("execute_tool")
                );
                assert_eq!(attr_str(span, "gen_ai.tool.name"), Some(tool));
                assert_eq!(attr_str(span, "switchboard.mcp.server"), Some("fake"));
                assert!(
                    span.end_time_unix_nano > span.start_time_unix_nano,
                    "the tool slept"
                );
                let status = span.status.as_ref().map(|s| (s.code, s.message.clone()));
                if tool == "broken" {
                    let (code, message) = status.expect("a status");
                    assert_eq!(code, StatusCode::Error as i32);
                    assert!(message.contains("connection refused"), "{message}");
                    assert_eq!(attr_str(span, "error.type"), Some("failed"));
                } else {
                    assert_ne!(status.map(|s| s.0), Some(StatusCode::Error as i32));
                }
            }
            (StepKind::Observe, _) => assert_eq!(span.name, "observe"),
            (StepKind::Answer, _) => assert_eq!(span.name, "answer"),
            (StepKind::Sample, _) => panic!("no server of this run asks for sampling"),
        }
    }
    assert_eq!(
        kinds,
        [
            StepKind::Plan,
            StepKind::Act,
            StepKind::Act,
            StepKind::Observe,
            StepKind::Plan,
            StepKind::Answer
        ]
    );
    assert_eq!(
        spans.len(),
        kinds.len() + 1,
        "one span per step plus the run"
    );

    // What providers were told is the parent in the trace: the plan step's span.
    let first = model.requests.lock().expect("lock")[0].traceparent.clone();
    assert_eq!(first, Some(format!("00-{TRACE_ID}-0000000000000001-01")));
    // And each MCP call's parent is its own act step's span, as exported.
    let calls = tools.traceparents.lock().expect("lock").clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for (tool, traceparent) in calls {
        let act = events
            .iter()
            .find_map(|e| match e {
                RunEvent::StepStarted { step, name, .. } if *name == tool => Some(*step),
                _ => None,
            })
            .expect("an act step per call");
        let span_id = format!("{:016x}", u64::from(act) + 1);
        assert!(by_id.contains_key(&span_id), "act {act} was exported");
        assert_eq!(traceparent, Some(format!("00-{TRACE_ID}-{span_id}-01")));
    }

    telemetry.shutdown().await.expect("shutdown");
    stop.cancel();
}

#[tokio::test]
async fn an_unreachable_collector_never_blocks_a_run() {
    let mut config = TelemetryConfig::new("http://127.0.0.1:9");
    config.timeout = Duration::from_millis(300);
    let telemetry = Telemetry::start(&config).expect("exporter starts");
    let started = std::time::Instant::now();
    let run_id = RunId::new();
    for event in [
        RunEvent::RunStarted {
            run_id,
            conversation_id: Some(ConversationId::new()),
            agent: None,
            model: "m".into(),
            user_message: "hi".into(),
            trace_id: None,
            user: None,
            at: 1,
        },
        RunEvent::RunFinished {
            run_id,
            status: RunStatus::Failed,
            answer: None,
            error: Some("x".into()),
            usage: Default::default(),
            at: 2,
        },
    ] {
        telemetry.record(&event);
    }
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "recording is queueing, not sending"
    );
    assert!(
        telemetry.flush().await.is_err(),
        "the failed export is reported by flush"
    );
    let _ = telemetry.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// `traceparent` to MCP servers: a Streamable HTTP server whose tool returns what it received.

#[derive(Clone)]
struct Probe;

#[tool_router]
impl Probe {
    #[tool(description = "Return the request's `_meta.traceparent`, or `none`.")]
    fn whoami(&self, ctx: RequestContext<RoleServer>) -> String {
        ctx.meta.get_traceparent().unwrap_or("none").to_owned()
    }
}

#[tool_handler]
impl ServerHandler for Probe {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn text_of(value: &Value) -> String {
    value
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_carry_traceparent_in_meta() {
    let probe = McpHttpServer::start(Probe).await;
    let url = &probe.url;
    let hub = TestHub::start(
        &format!("mcpServers:\n  probe:\n    url: {url}\n    trusted: true\n"),
        Duration::from_secs(10),
    )
    .await;
    let traceparent = format!("00-{TRACE_ID}-00000000000000a1-01");

    let plain = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "probe__whoami",
            json!({}),
            CallOptions::default(),
        )
        .await
        .expect("call");
    assert_eq!(
        text_of(&serde_json::to_value(&plain.result).expect("json")),
        "none"
    );
    let options = CallOptions {
        traceparent: Some(traceparent.clone()),
        ..CallOptions::default()
    };
    let traced = hub
        .hub
        .invoke(
            &switchboard::access::Caller::local(),
            "probe__whoami",
            json!({}),
            options,
        )
        .await
        .expect("call");
    assert_eq!(
        text_of(&serde_json::to_value(&traced.result).expect("json")),
        traceparent
    );

    // The run's tools (what the engine calls) pass on the one they are given.
    let tools = HubTools::new(
        hub.hub.clone(),
        switchboard::access::Caller::local(),
        &switchboard::config::ToolGlobs::all(),
    );
    let (updates, _ticks) = mpsc::channel(4);
    let context = CallContext {
        timeout: Duration::from_secs(5),
        updates,
        traceparent: Some(traceparent.clone()),
        approved: false,
    };
    let output = tools
        .invoke("probe__whoami", json!({}), context)
        .await
        .expect("invoke");
    assert_eq!(output.text, traceparent);
    assert!(traceparent.starts_with(&format!("00-{TRACE_ID}-")) && traceparent.ends_with("-01"));

    hub.hub.mcp().shutdown().await;
    drop(probe);
}
