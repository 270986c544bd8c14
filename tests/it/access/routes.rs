//! Every route of the router (enumerated from its source by `table`) called without a
//! credential, with every kind of bad credential, and with a key of a role that grants
//! nothing. Proves that only the explicit public list answers anonymously, that pages send
//! the browser to sign-in, that every bad key gets exactly the 401 of no key (nothing tells an
//! attacker why), and that admin-only routes and role-filtered lists hold for the lowest role.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::table::{Route, routes};
use super::{Answer, Auth, Client, audit_entry, create_key, revoke_key};

/// The parts of a refusal a client can see, with the per-request id left out.
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    www_authenticate: Option<String>,
    location: Option<String>,
    body: Value,
}

impl From<&Answer> for Seen {
    fn from(answer: &Answer) -> Seen {
        let mut body = answer.body.clone();
        if let Some(error) = body.get_mut("error").and_then(Value::as_object_mut) {
            error.remove("request_id");
        }
        Seen {
            status: answer.status,
            www_authenticate: answer.header("www-authenticate").map(str::to_owned),
            location: answer.header("location").map(str::to_owned),
            body,
        }
    }
}

/// Call `route` at `path` (its parameters filled in) as `auth`.
async fn call(client: &Client, route: &Route, path: &str, auth: Auth<'_>) -> Answer {
    client
        .call(route.method.clone(), path, auth, route.body())
        .await
}

/// What is wrong with an anonymous answer to `route`, if anything.
fn anonymous_problem(route: &Route, path: &str, answer: &Answer) -> Option<String> {
    if route.is_public() {
        let refused = matches!(
            answer.status,
            StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER | StatusCode::FORBIDDEN
        ) || answer.header("www-authenticate").is_some();
        return refused.then(|| format!("public route {route} was refused: {answer:?}"));
    }
    if route.is_page() {
        let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        let expected = format!("/signin?next={next}");
        let redirected = answer.status == StatusCode::SEE_OTHER
            && answer.header("location") == Some(expected.as_str());
        return (!redirected)
            .then(|| format!("page {route} did not redirect to {expected}: {answer:?}"));
    }
    let error = &answer.body["error"];
    let shaped = if path.starts_with("/v1/") {
        // OpenAI's shape, which its SDKs parse.
        error["message"].as_str().is_some_and(|m| !m.is_empty())
            && error["type"].is_string()
            && error["code"] == "unauthorized"
    } else {
        error["message"].as_str().is_some_and(|m| !m.is_empty())
            && error["code"] == "unauthorized"
            && error["request_id"].is_string()
    };
    let refused = answer.status == StatusCode::UNAUTHORIZED
        && answer.header("www-authenticate") == Some("Bearer")
        && shaped;
    (!refused).then(|| {
        format!("{route} without a credential: expected 401 + WWW-Authenticate + error: {answer:?}")
    })
}

#[tokio::test]
async fn without_a_credential_only_the_public_list_answers() {
    let client = Client::shared();
    let routes = routes();
    let mut problems = Vec::new();
    for route in &routes {
        let path = route.sample();
        let answer = call(&client, route, &path, Auth::Anonymous).await;
        problems.extend(anonymous_problem(route, &path, &answer));
    }
    assert!(
        problems.is_empty(),
        "{} of {} routes:\n{}",
        problems.len(),
        routes.len(),
        problems.join("\n")
    );
    let public: Vec<String> = routes
        .iter()
        .filter(|r| r.is_public())
        .map(ToString::to_string)
        .collect();
    for expected in [
        "GET /healthz",
        "GET /readyz",
        "GET /signin",
        "GET /assets/{*path}",
        "POST /api/session",
        "GET /.well-known/oauth-protected-resource/mcp",
    ] {
        assert!(
            public.iter().any(|p| p == expected),
            "{expected} is missing from the router: {public:?}"
        );
    }
}

