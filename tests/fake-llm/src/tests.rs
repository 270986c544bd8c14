//! The fake against a real HTTP client: every reply in both protocols, whole and streamed, with
//! the wire format checked by parsing what arrives (SSE framing, event names, chunk objects,
//! reassembled tool-call arguments).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use super::{FakeLlm, FakeToolCall, Fallback, Reply, Usage};

// ---------------------------------------------------------------------------------------------
// Helpers

fn openai_request(stream: bool) -> Value {
    let mut body = json!({
        "model": "gpt-test",
        "messages": [{ "role": "user", "content": "hello there" }],
        "stream": stream,
    });
    if stream {
        body["stream_options"] = json!({ "include_usage": true });
    }
    body
}

fn anthropic_request(stream: bool) -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 256,
        "messages": [{ "role": "user", "content": "hello there" }],
        "stream": stream,
    })
}

async fn post_openai(fake: &FakeLlm, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.openai_base_url()))
        .bearer_auth("sk-test")
        .json(body)
        .send()
        .await
        .expect("send to the fake")
}

async fn post_anthropic(fake: &FakeLlm, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/messages", fake.anthropic_base_url()))
        .header("x-api-key", "test-key")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .expect("send to the fake")
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A complete SSE body as (event name, data) pairs; panics on anything but `event:`/`data:`
/// lines and blank separators.
#[track_caller]
fn sse(body: &str) -> Vec<(Option<String>, String)> {
    assert!(
        body.ends_with("\n\n"),
        "event stream ends mid-event: {body:?}"
    );
    body.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push(value);
                } else {
                    panic!("unexpected event-stream line {line:?}");
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

/// The OpenAI chunks of a complete stream, which must be data-only events ending in `[DONE]`.
#[track_caller]
fn openai_chunks(body: &str) -> Vec<Value> {
    let events = sse(body);
    let (done, chunks) = events.split_last().expect("some events");
    assert_eq!(done, &(None, "[DONE]".to_owned()));
    chunks
        .iter()
        .map(|(event, data)| {
            assert_eq!(event, &None, "openai events are unnamed");
            let chunk: Value = serde_json::from_str(data).expect("chunk is json");
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["model"], "gpt-test");
            chunk
        })
        .collect()
}

/// An OpenAI stream put back together.
#[derive(Debug, Default)]
struct Assembled {
    text: String,
    /// index -> (id, name, arguments as streamed)
    calls: BTreeMap<u64, (String, String, String)>,
    /// The `index` of every tool-call entry, in arrival order.
    order: Vec<u64>,
    /// The most entries one delta carried.
    widest_delta: usize,
    content_deltas: usize,
    finish_reason: Option<String>,
    usage: Option<Value>,
}

#[track_caller]
fn assemble_openai(chunks: &[Value]) -> Assembled {
    let mut out = Assembled::default();
    for chunk in chunks {
        if !chunk["usage"].is_null() {
            assert_eq!(
                chunk["choices"],
                json!([]),
                "the usage chunk has no choices"
            );
            out.usage = Some(chunk["usage"].clone());
        }
        let Some(choice) = chunk["choices"].as_array().and_then(|c| c.first()) else {
            continue;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str()
            && !text.is_empty()
        {
            out.text.push_str(text);
            out.content_deltas += 1;
        }
        let entries = delta["tool_calls"].as_array().cloned().unwrap_or_default();
        out.widest_delta = out.widest_delta.max(entries.len());
        for entry in entries {
            let index = entry["index"].as_u64().expect("tool call index");
            out.order.push(index);
            let arguments = entry["function"]["arguments"].as_str().unwrap_or_default();
            match out.calls.get_mut(&index) {
                None => {
                    assert_eq!(entry["type"], "function", "first delta of {index}: {entry}");
                    let id = entry["id"].as_str().expect("id in the first delta");
                    let name = entry["function"]["name"]
                        .as_str()
                        .expect("name in the first delta");
                    out.calls.insert(
                        index,
                        (id.to_owned(), name.to_owned(), arguments.to_owned()),
                    );
                }
                Some(call) => {
                    assert!(entry.get("id").is_none(), "id repeated: {entry}");
                    assert!(
                        entry["function"].get("name").is_none(),
                        "name repeated: {entry}"
                    );
                    call.2.push_str(arguments);
                }
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            out.finish_reason = Some(reason.to_owned());
        }
    }
    out
}

/// An Anthropic stream folded into the `message` a non-streaming call would return; checks the
/// event order and that each event's name equals its `type`.
#[track_caller]
fn assemble_anthropic(events: &[(Option<String>, String)]) -> Value {
    let mut message = Value::Null;
    let mut partial_json: BTreeMap<usize, String> = BTreeMap::new();
    let mut names = Vec::new();
    for (event, data) in events {
        let data: Value = serde_json::from_str(data).expect("event data is json");
        let name = event.as_deref().expect("anthropic events are named");
        assert_eq!(data["type"], name, "event name and type differ");
        names.push(name.to_owned());
        let index = data["index"].as_u64().unwrap_or(0) as usize;
        match name {
            "message_start" => message = data["message"].clone(),
            "content_block_start" => {
                let content = message["content"].as_array_mut().expect("content");
                assert_eq!(content.len(), index, "blocks start in order");
                content.push(data["content_block"].clone());
            }
            "content_block_delta" => {
                let block = &mut message["content"][index];
                let delta = &data["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        let text = block["text"].as_str().unwrap().to_owned();
                        block["text"] = json!(text + delta["text"].as_str().unwrap());
                    }
                    Some("input_json_delta") => partial_json
                        .entry(index)
                        .or_default()
                        .push_str(delta["partial_json"].as_str().unwrap()),
                    other => panic!("unexpected delta type {other:?}"),
                }
            }
            "content_block_stop" => {
                if let Some(json) = partial_json.remove(&index) {
                    message["content"][index]["input"] =
                        serde_json::from_str(&json).expect("partial_json adds up to json");
                }
            }
            "message_delta" => {
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["usage"] = data["usage"].clone();
            }
            "ping" | "message_stop" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    message
}

/// Read a body until it ends or fails; the text so far and whether it failed.
async fn read_all(response: reqwest::Response) -> (String, bool) {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(piece) = stream.next().await {
        match piece {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(_) => return (String::from_utf8(body).unwrap(), true),
        }
    }
    (String::from_utf8(body).unwrap(), false)
}

fn weather_calls() -> Vec<FakeToolCall> {
    vec![
        FakeToolCall::new(
            "call_a",
            "weather__forecast",
            json!({ "city": "Zürich", "days": [1, 2, 3], "detail": { "units": "metric" } }),
        ),
        FakeToolCall::new("call_b", "clock__now", json!({ "tz": "UTC" })),
    ]
}

// ---------------------------------------------------------------------------------------------
// OpenAI

#[tokio::test]
async fn openai_text_whole_and_recorded() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Text {
        text: "Hello!".to_owned(),
        usage: Some(Usage {
            input_tokens: 11,
            output_tokens: 3,
        }),
    });
    let response = post_openai(&fake, &openai_request(false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/json");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-test");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Hello!");
    assert!(choice["message"].get("tool_calls").is_none());
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({ "prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14 })
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].header("Authorization"), Some("Bearer sk-test"));
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(requests[0].body, openai_request(false));
    assert_eq!(fake.remaining(), 0);
}

#[tokio::test]
async fn openai_text_stream_with_usage() {
    let fake = FakeLlm::start().await;
    let text = "Streaming, in several small pieces.";
    fake.push(Reply::text(text));
    let response = post_openai(&fake, &openai_request(true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "text/event-stream; charset=utf-8");
    let chunks = openai_chunks(&response.text().await.unwrap());

    let first = &chunks[0]["choices"][0];
    assert_eq!(first["delta"]["role"], "assistant");
    assert_eq!(first["finish_reason"], Value::Null);
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    for chunk in rest {
        assert_eq!(
            chunk.get("usage"),
            Some(&Value::Null),
            "usage: null until the end"
        );
        assert_eq!(chunk["id"], chunks[0]["id"]);
    }
    assert_eq!(rest.last().unwrap()["choices"][0]["delta"], json!({}));
    let usage = &usage_chunk["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );

    let assembled = assemble_openai(&chunks);
    assert_eq!(assembled.text, text);
    assert!(assembled.content_deltas >= 3, "{assembled:?}");
    assert_eq!(assembled.finish_reason.as_deref(), Some("stop"));
    assert!(assembled.usage.is_some());
}

#[tokio::test]
async fn openai_stream_without_include_usage_has_no_usage() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("no usage please"));
    let mut request = openai_request(true);
    request.as_object_mut().unwrap().remove("stream_options");
    let chunks = openai_chunks(&post_openai(&fake, &request).await.text().await.unwrap());
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(assemble_openai(&chunks).text, "no usage please");
}

#[tokio::test]
async fn openai_parallel_tool_calls_stream_interleaved() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::ToolCalls {
        calls: weather_calls(),
        text: Some("Let me check.".to_owned()),
    });
    let chunks = openai_chunks(
        &post_openai(&fake, &openai_request(true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let assembled = assemble_openai(&chunks);

    assert_eq!(assembled.text, "Let me check.");
    assert_eq!(assembled.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(assembled.calls.len(), 2);
    for (index, call) in weather_calls().into_iter().enumerate() {
        let (id, name, arguments) = &assembled.calls[&(index as u64)];
        assert_eq!(
            (id.as_str(), name.as_str()),
            (call.id.as_str(), call.name.as_str())
        );
        let arguments: Value = serde_json::from_str(arguments).expect("arguments add up to json");
        assert_eq!(arguments, call.arguments);
    }
    // Interleaved: index 0 comes back after index 1 started; and one delta carries both.
    let first_of_1 = assembled.order.iter().position(|&i| i == 1).unwrap();
    assert!(
        assembled.order[first_of_1..].contains(&0),
        "{:?}",
        assembled.order
    );
    assert_eq!(assembled.widest_delta, 2);
    assert!(
        assembled.order.iter().filter(|&&i| i == 0).count() > 3,
        "several fragments"
    );
}

#[tokio::test]
async fn openai_single_tool_call_stream() {
    let fake = FakeLlm::start().await;
    let arguments = json!({ "expression": "(1 + 2) * 3", "precise": true });
    fake.push(Reply::tool_call(
        "call_1",
        "calc__evaluate",
        arguments.clone(),
    ));
    let chunks = openai_chunks(
        &post_openai(&fake, &openai_request(true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let assembled = assemble_openai(&chunks);
    assert_eq!(assembled.text, "");
    let (id, name, streamed) = &assembled.calls[&0];
    assert_eq!((id.as_str(), name.as_str()), ("call_1", "calc__evaluate"));
    assert_eq!(serde_json::from_str::<Value>(streamed).unwrap(), arguments);
    assert_eq!(assembled.widest_delta, 1);
    assert_eq!(assembled.finish_reason.as_deref(), Some("tool_calls"));
}

#[tokio::test]
async fn openai_tool_calls_whole() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::ToolCalls {
        calls: weather_calls(),
        text: None,
    });
    let body: Value = post_openai(&fake, &openai_request(false))
        .await
        .json()
        .await
        .unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    for (wire, call) in calls.iter().zip(weather_calls()) {
        assert_eq!(wire["id"], call.id.as_str());
        assert_eq!(wire["type"], "function");
        assert_eq!(wire["function"]["name"], call.name.as_str());
        let arguments = wire["function"]["arguments"]
            .as_str()
            .expect("arguments is a string");
        assert_eq!(
            serde_json::from_str::<Value>(arguments).unwrap(),
            call.arguments
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Anthropic

#[tokio::test]
async fn anthropic_text_whole_and_recorded() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Text {
        text: "Hello!".to_owned(),
        usage: Some(Usage {
            input_tokens: 12,
            output_tokens: 4,
        }),
    });
    let response = post_anthropic(&fake, &anthropic_request(false)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-test");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        body["content"],
        json!([{ "type": "text", "text": "Hello!" }])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert_eq!(
        body["usage"],
        json!({ "input_tokens": 12, "output_tokens": 4 })
    );

    let recorded = &fake.requests()[0];
    assert_eq!(recorded.path, "/v1/messages");
    assert_eq!(recorded.header("x-api-key"), Some("test-key"));
    assert_eq!(recorded.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(recorded.body, anthropic_request(false));
}

#[tokio::test]
async fn anthropic_text_stream() {
    let fake = FakeLlm::start().await;
    let text = "Streaming, in several small pieces.";
    fake.push(Reply::Text {
        text: text.to_owned(),
        usage: Some(Usage {
            input_tokens: 20,
            output_tokens: 9,
        }),
    });
    let response = post_anthropic(&fake, &anthropic_request(true)).await;
    assert_eq!(content_type(&response), "text/event-stream; charset=utf-8");
    let events = sse(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "content_block_start", "ping"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(
        names
            .iter()
            .filter(|&&n| n == "content_block_delta")
            .count()
            >= 3
    );

    let start: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(start["message"]["stop_reason"], Value::Null);
    assert_eq!(start["message"]["usage"]["input_tokens"], 20);

    let message = assemble_anthropic(&events);
    assert_eq!(
        message["content"],
        json!([{ "type": "text", "text": text }])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["output_tokens"], 9);
}

#[tokio::test]
async fn anthropic_tool_use_stream() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::ToolCalls {
        calls: weather_calls(),
        text: Some("Let me check.".to_owned()),
    });
    let events = sse(&post_anthropic(&fake, &anthropic_request(true))
        .await
        .text()
        .await
        .unwrap());
    let starts: Vec<Value> = events
        .iter()
        .filter(|(e, _)| e.as_deref() == Some("content_block_start"))
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        starts[1]["content_block"],
        json!({ "type": "tool_use", "id": "call_a", "name": "weather__forecast", "input": {} })
    );
    let fragments = events
        .iter()
        .filter(|(_, d)| d.contains("input_json_delta") && d.contains("\"index\":1"))
        .count();
    assert!(fragments > 3, "arguments split into several fragments");

    let message = assemble_anthropic(&events);
    let calls = weather_calls();
    assert_eq!(
        message["content"],
        json!([
            { "type": "text", "text": "Let me check." },
            { "type": "tool_use", "id": "call_a", "name": "weather__forecast", "input": calls[0].arguments },
            { "type": "tool_use", "id": "call_b", "name": "clock__now", "input": calls[1].arguments },
        ])
    );
    assert_eq!(message["stop_reason"], "tool_use");
}

#[tokio::test]
async fn anthropic_tool_use_whole() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::tool_call(
        "toolu_1",
        "calc__evaluate",
        json!({ "expression": "1+1" }),
    ));
    let body: Value = post_anthropic(&fake, &anthropic_request(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["content"],
        json!([{ "type": "tool_use", "id": "toolu_1", "name": "calc__evaluate", "input": { "expression": "1+1" } }])
    );
    assert_eq!(body["stop_reason"], "tool_use");
}

// ---------------------------------------------------------------------------------------------
// Errors and faults, both protocols

#[tokio::test]
async fn status_replies_use_each_providers_error_shape() {
    let fake = FakeLlm::start().await;

    fake.push(Reply::rate_limited("1"));
    let response = post_openai(&fake, &openai_request(true)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        content_type(&response),
        "application/json",
        "errors are never streamed"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].is_string());
    assert_eq!(body["error"]["param"], Value::Null);

    fake.push(Reply::rate_limited("2"));
    let response = post_anthropic(&fake, &anthropic_request(true)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");

    #[track_caller]
    fn check(body: &Value, pointer: &str, expected: &str) {
        assert_eq!(
            body.pointer(pointer).and_then(Value::as_str),
            Some(expected),
            "{body}"
        );
    }
    for (status, openai_type, anthropic_type) in [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "invalid_request_error", "authentication_error"),
        (404, "invalid_request_error", "not_found_error"),
        (500, "server_error", "api_error"),
        (529, "server_error", "overloaded_error"),
    ] {
        fake.push(Reply::status(status));
        let response = post_openai(&fake, &openai_request(false)).await;
        assert_eq!(response.status(), status);
        check(&response.json().await.unwrap(), "/error/type", openai_type);
        fake.push(Reply::status(status));
        let response = post_anthropic(&fake, &anthropic_request(false)).await;
        assert_eq!(response.status(), status);
        check(
            &response.json().await.unwrap(),
            "/error/type",
            anthropic_type,
        );
    }

    // A string body is the message; any other body goes out verbatim.
    fake.push(Reply::Status {
        status: 400,
        retry_after: None,
        body: json!("This model's maximum context length is 8192 tokens."),
    });
    let body: Value = post_openai(&fake, &openai_request(false))
        .await
        .json()
        .await
        .unwrap();
    check(
        &body,
        "/error/message",
        "This model's maximum context length is 8192 tokens.",
    );
    fake.push(Reply::Status {
        status: 503,
        retry_after: None,
        body: json!({ "custom": true }),
    });
    let response = post_anthropic(&fake, &anthropic_request(false)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "custom": true })
    );
}

#[tokio::test]
async fn malformed_chunk() {
    let fake = FakeLlm::start().await;

    fake.push(Reply::MalformedChunk);
    let body = post_openai(&fake, &openai_request(true))
        .await
        .text()
        .await
        .unwrap();
    let (before, after) = body
        .split_once("data: {not json\n\n")
        .expect("the bad line");
    let chunks = openai_chunks(&format!("{before}{after}"));
    let delta_before = openai_chunks(&format!("{before}data: [DONE]\n\n"));
    assert_eq!(
        assemble_openai(&delta_before).content_deltas,
        1,
        "one valid delta first"
    );
    assert_eq!(
        assemble_openai(&chunks).finish_reason.as_deref(),
        Some("stop")
    );

    fake.push(Reply::MalformedChunk);
    let body = post_anthropic(&fake, &anthropic_request(true))
        .await
        .text()
        .await
        .unwrap();
    let bad = "event: content_block_delta\ndata: {not json\n\n";
    let (before, after) = body.split_once(bad).expect("the bad line");
    assert!(before.contains("text_delta"));
    assemble_anthropic(&sse(&format!("{before}{after}")));

    for provider in ["openai", "anthropic"] {
        fake.push(Reply::MalformedChunk);
        let response = match provider {
            "openai" => post_openai(&fake, &openai_request(false)).await,
            _ => post_anthropic(&fake, &anthropic_request(false)).await,
        };
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "{provider}: {text}"
        );
    }
}

#[tokio::test]
async fn disconnect_mid_stream_aborts_the_connection() {
    let fake = FakeLlm::start().await;

    fake.push(Reply::DisconnectMidStream);
    let (body, failed) = read_all(post_openai(&fake, &openai_request(true)).await).await;
    assert!(failed, "the body must fail, not end: {body:?}");
    assert!(
        body.contains("\"content\":\"This \""),
        "deltas came first: {body:?}"
    );
    assert!(!body.contains("[DONE]") && !body.contains("finish_reason\":\"stop"));

    fake.push(Reply::DisconnectMidStream);
    let (body, failed) = read_all(post_anthropic(&fake, &anthropic_request(true)).await).await;
    assert!(failed, "the body must fail, not end: {body:?}");
    assert!(body.contains("text_delta"));
    assert!(!body.contains("message_stop"));

    fake.push(Reply::DisconnectMidStream);
    let (body, failed) = read_all(post_anthropic(&fake, &anthropic_request(false)).await).await;
    assert!(failed && body.starts_with('{'), "{body:?}");
}

#[tokio::test]
async fn truncated_stream_ends_cleanly_without_end_marker() {
    let fake = FakeLlm::start().await;

    fake.push(Reply::TruncatedStream);
    let (body, failed) = read_all(post_openai(&fake, &openai_request(true)).await).await;
    assert!(!failed);
    let events = sse(&body);
    assert_eq!(events.len(), 3, "role chunk and two deltas: {events:?}");
    assert!(!body.contains("[DONE]"));

    fake.push(Reply::TruncatedStream);
    let (body, failed) = read_all(post_anthropic(&fake, &anthropic_request(true)).await).await;
    assert!(!failed);
    let last = sse(&body).pop().unwrap();
    assert_eq!(last.0.as_deref(), Some("content_block_delta"));

    fake.push(Reply::TruncatedStream);
    let (body, failed) = read_all(post_openai(&fake, &openai_request(false)).await).await;
    assert!(!failed && serde_json::from_str::<Value>(&body).is_err());
}

#[tokio::test]
async fn stream_error_is_sent_in_band() {
    let fake = FakeLlm::start().await;

    fake.push(Reply::StreamError { status: 500 });
    let body = post_openai(&fake, &openai_request(true))
        .await
        .text()
        .await
        .unwrap();
    let (event, data) = sse(&body).pop().unwrap();
    assert_eq!(event, None);
    let error: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(error["error"]["type"], "server_error");
    assert!(!body.contains("[DONE]"));

    fake.push(Reply::StreamError { status: 529 });
    let body = post_anthropic(&fake, &anthropic_request(true))
        .await
        .text()
        .await
        .unwrap();
    let events = sse(&body);
    let (event, data) = events.last().unwrap();
    assert_eq!(event.as_deref(), Some("error"));
    let error: Value = serde_json::from_str(data).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "overloaded_error");
    assert!(events.iter().any(|(_, d)| d.contains("text_delta")));

    fake.push(Reply::StreamError { status: 529 });
    let response = post_anthropic(&fake, &anthropic_request(false)).await;
    assert_eq!(response.status(), 529);
}

#[tokio::test]
async fn slow_first_token_sends_the_head_then_waits() {
    let fake = FakeLlm::start().await;
    let delay = Duration::from_millis(300);
    fake.push(Reply::SlowFirstToken {
        delay,
        then: Box::new(Reply::text("finally")),
    });
    let started = Instant::now();
    let response = post_openai(&fake, &openai_request(true)).await;
    let head_at = started.elapsed();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = body.next().await.expect("a first piece").unwrap();
    let body_at = started.elapsed();
    assert!(body_at >= delay, "{body_at:?}");
    assert!(
        body_at - head_at >= delay / 2,
        "head {head_at:?}, body {body_at:?}"
    );
    assert!(first.starts_with(b"data: {"));
}

#[tokio::test]
async fn huge_line_has_no_newline() {
    let fake = FakeLlm::start().await;
    let bytes = 1_000_000;

    fake.push(Reply::HugeLine { bytes });
    let response = post_openai(&fake, &openai_request(true)).await;
    assert_eq!(content_type(&response), "text/event-stream; charset=utf-8");
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), bytes);
    assert!(body.starts_with(b"data: {"));
    assert!(!body.contains(&b'\n'));

    fake.push(Reply::HugeLine { bytes });
    let body = post_anthropic(&fake, &anthropic_request(false))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), bytes);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

