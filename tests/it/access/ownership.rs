//! Conversations and runs belong to the user who started them. Another user gets the same 404
//! as for an id that does not exist, on every id-taking route of the route table (a finished
//! run and a running one), and never finds them in a listing, even asking by user name; the
//! administrator sees everyone's and filters by user; and nothing the other user tried
//! changed, cancelled or deleted anything.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::table::{Route, routes};
use super::{
    Answer, Auth, Client, Key, chat_to_the_end, create_key, names, run_with_status,
    script_slow_reply, start_chat,
};

/// Alice's ids that a route can take.
struct Owned<'a> {
    run: &'a str,
    conversation: &'a str,
    key: &'a str,
}

/// Which of alice's ids `route` takes for `{id}`. Panics for a route this test does not know,
/// so a new id-taking route has to be placed here before the suite passes.
fn id_for<'a>(route: &Route, owned: &Owned<'a>) -> &'a str {
    let path = route.path.as_str();
    if path.starts_with("/api/runs/") {
        owned.run
    } else if path.starts_with("/api/conversations/") {
        owned.conversation
    } else if path.starts_with("/api/keys/") {
        owned.key
    } else {
        panic!(
            "{route} takes an id the ownership test does not know; say in access/ownership.rs \
             whose id it takes"
        )
    }
}

/// The API routes with an `{id}`. Pages are left out: `/debug/runs/{id}` is the same static
/// shell for every id (its script reads the run through `/api/runs/{id}`, which is covered).
fn id_routes() -> Vec<Route> {
    let id_routes: Vec<Route> = routes()
        .into_iter()
        .filter(|r| !r.is_page() && r.path.contains("{id}"))
        .collect();
    assert!(
        id_routes.len() >= 7,
        "expected at least the 7 id-taking API routes of today: {id_routes:#?}"
    );
    id_routes
}

/// A body every id route accepts (renaming reads `title`; the others read nothing).
fn body(route: &Route) -> Option<Value> {
    route.body().map(|_| json!({ "title": "renamed by bob" }))
}

/// An answer with its request id left out and `id` written as `ID`, to compare a refusal for
/// alice's id with one for an id that does not exist.
fn normalized(answer: &Answer, id: &str) -> (StatusCode, Value) {
    let mut body = answer.body.clone();
    if let Some(error) = body.get_mut("error").and_then(Value::as_object_mut) {
        error.remove("request_id");
    }
    let text = body.to_string().replace(id, "ID");
    (answer.status, serde_json::from_str(&text).expect("JSON"))
}

/// Bob calls every id route with alice's ids: 404 like a missing id (403 on admin routes).
async fn bob_is_refused_everywhere(client: &Client, bob: &Key, owned: &Owned<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    for route in id_routes() {
        let id = id_for(&route, owned);
        let answer = client
            .call(
                route.method.clone(),
                &route.with_id(id),
                Auth::Bearer(&bob.token),
                body(&route),
            )
            .await;
        let expected = if route.admin {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NOT_FOUND
        };
        if answer.status != expected {
            problems.push(format!(
                "bob on {route} with alice's id: expected {expected}: {answer:?}"
            ));
            continue;
        }
        // The same answer as for an id nobody has: nothing says alice's exists.
        let fresh = switchboard::domain::RunId::new().to_string();
        let missing = client
            .call(
                route.method.clone(),
                &route.with_id(&fresh),
                Auth::Bearer(&bob.token),
                body(&route),
            )
            .await;
        if normalized(&answer, id) != normalized(&missing, &fresh) {
            problems.push(format!(
                "bob on {route}: alice's id answers {answer:?}\n  but a missing id answers {missing:?}"
            ));
        }
    }
    problems
}