/// The public list answers without a credential with what it serves, not only "not refused":
/// the sign-in page (which pages redirect to), an asset, health and readiness, and signing in
/// (the handler's own validation answers, so the request got past authentication).
#[tokio::test]
async fn the_public_list_serves_its_content_without_a_credential() {
    let client = Client::shared();
    for (path, content_type) in [
        ("/healthz", None),
        ("/signin", Some("text/html")),
        ("/assets/app.css", Some("text/css")),
    ] {
        let answer = client.call(Method::GET, path, Auth::Anonymous, None).await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}: {answer:?}");
        if let Some(content_type) = content_type {
            assert!(
                answer
                    .header("content-type")
                    .is_some_and(|v| v.starts_with(content_type)),
                "GET {path} should be {content_type}: {answer:?}"
            );
        }
    }
    let ready = client
        .call(Method::GET, "/readyz", Auth::Anonymous, None)
        .await;
    assert!(
        ready.status == StatusCode::OK || ready.status == StatusCode::SERVICE_UNAVAILABLE,
        "GET /readyz answers readiness, not authentication: {ready:?}"
    );
    let sign_in = client
        .call(
            Method::POST,
            "/api/session",
            Auth::Anonymous,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (sign_in.status, &sign_in.body["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("invalid_body")),
        "POST /api/session without a key field reaches the handler: {sign_in:?}"
    );
}

/// A bad credential, owned.
enum Bad {
    /// An `Authorization` value, verbatim.
    Raw(&'static str),
    Bearer(String),
    Cookie(String),
}

impl Bad {
    fn auth(&self) -> Auth<'_> {
        match self {
            Bad::Raw(value) => Auth::Raw(value),
            Bad::Bearer(key) => Auth::Bearer(key),
            Bad::Cookie(token) => Auth::Cookie(token),
        }
    }
}

/// Bad credentials of every kind, each with what it is.
fn bad_credentials(expired: &str, revoked: &str, known_id: &str) -> Vec<(&'static str, Bad)> {
    let random = || switchboard::access::issue_key().expect("random").token;
    // `sb_` + 12 hex of id + `_` is 16 characters; the 64 after it are the secret.
    let wrong_secret = format!("sb_{known_id}_{}", &random()[16..]);
    vec![
        ("a malformed bearer", Bad::Raw("Bearer not-a-key")),
        ("another scheme", Bad::Raw("Basic YWRtaW46YWRtaW4=")),
        ("an unknown key", Bad::Bearer(random())),
        ("a known id with a wrong secret", Bad::Bearer(wrong_secret)),
        ("an expired key", Bad::Bearer(expired.to_owned())),
        ("a revoked key", Bad::Bearer(revoked.to_owned())),
        ("a malformed session", Bad::Cookie("garbage".to_owned())),
        (
            "an unknown session",
            Bad::Cookie(format!("sbs_{}", "0".repeat(64))),
        ),
    ]
}

#[tokio::test]
async fn every_bad_key_is_refused_exactly_like_no_key() {
    let client = Client::shared();
    let expiring = create_key(&client, "eve-expired", "user", Some("1s")).await;
    let revoked = create_key(&client, "eve-revoked", "user", None).await;
    let valid = create_key(&client, "eve-valid", "user", None).await;
    for key in [&expiring, &revoked, &valid] {
        let answer = client
            .call(Method::GET, "/api/session", Auth::Bearer(&key.token), None)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "a fresh key works before it expires or is revoked: {answer:?}"
        );
    }
    revoke_key(&client, &revoked.id).await;
    let expires_at = expiring
        .expires_at
        .expect("a key made with expires_in expires");
    crate::support::eventually(super::PATIENCE, "the key's expiry to pass", || {
        switchboard::domain::now_millis() > expires_at
    })
    .await;

    let credentials = bad_credentials(&expiring.token, &revoked.token, &valid.id);
    let mut problems = Vec::new();
    let mut checked = 0;
    for route in routes().iter().filter(|r| !r.is_public()) {
        let path = route.sample();
        let anonymous = Seen::from(&call(&client, route, &path, Auth::Anonymous).await);
        for (what, bad) in &credentials {
            let seen = Seen::from(&call(&client, route, &path, bad.auth()).await);
            checked += 1;
            if seen != anonymous {
                problems.push(format!(
                    "{route} with {what}: {seen:?}\n  differs from no credential: {anonymous:?}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {checked} answers tell a bad credential from none:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // The server knows why (for its administrator), even though the client was not told.
    for (key, reason) in [
        (&expiring, "expired"),
        (&revoked, "revoked"),
        (&valid, "unknown"),
    ] {
        audit_entry(
            &client,
            "action=auth_failure&outcome=denied",
            &format!("auth_failure {reason} for key {}", key.id),
            |e| e["key_id"] == key.id.as_str() && e["target"] == reason,
        )
        .await;
    }
}

#[tokio::test]
async fn the_lowest_role_gets_403_on_admin_routes_and_sees_nothing() {
    let client = Client::shared();
    let nobody = create_key(&client, "nora-nobody", "nobody", None).await;
    let auth = Auth::Bearer(&nobody.token);
    let mut problems = Vec::new();
    let mut admin_routes = Vec::new();
    for route in routes().iter().filter(|r| !r.is_public()) {
        let answer = call(&client, route, &route.sample(), auth).await;
        if route.admin {
            admin_routes.push(route.to_string());
            if answer.status != StatusCode::FORBIDDEN
                || answer.body["error"]["code"] != "admin_only"
            {
                problems.push(format!(
                    "admin-only {route}: expected 403 admin_only: {answer:?}"
                ));
            }
        } else if answer.status == StatusCode::UNAUTHORIZED || answer.status.is_server_error() {
            problems.push(format!(
                "{route} with a valid key of role nobody: {answer:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for expected in [
        "GET /api/mcp/servers",
        "POST /api/config/reload",
        "POST /api/models/reload",
        "GET /api/keys",
        "POST /api/keys",
        "DELETE /api/keys/{id}",
        "GET /api/audit",
    ] {
        assert!(
            admin_routes.iter().any(|r| r == expected),
            "{expected} is not in the admin-only group: {admin_routes:?}"
        );
    }

    // The lists are empty for this role, and are not empty for everyone.
    for (path, field, item_name) in [
        ("/api/tools", "tools", "name"),
        ("/api/models", "models", "name"),
        ("/api/agents", "agents", "name"),
        ("/v1/models", "data", "id"),
    ] {
        let mine = client.call(Method::GET, path, auth, None).await;
        assert_eq!(mine.status, StatusCode::OK, "GET {path}: {mine:?}");
        assert_eq!(
            mine.body[field],
            json!([]),
            "role nobody sees nothing in {path}"
        );
        let all = client.admin_get(path).await;
        assert!(
            !super::names(&all[field], item_name).is_empty(),
            "the admin sees something in {path}, so the empty list is the role's doing: {all:#}"
        );
    }

    // And it can start nothing, by any path.
    let chat = client
        .call(
            Method::POST,
            "/api/chat",
            auth,
            Some(json!({ "message": "hello", "model": "fake" })),
        )
        .await;
    assert_eq!(chat.status, StatusCode::FORBIDDEN, "{chat:?}");
    let completion = client
        .call(
            Method::POST,
            "/v1/chat/completions",
            auth,
            Some(json!({ "model": "fake", "messages": [{ "role": "user", "content": "hi" }] })),
        )
        .await;
    assert_eq!(
        (completion.status, &completion.body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("model_not_allowed")),
        "{completion:?}"
    );
    let invoke = client
        .call(
            Method::POST,
            "/api/tools/calc__evaluate/invoke",
            auth,
            Some(json!({ "expression": "1+1" })),
        )
        .await;
    assert_eq!(invoke.status, StatusCode::FORBIDDEN, "{invoke:?}");
}