// ---------------------------------------------------------------------------------------------
// Requests, queue and routes

#[tokio::test]
async fn invalid_requests_are_rejected_like_the_real_apis_and_recorded() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("kept for the valid request"));

    #[track_caller]
    fn check(status: reqwest::StatusCode, body: &Value, message: &str) {
        assert_eq!(status, 400, "{body}");
        let actual = body["error"]["message"].as_str().unwrap_or_default();
        assert!(actual.contains(message), "{actual:?} lacks {message:?}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    let mut no_model = openai_request(false);
    no_model.as_object_mut().unwrap().remove("model");
    let response = post_openai(&fake, &no_model).await;
    check(response.status(), &response.json().await.unwrap(), "model");

    let mut no_messages = openai_request(false);
    no_messages.as_object_mut().unwrap().remove("messages");
    let response = post_openai(&fake, &no_messages).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    check(status, &body, "messages");
    assert_eq!(body["error"]["param"], "messages");

    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.openai_base_url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    check(response.status(), &response.json().await.unwrap(), "JSON");

    for field in ["model", "messages", "max_tokens"] {
        let mut body = anthropic_request(false);
        body.as_object_mut().unwrap().remove(field);
        let response = post_anthropic(&fake, &body).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        check(status, &body, &format!("{field}: Field required"));
        assert_eq!(body["type"], "error");
    }

    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", fake.anthropic_base_url()))
        .json(&anthropic_request(false))
        .send()
        .await
        .unwrap();
    check(
        response.status(),
        &response.json().await.unwrap(),
        "anthropic-version",
    );

    assert_eq!(fake.requests().len(), 7, "rejected requests are recorded");
    assert_eq!(fake.requests()[2].body, json!("{not json"));
    assert_eq!(fake.remaining(), 1, "rejections take no reply");
    let body: Value = post_openai(&fake, &openai_request(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "kept for the valid request"
    );
}

#[tokio::test]
async fn replies_are_fifo_across_protocols_then_the_fallback_errors() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("first"));
    fake.push(Reply::text("second"));
    let body: Value = post_anthropic(&fake, &anthropic_request(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["content"][0]["text"], "first");
    let body: Value = post_openai(&fake, &openai_request(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "second");

    let response = post_openai(&fake, &openai_request(true)).await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-fake-llm"], "unscripted");
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("no scripted reply left"), "{message}");

    let response = post_anthropic(&fake, &anthropic_request(false)).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");
}

#[tokio::test]
async fn models_and_unknown_routes() {
    let fake = FakeLlm::start().await;
    let client = reqwest::Client::new();

    let openai: Value = client
        .get(format!("{}/models", fake.openai_base_url()))
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["object"], "list");
    assert_eq!(openai["data"][0]["object"], "model");

    let anthropic: Value = client
        .get(format!("{}/v1/models", fake.anthropic_base_url()))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anthropic["data"][0]["type"], "model");
    assert_eq!(anthropic["has_more"], false);

    let response = client
        .post(format!("{}/v1/completions", fake.anthropic_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/completions")
    );

    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/models", "/v1/models", "/v1/completions"]);
    assert_eq!(fake.requests()[0].body, Value::Null);
}

