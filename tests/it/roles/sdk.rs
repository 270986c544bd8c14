//! The official `openai` Python package as a real client of a server with `auth: keys`
//! (`tests/python/test_openai_sdk_auth.py`): with a key as `api_key` it lists the role's models
//! and completes a chat; a forbidden model is `PermissionDeniedError`; without a key or with a
//! wrong one it gets `AuthenticationError` (401).

use std::path::Path;
use std::time::Duration;

use switchboard_fake_llm::Reply;

use super::Served;

/// The answer the fake LLM gives the SDK's one completion.
const ANSWER: &str = "Hello from the narrow role.";
/// The script's tests; all must pass, none may be skipped.
const SCRIPT_TESTS: usize = 5;

/// Run the script against `served` with a fresh key of role `narrow`, whose `/v1/models` ids are
/// `model_ids`. Skipped (locally only) when the venv `tests/run.sh` makes is missing.
pub(super) async fn the_official_python_sdk_needs_a_key(served: &Served, model_ids: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("tests/python/.venv/bin/python");
    if !python.exists() {
        let install = "python3 -m venv tests/python/.venv && \
                       tests/python/.venv/bin/pip install -r tests/python/requirements.txt";
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing; CI must install it: {install}",
            python.display()
        );
        eprintln!(
            "skipping the OpenAI SDK check: {} is missing (install: {install})",
            python.display()
        );
        return;
    }
    let key = served.key("nash", "narrow").await;
    let before = served.fake.requests().len();
    served.fake.push(Reply::text(ANSWER));
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .args([
                "-m",
                "pytest",
                "tests/python/test_openai_sdk_auth.py",
                "-q",
                "-p",
                "no:cacheprovider",
            ])
            .current_dir(root)
            .env("OPENAI_BASE_URL", format!("{}/v1", served.server.base))
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_ADMIN_KEY")
            .env("SWITCHBOARD_SDK_KEY", &key)
            .env("SWITCHBOARD_SDK_MODELS", model_ids.join(","))
            .env("SWITCHBOARD_SDK_ANSWER", ANSWER)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("pytest finishes within 2 minutes")
    .expect("run pytest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK script failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("{SCRIPT_TESTS} passed")) && !stdout.contains("skipped"),
        "expected all {SCRIPT_TESTS} SDK tests to run and pass:\n{stdout}"
    );
    let requests = served.model_requests_since(before);
    assert_eq!(
        requests.len(),
        1,
        "only the keyed completion reached the model: {requests:#?}"
    );
    assert_eq!(
        served.fake.remaining(),
        0,
        "the scripted answer was not used"
    );
}