/// Poll `GET /api/conversations/{id}` as `auth` until it has `n` messages (the answer is
/// stored just after the run's end is sent); 404 at any point fails at once.
async fn conversation_with(client: &Client, auth: Auth<'_>, id: &str, n: usize) -> Value {
    let deadline = std::time::Instant::now() + super::PATIENCE;
    loop {
        let answer = client
            .call(Method::GET, &format!("/api/conversations/{id}"), auth, None)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "conversation {id}: {answer:?}"
        );
        if answer.body["messages"].as_array().map(Vec::len) == Some(n) {
            return answer.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "conversation {id} never had {n} messages: {answer:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The run ids of `GET path` as `auth`, and the users they belong to.
async fn listed_runs(client: &Client, auth: Auth<'_>, path: &str) -> (Vec<String>, Vec<Value>) {
    let page = client.call(Method::GET, path, auth, None).await;
    assert_eq!(page.status, StatusCode::OK, "GET {path}: {page:?}");
    let users = page.body["runs"]
        .as_array()
        .map(|runs| runs.iter().map(|r| r["user"].clone()).collect())
        .unwrap_or_default();
    (names(&page.body["runs"], "id"), users)
}

#[tokio::test]
async fn another_user_gets_404_for_every_id_route_and_sees_nothing() {
    let client = Client::shared();
    let alice = create_key(&client, "alice", "user", None).await;
    let bob = create_key(&client, "bob", "user", None).await;
    let (as_alice, as_bob) = (Auth::Bearer(&alice.token), Auth::Bearer(&bob.token));

    let (run, conversation) = chat_to_the_end(&client, as_alice, "alice's private plan").await;
    let (bob_run, _) = chat_to_the_end(&client, as_bob, "bob's own question").await;
    run_with_status(&client, as_alice, &run, "succeeded").await;
    script_slow_reply();
    let mut live = start_chat(
        &client,
        as_alice,
        json!({ "message": "alice's long question", "model": "slow" }),
    )
    .await;
    run_with_status(&client, as_alice, &live.run_id, "running").await;

    let mut problems = Vec::new();
    for owned in [
        Owned {
            run: &run,
            conversation: &conversation,
            key: &alice.id,
        },
        Owned {
            run: &live.run_id,
            conversation: &live.conversation_id,
            key: &alice.id,
        },
    ] {
        problems.extend(bob_is_refused_everywhere(&client, &bob, &owned).await);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Absent from bob's listings, even when he asks for alice's.
    for path in ["/api/runs", "/api/runs?user=alice", "/api/runs?limit=200"] {
        let (ids, users) = listed_runs(&client, as_bob, path).await;
        assert!(
            !ids.contains(&run) && !ids.contains(&live.run_id),
            "bob's GET {path} lists alice's runs: {ids:?}"
        );
        assert!(
            ids.contains(&bob_run),
            "bob's GET {path} lists his own run: {ids:?}"
        );
        assert!(
            users.iter().all(|u| u == "bob"),
            "bob's GET {path} lists only bob's runs: {users:?}"
        );
    }
    let bobs = client
        .call(Method::GET, "/api/conversations?limit=200", as_bob, None)
        .await;
    let conversations = names(&bobs.body["conversations"], "id");
    assert!(
        !conversations.contains(&conversation) && !conversations.contains(&live.conversation_id),
        "bob's conversations list alice's: {bobs:?}"
    );

    // The administrator sees both, and filters by user.
    let admin = Auth::Bearer(&super::shared().admin_key);
    let (all, _) = listed_runs(&client, admin, "/api/runs?limit=200").await;
    assert!(
        all.contains(&run) && all.contains(&bob_run),
        "the admin sees alice's and bob's runs: {all:?}"
    );
    let (alices, users) = listed_runs(&client, admin, "/api/runs?user=alice&limit=200").await;
    assert!(
        alices.contains(&run) && alices.contains(&live.run_id) && !alices.contains(&bob_run),
        "the admin's ?user=alice lists alice's runs only: {alices:?}"
    );
    assert!(users.iter().all(|u| u == "alice"), "{users:?}");

    // Nothing bob did changed anything of alice's.
    let finished = run_with_status(&client, as_alice, &run, "succeeded").await;
    assert_eq!(finished["user_message"], "alice's private plan");
    let kept = conversation_with(&client, as_alice, &conversation, 2).await;
    assert_eq!(
        kept["title"], "alice's private plan",
        "bob's PATCH did not rename it: {kept:#}"
    );
    let still = client
        .call(
            Method::GET,
            &format!("/api/conversations/{}", live.conversation_id),
            as_alice,
            None,
        )
        .await;
    assert_eq!(still.status, StatusCode::OK, "{still:?}");
    run_with_status(&client, as_alice, &live.run_id, "running").await;
    let session = client
        .call(Method::GET, "/api/session", as_alice, None)
        .await;
    assert_eq!(
        session.status,
        StatusCode::OK,
        "bob's DELETE /api/keys/{{id}} did not revoke alice's key: {session:?}"
    );

    // Alice may cancel her own run (which also proves bob's cancel was refused, not lost).
    let cancel = client
        .call(
            Method::POST,
            &format!("/api/runs/{}/cancel", live.run_id),
            as_alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::ACCEPTED, "{cancel:?}");
    live.events.until("run_finished").await;
}
