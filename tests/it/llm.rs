//! The provider compliance suite: every provider client passes the same checks against the
//! scripted fake server speaking that provider's real HTTP protocol.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use switchboard::config::model::{ModelConfig, ProviderKind, RetryPolicy, Secret};
use switchboard::domain::{ChatMessage, ToolCall, ToolDefinition};
use switchboard::llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, ModelRegistry, StreamEvent,
};
use switchboard_fake_llm::{FakeLlm, FakeToolCall, Reply, Usage as FakeUsage};

const SENTINEL_KEY: &str = "sk-SENTINEL-7f3a9c1e5b2d4680";

#[derive(Clone, Copy, Debug)]
enum Provider {
    OpenAi,
    Anthropic,
}

fn model_config(fake: &FakeLlm, provider: Provider) -> ModelConfig {
    let (kind, base) = match provider {
        Provider::OpenAi => (ProviderKind::OpenAi, fake.openai_base_url()),
        Provider::Anthropic => (ProviderKind::Anthropic, fake.anthropic_base_url()),
    };
    ModelConfig {
        name: "m".to_owned(),
        provider: kind,
        base_url: url::Url::parse(&base).expect("fake url"),
        api_key: Some(Secret::new(SENTINEL_KEY)),
        model_name: "fake-model-1".to_owned(),
        max_tokens: Some(256),
        tags: vec!["test".to_owned()],
        timeout: Duration::from_secs(10),
        first_token_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            deadline: Duration::from_secs(10),
        },
        headers: BTreeMap::new(),
        api_version: None,
        healthcheck: None,
        default: true,
        enabled: true,
    }
}

fn client_for(config: ModelConfig) -> Arc<dyn ChatModel> {
    let registry = ModelRegistry::default();
    let mut models = BTreeMap::new();
    models.insert(config.name.clone(), config);
    registry.apply(&models, &reqwest::Client::new());
    registry
        .get(None)
        .expect("model registered")
        .client()
        .expect("model available")
}

fn request_with_tools() -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::system("be brief"),
            ChatMessage::user("what is 2+2 and the time?"),
        ],
        tools: vec![
            ToolDefinition {
                name: "calc__evaluate".to_owned(),
                description: "Evaluate".to_owned(),
                parameters: json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
                strict: false,
            },
            ToolDefinition {
                name: "clock__now".to_owned(),
                description: "Now".to_owned(),
                parameters: json!({"type": "object", "properties": {}}),
                strict: false,
            },
        ],
        ..ChatRequest::default()
    }
}

async fn collect(
    client: &Arc<dyn ChatModel>,
    request: ChatRequest,
) -> (Vec<StreamEvent>, Result<(), LlmError>) {
    let mut stream = client.chat_stream(request);
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(err) => return (events, Err(err)),
        }
    }
    (events, Ok(()))
}

fn completed(events: &[StreamEvent]) -> &switchboard::llm::ChatResponse {
    match events.last() {
        Some(StreamEvent::Completed(response)) => response,
        other => panic!("stream did not complete: last event {other:?}"),
    }
}

fn calls() -> Vec<FakeToolCall> {
    vec![
        FakeToolCall {
            id: "call_a".to_owned(),
            name: "calc__evaluate".to_owned(),
            arguments: json!({"expression": "2+2", "note": "ünïcode \"quoted\""}),
        },
        FakeToolCall {
            id: "call_b".to_owned(),
            name: "clock__now".to_owned(),
            arguments: json!({}),
        },
    ]
}

fn assert_calls(got: &[ToolCall]) {
    assert_eq!(got.len(), 2, "{got:?}");
    for (call, expected) in got.iter().zip(calls()) {
        assert_eq!(call.id, expected.id);
        assert_eq!(call.name, expected.name);
        let parsed: serde_json::Value =
            serde_json::from_str(&call.arguments).expect("arguments are JSON");
        assert_eq!(parsed, expected.arguments);
    }
}

async fn plain_answer(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Text {
        text: "hello there".to_owned(),
        usage: Some(FakeUsage {
            input_tokens: 11,
            output_tokens: 3,
        }),
    });
    let client = client_for(model_config(&fake, provider));
    let response = client.chat(request_with_tools()).await.expect("answer");
    assert_eq!(response.content, "hello there");
    assert_eq!(response.finish_reason, FinishReason::Stop);
    let usage = response.usage.expect("usage recorded");
    assert_eq!((usage.input_tokens, usage.output_tokens), (11, 3));
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].body["model"], "fake-model-1");
    assert_eq!(recorded[0].body["tools"].as_array().map(Vec::len), Some(2));
    match provider {
        Provider::OpenAi => assert_eq!(recorded[0].body["messages"][0]["role"], "system"),
        Provider::Anthropic => assert_eq!(recorded[0].body["system"], "be brief"),
    }
}