#[tokio::test]
async fn dropping_stops_the_server() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("served"));
    assert_eq!(
        post_openai(&fake, &openai_request(false)).await.status(),
        200
    );
    let addr = fake.addr();
    drop(fake);
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "still accepting connections after drop");
}

// ---------------------------------------------------------------------------------------------
// The demo fallback

fn demo_tools_openai() -> Value {
    json!([
        { "type": "function", "function": { "name": "calc__evaluate", "parameters": { "type": "object" } } },
        { "type": "function", "function": { "name": "clock__now", "parameters": { "type": "object" } } },
    ])
}

#[tokio::test]
async fn demo_over_openai() {
    let fake = FakeLlm::start().await;
    fake.set_fallback(Fallback::Demo);

    let mut request = json!({
        "model": "gpt-test",
        "messages": [{ "role": "user", "content": "What time is it, and what is 2 + 3 * 4?" }],
        "tools": demo_tools_openai(),
        "stream": true,
    });
    let response = post_openai(&fake, &request).await;
    assert_eq!(response.headers()["x-fake-llm"], "demo");
    let assembled = assemble_openai(&openai_chunks(&response.text().await.unwrap()));
    let calls: Vec<(String, Value)> = assembled
        .calls
        .values()
        .map(|(_, name, args)| (name.clone(), serde_json::from_str(args).unwrap()))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "calc__evaluate".to_owned(),
                json!({ "expression": "2 + 3 * 4" })
            ),
            ("clock__now".to_owned(), json!({})),
        ]
    );
    let ids: Vec<String> = assembled
        .calls
        .values()
        .map(|(id, _, _)| id.clone())
        .collect();
    assert_ne!(ids[0], ids[1]);

    let messages = request["messages"].as_array_mut().unwrap();
    messages.push(json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [
            { "id": ids[0], "type": "function", "function": { "name": "calc__evaluate", "arguments": "{}" } },
            { "id": ids[1], "type": "function", "function": { "name": "clock__now", "arguments": "{}" } },
        ],
    }));
    messages.push(json!({ "role": "tool", "tool_call_id": ids[0], "content": "14" }));
    messages.push(json!({ "role": "tool", "tool_call_id": ids[1], "content": [{ "type": "text", "text": "12:00 UTC" }] }));
    request["stream"] = json!(false);
    let body: Value = post_openai(&fake, &request).await.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "(fake model) Tool results: 14; 12:00 UTC"
    );

    let body: Value = post_openai(&fake, &openai_request(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "(fake model) You said: hello there"
    );
}

