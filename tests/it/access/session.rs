//! The browser session over plain HTTP: signing in trades a key for an HttpOnly, SameSite=Strict
//! cookie (Secure only behind TLS), which authenticates reads; a change made with it must carry
//! this server's own Origin; signing out ends it. The audit log records sign-ins (accepted and
//! refused) and authentication failures, and never holds a key's secret or a session token.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Auth, Client, audit_entries, audit_entry, create_key, shared, sign_in};

/// The attributes of a `Set-Cookie` value, lower-cased, without the name=value pair.
fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

/// `POST /api/chat` with the session cookie `token` and `origin` (when given).
async fn chat_with_cookie(client: &Client, token: &str, origin: Option<&str>) -> reqwest::Response {
    let headers: Vec<(&str, &str)> = origin.map(|o| vec![("origin", o)]).unwrap_or_default();
    client
        .send(
            Method::POST,
            "/api/chat",
            Auth::Cookie(token),
            Some(json!({ "message": "hello from the browser", "model": "fake" })),
            &headers,
        )
        .await
}

#[tokio::test]
async fn a_session_cookie_signs_in_needs_our_origin_to_change_things_and_signs_out() {
    let client = Client::shared();
    let key = create_key(&client, "sam", "user", None).await;

    // Plain HTTP: no Secure; behind a TLS proxy: Secure.
    let (answer, token) = sign_in(&client, &key.token, &[]).await;
    assert_eq!(answer.body["user"], "sam", "{answer:?}");
    let plain = attributes(answer.header("set-cookie").unwrap_or_default());
    for wanted in ["httponly", "samesite=strict", "path=/"] {
        assert!(plain.iter().any(|a| a == wanted), "{wanted} in {plain:?}");
    }
    assert!(
        !plain.iter().any(|a| a == "secure"),
        "no Secure over plain HTTP (the browser would drop the cookie): {plain:?}"
    );
    let (behind_tls, tls_token) =
        sign_in(&client, &key.token, &[("x-forwarded-proto", "https")]).await;
    let tls = attributes(behind_tls.header("set-cookie").unwrap_or_default());
    assert!(
        tls.iter().any(|a| a == "secure"),
        "Secure behind TLS: {tls:?}"
    );
    assert_ne!(token, tls_token, "every sign-in is its own session");

    // The cookie authenticates reads.
    let cookie = Auth::Cookie(&token);
    let me = client.call(Method::GET, "/api/session", cookie, None).await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    assert_eq!(
        (&me.body["user"], &me.body["role"], &me.body["key_id"]),
        (&json!("sam"), &json!("user"), &json!(key.id)),
        "{me:?}"
    );

    // A change made with it must say it comes from this server's own pages.
    let base = shared().base.clone();
    for (origin, what) in [
        (None, "without an Origin"),
        (Some("http://evil.test"), "from a foreign Origin"),
    ] {
        let refused = chat_with_cookie(&client, &token, origin).await;
        assert_eq!(
            refused.status(),
            StatusCode::FORBIDDEN,
            "a cookie-borne chat {what} is refused"
        );
    }
    let allowed = chat_with_cookie(&client, &token, Some(&base)).await;
    assert_eq!(
        allowed.status(),
        StatusCode::OK,
        "a cookie-borne chat from this server's own Origin starts"
    );
    super::Events::new(allowed).until("run_finished").await;

    // Signing out ends the session: the cookie no longer works.
    let out = client
        .call_with(
            Method::DELETE,
            "/api/session",
            cookie,
            Some(json!({})),
            &[("origin", &base)],
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{out:?}");
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.starts_with("sb_session=;") && c.contains("Max-Age=0")),
        "signing out clears the cookie: {out:?}"
    );
    let after = client.call(Method::GET, "/api/session", cookie, None).await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "the signed-out cookie is refused: {after:?}"
    );
    let other = client
        .call(Method::GET, "/api/session", Auth::Cookie(&tls_token), None)
        .await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "signing out ends that session only: {other:?}"
    );
}

#[tokio::test]
async fn the_audit_records_sign_ins_and_failures_and_never_a_secret() {
    let client = Client::shared();
    let key = create_key(&client, "sally", "user", None).await;
    let (_, token) = sign_in(&client, &key.token, &[]).await;
    // The right id with another secret: refused at sign-in and as a bearer key.
    let other = switchboard::access::issue_key().expect("random").token;
    let wrong = format!("sb_{}_{}", key.id, &other[16..]);
    let refused = client
        .call(
            Method::POST,
            "/api/session",
            Auth::Anonymous,
            Some(json!({ "key": wrong })),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let failed = client
        .call(Method::GET, "/api/runs", Auth::Bearer(&wrong), None)
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED, "{failed:?}");

    audit_entry(
        &client,
        "action=sign_in&outcome=ok",
        "sign_in ok for sally",
        |e| e["user"] == "sally" && e["key_id"] == key.id.as_str(),
    )
    .await;
    let denied = audit_entry(
        &client,
        "action=sign_in&outcome=denied",
        "sign_in denied for the wrong secret",
        |e| e["key_id"] == key.id.as_str(),
    )
    .await;
    assert!(
        denied["user"].is_null(),
        "a refused sign-in names no user: {denied:#}"
    );
    audit_entry(
        &client,
        "action=auth_failure",
        "auth_failure for the wrong secret",
        |e| e["key_id"] == key.id.as_str() && e["outcome"] == "denied",
    )
    .await;

    let everything = serde_json::to_string(&audit_entries(&client, "").await).expect("JSON");
    for (what, secret) in [
        ("the key", key.token.as_str()),
        ("the key's secret", &key.token[16..]),
        ("the wrong key's secret", &wrong[16..]),
        ("the session token", token.as_str()),
        (
            "the session token's secret",
            token.trim_start_matches("sbs_"),
        ),
        ("the administrator key", shared().admin_key.as_str()),
    ] {
        assert!(
            !everything.contains(secret),
            "the audit log contains {what}"
        );
    }
}