async fn streamed_answer(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Text {
        text: "streamed words arrive one by one".to_owned(),
        usage: Some(FakeUsage {
            input_tokens: 5,
            output_tokens: 6,
        }),
    });
    let client = client_for(model_config(&fake, provider));
    let (events, outcome) = collect(&client, request_with_tools()).await;
    outcome.expect("stream ok");
    let deltas: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        events
            .iter()
            .filter(|e| matches!(e, StreamEvent::TextDelta(_)))
            .count()
            > 1,
        "text should arrive in several deltas"
    );
    assert_eq!(deltas, "streamed words arrive one by one");
    let done = completed(&events);
    assert_eq!(done.content, deltas);
    assert_eq!(done.usage.map(|u| u.output_tokens), Some(6));
    assert_eq!(fake.requests()[0].body["stream"], true);
}

async fn tool_calls(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::ToolCalls {
        calls: calls()[..1].to_vec(),
        text: None,
    });
    fake.push(Reply::ToolCalls {
        calls: calls(),
        text: None,
    });
    fake.push(Reply::ToolCalls {
        calls: calls(),
        text: Some("let me check".to_owned()),
    });
    let client = client_for(model_config(&fake, provider));
    let single = client
        .chat(request_with_tools())
        .await
        .expect("single call");
    assert_eq!(single.tool_calls.len(), 1);
    assert_eq!(single.finish_reason, FinishReason::ToolCalls);
    let parallel = client
        .chat(request_with_tools())
        .await
        .expect("parallel calls");
    assert_calls(&parallel.tool_calls);
    let (events, outcome) = collect(&client, request_with_tools()).await;
    outcome.expect("stream ok");
    let started = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallStarted { .. }))
        .count();
    let fragments = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallDelta { .. }))
        .count();
    assert_eq!(started, 2);
    assert!(fragments >= 2, "arguments should arrive in fragments");
    let done = completed(&events);
    assert_calls(&done.tool_calls);
    assert_eq!(done.content, "let me check");
    assert_eq!(done.finish_reason, FinishReason::ToolCalls);
}

async fn tool_results_round_trip(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Text {
        text: "4".to_owned(),
        usage: None,
    });
    let client = client_for(model_config(&fake, provider));
    let mut request = request_with_tools();
    let made = calls();
    request.messages.push(ChatMessage::assistant(
        "",
        made.iter()
            .map(|c| ToolCall {
                id: c.id.clone(),
                name: c.name.clone(),
                arguments: c.arguments.to_string(),
            })
            .collect(),
    ));
    request
        .messages
        .push(ChatMessage::tool_result("call_a", "4", false));
    request
        .messages
        .push(ChatMessage::tool_result("call_b", "clock down", true));
    client.chat(request).await.expect("answer");
    let body = &fake.requests()[0].body;
    match provider {
        Provider::OpenAi => {
            let messages = body["messages"].as_array().expect("messages");
            assert_eq!(messages[2]["tool_calls"][1]["id"], "call_b");
            assert_eq!(
                messages[3],
                json!({"role": "tool", "tool_call_id": "call_a", "content": "4"})
            );
        }
        Provider::Anthropic => {
            let messages = body["messages"].as_array().expect("messages");
            assert_eq!(messages[1]["content"][0]["type"], "tool_use");
            assert_eq!(messages[2]["content"][1]["tool_use_id"], "call_b");
            assert_eq!(messages[2]["content"][1]["is_error"], true);
        }
    }
}

async fn retries_honour_retry_after(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Status {
        status: 429,
        retry_after: Some("1".to_owned()),
        body: json!({}),
    });
    fake.push(Reply::Status {
        status: 500,
        retry_after: None,
        body: json!({}),
    });
    fake.push(Reply::Text {
        text: "finally".to_owned(),
        usage: None,
    });
    let client = client_for(model_config(&fake, provider));
    let started = Instant::now();
    let response = client
        .chat(request_with_tools())
        .await
        .expect("succeeds after retries");
    assert_eq!(response.content, "finally");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 must be honoured, took {:?}",
        started.elapsed()
    );
    assert_eq!(fake.requests().len(), 3);
    // Streaming retries too, before any output.
    fake.push(Reply::Status {
        status: 503,
        retry_after: None,
        body: json!({}),
    });
    fake.push(Reply::Text {
        text: "ok".to_owned(),
        usage: None,
    });
    let (events, outcome) = collect(&client, request_with_tools()).await;
    outcome.expect("stream ok after a retry");
    assert_eq!(completed(&events).content, "ok");
}