#[tokio::test]
async fn demo_over_anthropic() {
    let fake = FakeLlm::start().await;
    fake.set_fallback(Fallback::Demo);
    let tools = json!([
        { "name": "calc__evaluate", "input_schema": { "type": "object" } },
        { "name": "clock__now", "input_schema": { "type": "object" } },
    ]);

    let mut request = json!({
        "model": "demo",
        "max_tokens": 100,
        "messages": [{ "role": "user", "content": [{ "type": "text", "text": "compute (1+2)*3" }] }],
        "tools": tools,
        "stream": true,
    });
    let events = sse(&post_anthropic(&fake, &request).await.text().await.unwrap());
    let message = assemble_anthropic(&events);
    assert_eq!(message["stop_reason"], "tool_use");
    let call = &message["content"][0];
    assert_eq!(call["name"], "calc__evaluate");
    assert_eq!(call["input"], json!({ "expression": "(1+2)*3" }));
    assert!(call["id"].as_str().unwrap().starts_with("toolu_"));

    let messages = request["messages"].as_array_mut().unwrap();
    messages.push(json!({ "role": "assistant", "content": [call] }));
    messages.push(json!({
        "role": "user",
        "content": [{ "type": "tool_result", "tool_use_id": call["id"], "content": "9" }],
    }));
    request["stream"] = json!(false);
    let body: Value = post_anthropic(&fake, &request).await.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "(fake model) Tool results: 9");
    assert_eq!(body["stop_reason"], "end_turn");

    let body: Value = post_anthropic(&fake, &anthropic_request(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["content"][0]["text"],
        "(fake model) You said: hello there"
    );
}
