//! A key revoked while its holder follows a run: every event stream opened with it ends within
//! the refresh interval (without the run having ended), its next request and its browser
//! session get 401, and the audit log has the revocation.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{
    Auth, Client, Events, Next, audit_entry, create_key, revoke_key, run_with_status,
    script_slow_reply, shared, sign_in, start_chat,
};

/// How soon an open stream must end after its key is revoked: the cache refresh interval,
/// plus room for a loaded machine.
fn grace() -> Duration {
    switchboard::auth::REFRESH + Duration::from_secs(3)
}

/// Read `events` until the server ends it; panics if the run finished first (then the stream
/// ended for that reason, not the revocation) or if it does not end within [`grace`].
async fn ends_without_finishing(events: &mut Events, what: &str) {
    let deadline = Instant::now() + grace();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.next(left.max(Duration::from_millis(1))).await {
            Next::Ended => return,
            Next::Quiet => panic!(
                "{what} was still open {:?} after its key was revoked",
                grace()
            ),
            Next::Event(event) => assert_ne!(
                event.event.as_deref(),
                Some("run_finished"),
                "{what}: the run finished, so the stream's end proves nothing: {event:?}"
            ),
        }
    }
}

#[tokio::test]
async fn revoking_a_key_ends_its_open_streams_and_its_session() {
    let client = Client::shared();
    let key = create_key(&client, "alice", "user", None).await;
    let auth = Auth::Bearer(&key.token);
    let (_, cookie) = sign_in(&client, &key.token, &[]).await;

    script_slow_reply();
    let mut chat = start_chat(
        &client,
        auth,
        json!({ "message": "think about this for a while", "model": "slow" }),
    )
    .await;
    let run = chat.run_id.clone();
    let response = client
        .send(
            Method::GET,
            &format!("/api/runs/{run}/events"),
            auth,
            None,
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "following the run");
    let mut follow = Events::new(response);
    follow.until("run_started").await;
    run_with_status(&client, auth, &run, "running").await;

    revoke_key(&client, &key.id).await;
    let revoked = Instant::now();
    ends_without_finishing(&mut chat.events, "POST /api/chat's stream").await;
    ends_without_finishing(&mut follow, "GET /api/runs/{id}/events").await;
    assert!(
        revoked.elapsed() < grace(),
        "the streams took {:?} to end",
        revoked.elapsed()
    );

    for (what, auth) in [("key", auth), ("session cookie", Auth::Cookie(&cookie))] {
        let answer = client.call(Method::GET, "/api/session", auth, None).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "the revoked {what} is refused: {answer:?}"
        );
    }
    let entry = audit_entry(
        &client,
        "action=key_revoke",
        &format!("key_revoke of {}", key.id),
        |e| e["target"] == key.id.as_str(),
    )
    .await;
    assert_eq!(entry["outcome"], "ok", "{entry:#}");
    assert_eq!(entry["user"], "admin", "{entry:#}");

    // The run goes on without its follower; the administrator stops it.
    let cancel = client
        .call(
            Method::POST,
            &format!("/api/runs/{run}/cancel"),
            Auth::Bearer(&shared().admin_key),
            Some(json!({})),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::ACCEPTED, "{cancel:?}");
    run_with_status(
        &client,
        Auth::Bearer(&shared().admin_key),
        &run,
        "cancelled",
    )
    .await;
}