async fn no_retry_on_400(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Status {
        status: 400,
        retry_after: None,
        body: json!({}),
    });
    fake.push(Reply::Text {
        text: "must not be reached".to_owned(),
        usage: None,
    });
    let client = client_for(model_config(&fake, provider));
    let err = client
        .chat(request_with_tools())
        .await
        .expect_err("400 fails");
    assert!(
        matches!(err, LlmError::BadRequest { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 1, "a 400 must not be retried");
}

async fn retries_give_up(provider: Provider) {
    let fake = FakeLlm::start().await;
    for _ in 0..3 {
        fake.push(Reply::Status {
            status: 500,
            retry_after: None,
            body: json!({}),
        });
    }
    let client = client_for(model_config(&fake, provider));
    let err = client
        .chat(request_with_tools())
        .await
        .expect_err("gives up");
    assert!(matches!(err, LlmError::ProviderDown { .. }), "{err:?}");
    assert_eq!(fake.requests().len(), 3, "max_attempts is 3");
}

async fn first_token_timeout(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::SlowFirstToken {
        delay: Duration::from_secs(3),
        then: Box::new(Reply::Text {
            text: "late".to_owned(),
            usage: None,
        }),
    });
    let mut config = model_config(&fake, provider);
    config.first_token_timeout = Duration::from_millis(300);
    config.retry.max_attempts = 1;
    let client = client_for(config);
    let started = Instant::now();
    let (_, outcome) = collect(&client, request_with_tools()).await;
    let err = outcome.expect_err("times out");
    assert!(
        matches!(
            err,
            LlmError::Timeout {
                what: "first token",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

async fn request_timeout(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::SlowFirstToken {
        delay: Duration::from_secs(3),
        then: Box::new(Reply::Text {
            text: "late".to_owned(),
            usage: None,
        }),
    });
    let mut config = model_config(&fake, provider);
    config.timeout = Duration::from_millis(400);
    config.first_token_timeout = Duration::from_millis(400);
    config.retry.max_attempts = 1;
    let client = client_for(config);
    let started = Instant::now();
    let err = client
        .chat(request_with_tools())
        .await
        .expect_err("times out");
    assert!(matches!(err, LlmError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

async fn malformed_stream(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::MalformedChunk);
    fake.push(Reply::MalformedChunk);
    let client = client_for(model_config(&fake, provider));
    let (_, outcome) = collect(&client, request_with_tools()).await;
    assert!(
        matches!(outcome, Err(LlmError::Malformed { .. })),
        "{outcome:?}"
    );
    let err = client
        .chat(request_with_tools())
        .await
        .expect_err("malformed JSON body");
    assert!(matches!(err, LlmError::Malformed { .. }), "{err:?}");
}

async fn disconnect_mid_stream(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::DisconnectMidStream);
    fake.push(Reply::Text {
        text: "must not be used".to_owned(),
        usage: None,
    });
    let client = client_for(model_config(&fake, provider));
    let (events, outcome) = collect(&client, request_with_tools()).await;
    assert!(
        !events.is_empty(),
        "some output arrived before the disconnect"
    );
    assert!(
        matches!(outcome, Err(LlmError::Interrupted { .. })),
        "{outcome:?}"
    );
    assert_eq!(
        fake.requests().len(),
        1,
        "output was emitted: no silent retry"
    );
}

/// A stream that ends cleanly without its end marker (`[DONE]`, `message_stop`) is a failed
/// call, never an (empty or partial) answer: retried when nothing was emitted yet, reported as
/// interrupted when some was.
async fn truncated_stream(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::EmptyStream);
    fake.push(Reply::Text {
        text: "the retry's answer".to_owned(),
        usage: None,
    });
    let client = client_for(model_config(&fake, provider));
    let (events, outcome) = collect(&client, request_with_tools()).await;
    outcome.expect("the empty stream is retried and the retry answers");
    assert_eq!(completed(&events).content, "the retry's answer");
    assert_eq!(fake.requests().len(), 2, "one retry after the empty stream");

    // Nothing but empty streams: the call fails, saying why.
    for _ in 0..3 {
        fake.push(Reply::EmptyStream);
    }
    let (events, outcome) = collect(&client, request_with_tools()).await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, StreamEvent::Completed(_))),
        "{events:?}"
    );
    let err = outcome.expect_err("a stream without its end marker is not an answer");
    assert!(
        err.to_string()
            .contains("the stream ended before the answer was complete"),
        "{err}"
    );

    // Output already emitted: no retry, an interruption.
    let before = fake.requests().len();
    fake.push(Reply::TruncatedStream);
    let (events, outcome) = collect(&client, request_with_tools()).await;
    assert!(!events.is_empty(), "two deltas arrived");
    assert!(
        matches!(outcome, Err(LlmError::Interrupted { .. })),
        "{outcome:?}"
    );
    assert_eq!(fake.requests().len(), before + 1, "no silent retry");
}

