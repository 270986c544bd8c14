"""The official `openai` package as a real client of Switchboard's OpenAI-compatible API.

Run by `tests/it/chat.rs` (`the_official_python_sdk_works_against_it`), which starts the server
with the fake LLM in its offline-demo mode and sets `OPENAI_BASE_URL` and `OPENAI_API_KEY`.
In that mode the model calls `calc__evaluate` for an arithmetic question and then answers
"(fake model) Tool results: <result>", so an answer with 42 in it went through the tool chain.
"""

import openai
import pytest
from openai import OpenAI

QUESTION = "What is 6*7?"


@pytest.fixture
def client() -> OpenAI:
    # Reads OPENAI_BASE_URL and OPENAI_API_KEY; no retries, so a failure shows at once.
    return OpenAI(max_retries=0, timeout=60)


def test_models_lists_models_and_agents(client: OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert "fake" in ids
    assert "agent:calc" in ids
    assert "hosted" not in ids, "an unavailable model is listed"


def test_completion_runs_the_tool_chain(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="agent:calc",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": QUESTION},
        ],
        temperature=0,
    )
    assert raw.headers.get("x-switchboard-run-id")
    assert raw.headers.get("x-switchboard-trace-id")
    completion = raw.parse()
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert "42" in choice.message.content
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_streaming_forwards_the_answer(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = []
    finish_reasons = []
    usage = None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
    answer = "".join(text)
    assert "42" in answer, answer
    assert answer.startswith("(fake model)"), answer
    assert finish_reasons == ["stop"]
    assert usage is not None and usage.total_tokens > 0


def test_the_client_history_reaches_the_model(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="fake",
        messages=[
            {"role": "user", "content": "Remember the word tangerine."},
            {"role": "assistant", "content": "I will."},
            {"role": "user", "content": "Say something."},
        ],
    )
    # The demo echoes the last message; the run's message is the last user message.
    assert completion.choices[0].message.content == "(fake model) You said: Say something."


def test_unknown_model_is_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.status_code == 404
    assert raised.value.code == "model_not_found"


def test_unknown_model_is_not_found_when_streaming(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="agent:nobody",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
