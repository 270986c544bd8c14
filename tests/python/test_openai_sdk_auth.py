"""The official `openai` package against a Switchboard with `server.auth: keys`.

Run by `tests/it/roles/sdk.rs` (`the_official_python_sdk_needs_a_key`), which starts the server,
makes a key of a role that may use model `fake` and agents `calc` and `planner` only, scripts
one answer of the fake LLM, and sets:

- `OPENAI_BASE_URL`: the server's `/v1`;
- `SWITCHBOARD_SDK_KEY`: the key, passed as `api_key` exactly as any OpenAI client would;
- `SWITCHBOARD_SDK_MODELS`: the comma-separated `/v1/models` ids the role may see;
- `SWITCHBOARD_SDK_ANSWER`: the scripted answer of the one completion.

Without `SWITCHBOARD_SDK_KEY` (as when `tests/it/chat.rs` runs every script of this directory
against a server without auth) the module is skipped.
"""

import os

import openai
import pytest
from openai import OpenAI

KEY = os.environ.get("SWITCHBOARD_SDK_KEY")
if not KEY:
    pytest.skip(
        "SWITCHBOARD_SDK_KEY is not set (run by tests/it/roles/sdk.rs)",
        allow_module_level=True,
    )

# Shaped like a key (`sb_<12 hex>_<64 hex>`), but never issued.
WRONG_KEY = "sb_" + "0" * 12 + "_" + "0" * 64
MESSAGES = [{"role": "user", "content": "Say hello."}]


def client(api_key: str, **options) -> OpenAI:
    # No retries, so a failure shows at once.
    return OpenAI(api_key=api_key, max_retries=0, timeout=60, **options)


def test_models_are_only_the_roles() -> None:
    ids = sorted(model.id for model in client(KEY).models.list())
    assert ids == sorted(os.environ["SWITCHBOARD_SDK_MODELS"].split(","))


def test_a_completion_with_the_key() -> None:
    completion = client(KEY).chat.completions.create(model="fake", messages=MESSAGES)
    assert completion.choices[0].message.content == os.environ["SWITCHBOARD_SDK_ANSWER"]
    assert completion.choices[0].finish_reason == "stop"


def test_a_forbidden_model_is_permission_denied() -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        client(KEY).chat.completions.create(model="other", messages=MESSAGES)
    assert raised.value.status_code == 403
    assert raised.value.code == "model_not_allowed"


def test_without_a_key_it_is_an_authentication_error() -> None:
    sent = []

    def strip_authorization(request) -> None:
        # The SDK insists on some api_key; take its header off so nothing is sent.
        if "authorization" in request.headers:
            del request.headers["authorization"]
        sent.append(request.headers.get("authorization"))

    http = openai.DefaultHttpxClient(event_hooks={"request": [strip_authorization]})
    keyless = client("unused", http_client=http)
    with pytest.raises(openai.AuthenticationError) as raised:
        keyless.models.list()
    assert raised.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        keyless.chat.completions.create(model="fake", messages=MESSAGES)
    assert sent == [None, None], "an Authorization header was sent"


def test_with_a_wrong_key_it_is_an_authentication_error() -> None:
    wrong = client(WRONG_KEY)
    with pytest.raises(openai.AuthenticationError) as raised:
        wrong.models.list()
    assert raised.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="fake", messages=MESSAGES, stream=True)