async fn huge_line_is_bounded(provider: Provider) {
    let fake = FakeLlm::start().await;
    fake.push(Reply::HugeLine {
        bytes: 10 * 1024 * 1024,
    });
    let client = client_for(model_config(&fake, provider));
    let (_, outcome) = collect(&client, request_with_tools()).await;
    assert!(
        matches!(
            outcome,
            Err(LlmError::Malformed { .. } | LlmError::Interrupted { .. })
        ),
        "{outcome:?}"
    );
}

async fn key_never_leaks(provider: Provider) {
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer_logs = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || LogWriter(writer_logs.clone()))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let fake = FakeLlm::start().await;
    let echo = json!({"error": {"message": format!("Incorrect API key provided: {SENTINEL_KEY}"), "type": "invalid_request_error"}});
    fake.push(Reply::Status {
        status: 401,
        retry_after: None,
        body: echo.clone(),
    });
    fake.push(Reply::Status {
        status: 400,
        retry_after: None,
        body: echo.clone(),
    });
    fake.push(Reply::Status {
        status: 500,
        retry_after: None,
        body: echo.clone(),
    });
    fake.push(Reply::Status {
        status: 500,
        retry_after: None,
        body: echo.clone(),
    });
    fake.push(Reply::Status {
        status: 500,
        retry_after: None,
        body: echo,
    });
    let config = model_config(&fake, provider);
    let debug = format!("{config:?}");
    let client = client_for(config);
    let mut errors = Vec::new();
    for _ in 0..3 {
        if let Err(err) = client.chat(request_with_tools()).await {
            errors.push(format!("{err} {err:?}"));
        }
    }
    assert!(errors.iter().any(|e| e.contains("API key")), "{errors:?}");
    let logs = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
    for (what, text) in [
        ("errors", errors.join("\n")),
        ("logs", logs),
        ("config debug", debug),
    ] {
        assert!(
            !text.contains(SENTINEL_KEY),
            "the key leaked into {what}: {text}"
        );
        assert!(
            !text.contains("SENTINEL-7f3a"),
            "part of the key leaked into {what}: {text}"
        );
    }
    // It was sent where it belongs.
    let headers = &fake.requests()[0].headers;
    let sent = headers.iter().any(|(name, value)| {
        (name == "authorization" && value == &format!("Bearer {SENTINEL_KEY}"))
            || (name == "x-api-key" && value == SENTINEL_KEY)
    });
    assert!(sent, "the key must reach the provider: {headers:?}");
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

macro_rules! compliance {
    ($($check:ident),* $(,)?) => {
        mod openai { $( #[tokio::test] async fn $check() { super::$check(super::Provider::OpenAi).await } )* }
        mod anthropic { $( #[tokio::test] async fn $check() { super::$check(super::Provider::Anthropic).await } )* }
    };
}

compliance!(
    plain_answer,
    streamed_answer,
    tool_calls,
    tool_results_round_trip,
    retries_honour_retry_after,
    no_retry_on_400,
    retries_give_up,
    first_token_timeout,
    request_timeout,
    malformed_stream,
    disconnect_mid_stream,
    truncated_stream,
    huge_line_is_bounded,
    key_never_leaks,
);

#[tokio::test]
async fn a_hosted_model_without_a_key_is_unavailable_with_the_reason() {
    let fake = FakeLlm::start().await;
    let mut config = model_config(&fake, Provider::OpenAi);
    config.api_key = None;
    config.base_url = url::Url::parse("https://api.openai.com/v1").expect("url");
    let registry = ModelRegistry::default();
    registry.apply(
        &BTreeMap::from([(config.name.clone(), config)]),
        &reqwest::Client::new(),
    );
    let listed = registry.list();
    assert!(!listed[0].available);
    assert!(
        listed[0]
            .unavailable_reason
            .as_deref()
            .is_some_and(|r| r.contains("API key"))
    );
    let err = registry
        .get(Some("m"))
        .expect("listed")
        .client()
        .err()
        .expect("unavailable");
    assert!(matches!(err, LlmError::Unavailable { .. }));
}
