//! The store, one suite on both backends: SQLite (a fresh file per test) and Postgres (a fresh
//! schema per test in the database named by `SWITCHBOARD_TEST_POSTGRES_URL`).
//!
//! Without that variable the Postgres variants are skipped with a note, except under CI (the `CI`
//! variable set), where they fail: CI must exercise Postgres.

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use switchboard::domain::{
    ConversationId, RunEvent, RunId, RunStatus, StepIndex, StepKind, StepStatus, TokenUsage,
    ToolProgress, UnixMillis,
};
use switchboard::store::{
    MAX_STORED_JSON_BYTES, PREVIEW_BYTES, RunDetail, RunFilter, RunSummary, StepEdge, StepRecord,
    Store, StoreError, StoreOptions,
};

use crate::support::testdb::TestDb;

/// A fixed clock: events carry their own times.
const T0: UnixMillis = 1_700_000_000_000;

crate::on_both_backends!(
    records_a_full_run,
    a_retried_step_keeps_one_row,
    a_bad_event_is_counted_and_spares_its_batch,
    finishing_a_run_closes_its_running_steps,
    lists_runs_with_filters_and_pages,
    conversations_and_messages,
    caps_large_step_payloads,
    reopening_after_a_crash_interrupts_running_runs,
    leases_keep_live_runs_and_free_orphaned_ones,
    concurrent_runs_lose_nothing,
    throughput,
    a_waiting_approval_marks_its_step_and_run_until_decided,
    pins_are_kept_and_updated,
    a_checkpointed_run_is_claimed_not_interrupted,
    mcp_sessions_are_kept_replaced_and_ended,
);

/// `/mcp` sessions (gateway/sessions.rs): what one replica saves, another reads, until ended.
async fn mcp_sessions_are_kept_replaced_and_ended(db: &TestDb) {
    let store = db.open().await;
    let other = db.open().await;
    assert_eq!(store.load_mcp_session("s-1").await.unwrap(), None);
    store
        .save_mcp_session("s-1", "{\"v\":1}".to_owned())
        .await
        .unwrap();
    store
        .save_mcp_session("s-2", "{\"v\":2}".to_owned())
        .await
        .unwrap();
    assert_eq!(
        other.load_mcp_session("s-1").await.unwrap().as_deref(),
        Some("{\"v\":1}")
    );
    store
        .save_mcp_session("s-1", "{\"v\":3}".to_owned())
        .await
        .unwrap();
    assert_eq!(
        other.load_mcp_session("s-1").await.unwrap().as_deref(),
        Some("{\"v\":3}")
    );
    other.delete_mcp_session("s-1").await.unwrap();
    assert_eq!(store.load_mcp_session("s-1").await.unwrap(), None);
    assert_eq!(
        store.load_mcp_session("s-2").await.unwrap().as_deref(),
        Some("{\"v\":2}")
    );
}

/// Another process holds the SQLite write lock for longer than the busy timeout (5 s): writes
/// wait it out instead of failing, and reads go on meanwhile (WAL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_wait_out_a_long_foreign_lock() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let conversation = store.create_conversation("locked", None).await.unwrap();
    let options = SqliteConnectOptions::from_str(&db.url).unwrap();
    let mut other = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE; DELETE FROM conversations WHERE id = 'none';")
        .execute(&mut other)
        .await
        .unwrap();

    let run_id = RunId::new();
    record_all(&store, &small_run(run_id, T0));
    let append = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .append_message(conversation.id, "user", "hello", Some(run_id))
                .await
        }
    });
    let read_started = Instant::now();
    store.list_runs(&RunFilter::default()).await.unwrap();
    store
        .get_conversation(switchboard::store::Scope::All, conversation.id)
        .await
        .unwrap();
    assert!(
        read_started.elapsed() < Duration::from_secs(2),
        "reads waited on the lock"
    );

    tokio::time::sleep(Duration::from_secs(6)).await;
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    append
        .await
        .unwrap()
        .expect("the append waited for the lock");
    store.flush().await;
    assert_eq!(store.write_failures(), 0);
    let run = store
        .get_run(switchboard::store::Scope::All, run_id)
        .await
        .unwrap();
    assert_eq!(
        (run.summary.status, run.steps.len()),
        (RunStatus::Succeeded, 5)
    );
    let detail = store
        .get_conversation(switchboard::store::Scope::All, conversation.id)
        .await
        .unwrap();
    assert_eq!(detail.messages.len(), 1);
}

fn run_started(run_id: RunId, conversation_id: ConversationId, at: UnixMillis) -> RunEvent {
    RunEvent::RunStarted {
        run_id,
        conversation_id: Some(conversation_id),
        agent: Some("helper".to_owned()),
        model: "fake-model".to_owned(),
        user_message: "what time is it?".to_owned(),
        trace_id: None,
        user: None,
        at,
    }
}

fn step_started(
    run_id: RunId,
    step: StepIndex,
    kind: StepKind,
    depends_on: &[StepIndex],
    at: UnixMillis,
) -> RunEvent {
    RunEvent::StepStarted {
        run_id,
        step,
        kind,
        name: format!("{}-{step}", kind.as_str()),
        server: (kind == StepKind::Act).then(|| "clock".to_owned()),
        input: json!({"step": step}),
        summary: None,
        depends_on: depends_on.to_vec(),
        attempt: 1,
        at,
    }
}

fn step_finished(run_id: RunId, step: StepIndex, status: StepStatus, at: UnixMillis) -> RunEvent {
    RunEvent::StepFinished {
        run_id,
        step,
        status,
        output: Some(json!({"done": step})),
        summary: None,
        error: None,
        usage: None,
        at,
    }
}

fn run_finished(run_id: RunId, status: RunStatus, at: UnixMillis) -> RunEvent {
    RunEvent::RunFinished {
        run_id,
        status,
        answer: Some("noon".to_owned()),
        error: None,
        usage: TokenUsage::default(),
        at,
    }
}

/// The events of a small finished run (plan → two acts → observe → answer), starting at `at`.
fn small_run(run_id: RunId, at: UnixMillis) -> Vec<RunEvent> {
    let conversation = ConversationId::new();
    let mut events = vec![run_started(run_id, conversation, at)];
    let shape: [(StepKind, &[StepIndex]); 5] = [
        (StepKind::Plan, &[]),
        (StepKind::Act, &[0]),
        (StepKind::Act, &[0]),
        (StepKind::Observe, &[1, 2]),
        (StepKind::Answer, &[3]),
    ];
    for (step, (kind, deps)) in (0..).zip(shape) {
        events.push(step_started(run_id, step, kind, deps, at + 1));
        events.push(step_finished(run_id, step, StepStatus::Succeeded, at + 2));
    }
    events.push(run_finished(run_id, RunStatus::Succeeded, at + 3));
    events
}

fn record_all(store: &Store, events: &[RunEvent]) {
    for event in events {
        store.record(event);
    }
}

async fn records_a_full_run(db: &TestDb) {
    let store = db.open().await;
    let run_id = RunId::new();
    let conversation = ConversationId::new();
    let usage = |input_tokens, output_tokens| TokenUsage {
        input_tokens,
        output_tokens,
    };
    let events = vec![
        RunEvent::RunStarted {
            run_id,
            conversation_id: Some(conversation),
            agent: Some("helper".to_owned()),
            model: "fake-model".to_owned(),
            user_message: "What time is it in Paris and in Tokyo?".to_owned(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            user: None,
            at: T0,
        },
        RunEvent::StepStarted {
            run_id,
            step: 0,
            kind: StepKind::Plan,
            name: "fake-model".to_owned(),
            server: None,
            input: json!({"messages": [{"role": "user", "content": "What time…"}]}),
            summary: None,
            depends_on: vec![],
            attempt: 1,
            at: T0 + 1,
        },
        RunEvent::TokenDelta {
            run_id,
            step: 0,
            text: "thinking".to_owned(),
        },
        RunEvent::StepFinished {
            run_id,
            step: 0,
            status: StepStatus::Succeeded,
            output: Some(json!({"tool_calls": ["clock__now", "clock__now"]})),
            summary: None,
            error: None,
            usage: Some(usage(100, 20)),
            at: T0 + 10,
        },
        RunEvent::StepStarted {
            run_id,
            step: 1,
            kind: StepKind::Act,
            name: "clock__now".to_owned(),
            server: Some("clock".to_owned()),
            input: json!({"tz": "Europe/Paris"}),
            summary: None,
            depends_on: vec![0],
            attempt: 1,
            at: T0 + 11,
        },
        RunEvent::StepStarted {
            run_id,
            step: 2,
            kind: StepKind::Act,
            name: "clock__now".to_owned(),
            server: Some("clock".to_owned()),
            input: json!({"tz": "Asia/Tokyo"}),
            summary: None,
            depends_on: vec![0],
            attempt: 1,
            at: T0 + 12,
        },
        RunEvent::ToolProgress {
            run_id,
            step: 2,
            progress: ToolProgress {
                progress: 0.5,
                total: Some(1.0),
                message: None,
            },
        },
        RunEvent::StepFinished {
            run_id,
            step: 2,
            status: StepStatus::Failed,
            output: None,
            summary: None,
            error: Some("tool call timed out after 30000 ms".to_owned()),
            usage: None,
            at: T0 + 20,
        },
        RunEvent::StepFinished {
            run_id,
            step: 1,
            status: StepStatus::Succeeded,
            output: Some(json!({"content": [{"type": "text", "text": "12:00"}]})),
            summary: None,
            error: None,
            usage: None,
            at: T0 + 25,
        },
        RunEvent::StepStarted {
            run_id,
            step: 3,
            kind: StepKind::Observe,
            name: "observe".to_owned(),
            server: None,
            input: json!({"results": 2}),
            summary: None,
            depends_on: vec![1, 2],
            attempt: 1,
            at: T0 + 26,
        },
        RunEvent::StepFinished {
            run_id,
            step: 3,
            status: StepStatus::Succeeded,
            output: Some(json!("folded")),
            summary: None,
            error: None,
            usage: None,
            at: T0 + 27,
        },
        RunEvent::RunFinished {
            run_id,
            status: RunStatus::Succeeded,
            answer: Some("Noon in Paris; Tokyo did not answer.".to_owned()),
            error: None,
            usage: usage(130, 31),
            at: T0 + 40,
        },
    ];
    record_all(&store, &events);
    store.flush().await;

    let step = |index, kind: StepKind, name: &str, server: Option<&str>, status, times| {
        let (started_at, finished_at): (i64, i64) = times;
        StepRecord {
            index,
            kind,
            name: name.to_owned(),
            server: server.map(str::to_owned),
            status,
            started_at,
            finished_at: Some(finished_at),
            duration_ms: Some(finished_at - started_at),
            input: Value::Null,
            output: None,
            error: None,
            input_tokens: None,
            output_tokens: None,
            attempt: 1,
        }
    };
    let summary = RunSummary {
        id: run_id,
        conversation_id: Some(conversation),
        user: None,
        agent: Some("helper".to_owned()),
        model: "fake-model".to_owned(),
        status: RunStatus::Succeeded,
        user_message: "What time is it in Paris and in Tokyo?".to_owned(),
        answer: Some("Noon in Paris; Tokyo did not answer.".to_owned()),
        error: None,
        started_at: T0,
        finished_at: Some(T0 + 40),
        duration_ms: Some(40),
        step_count: 4,
        tool_call_count: 2,
        input_tokens: 130,
        output_tokens: 31,
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
    };
    let expected = RunDetail {
        summary: summary.clone(),
        steps: vec![
            StepRecord {
                input: json!({"messages": [{"role": "user", "content": "What time…"}]}),
                output: Some(json!({"tool_calls": ["clock__now", "clock__now"]})),
                input_tokens: Some(100),
                output_tokens: Some(20),
                ..step(
                    0,
                    StepKind::Plan,
                    "fake-model",
                    None,
                    StepStatus::Succeeded,
                    (T0 + 1, T0 + 10),
                )
            },
            StepRecord {
                input: json!({"tz": "Europe/Paris"}),
                output: Some(json!({"content": [{"type": "text", "text": "12:00"}]})),
                ..step(
                    1,
                    StepKind::Act,
                    "clock__now",
                    Some("clock"),
                    StepStatus::Succeeded,
                    (T0 + 11, T0 + 25),
                )
            },
            StepRecord {
                input: json!({"tz": "Asia/Tokyo"}),
                error: Some("tool call timed out after 30000 ms".to_owned()),
                ..step(
                    2,
                    StepKind::Act,
                    "clock__now",
                    Some("clock"),
                    StepStatus::Failed,
                    (T0 + 12, T0 + 20),
                )
            },
            StepRecord {
                input: json!({"results": 2}),
                output: Some(json!("folded")),
                ..step(
                    3,
                    StepKind::Observe,
                    "observe",
                    None,
                    StepStatus::Succeeded,
                    (T0 + 26, T0 + 27),
                )
            },
        ],
        edges: vec![
            StepEdge { from: 0, to: 1 },
            StepEdge { from: 0, to: 2 },
            StepEdge { from: 1, to: 3 },
            StepEdge { from: 2, to: 3 },
        ],
    };
    assert_eq!(
        store
            .get_run(switchboard::store::Scope::All, run_id)
            .await
            .unwrap(),
        expected
    );
    // The listing shows the same summary.
    let page = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(page.runs, vec![summary]);
    assert_eq!(page.next_cursor, None);
    assert!(matches!(
        store
            .get_run(switchboard::store::Scope::All, RunId::new())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.write_failures(), 0);
}

async fn a_retried_step_keeps_one_row(db: &TestDb) {
    let store = db.open().await;
    let run_id = RunId::new();
    store.record(&run_started(run_id, ConversationId::new(), T0));
    store.record(&step_started(run_id, 0, StepKind::Plan, &[], T0));
    store.record(&step_finished(run_id, 0, StepStatus::Succeeded, T0 + 1));
    store.record(&step_started(run_id, 1, StepKind::Act, &[0], T0 + 2));
    store.record(&RunEvent::StepFinished {
        run_id,
        step: 1,
        status: StepStatus::Failed,
        output: None,
        summary: None,
        error: Some("connection reset".to_owned()),
        usage: None,
        at: T0 + 3,
    });
    let RunEvent::StepStarted { input, .. } = step_started(run_id, 1, StepKind::Act, &[0], 0)
    else {
        unreachable!()
    };
    store.record(&RunEvent::StepStarted {
        run_id,
        step: 1,
        kind: StepKind::Act,
        name: "act-1".to_owned(),
        server: Some("clock".to_owned()),
        input,
        summary: None,
        depends_on: vec![0],
        attempt: 2,
        at: T0 + 4,
    });
    store.flush().await;

    let run = store
        .get_run(switchboard::store::Scope::All, run_id)
        .await
        .unwrap();
    assert_eq!(run.steps.len(), 2);
    let retried = &run.steps[1];
    assert_eq!(
        (retried.attempt, retried.status, retried.started_at),
        (2, StepStatus::Running, T0 + 4)
    );
    assert_eq!((retried.finished_at, &retried.error), (None, &None));
    assert_eq!(run.edges, vec![StepEdge { from: 0, to: 1 }]);
    assert_eq!(run.summary.step_count, 2);
    assert_eq!(store.write_failures(), 0);
}

async fn a_bad_event_is_counted_and_spares_its_batch(db: &TestDb) {
    let store = db.open().await;
    let good = RunId::new();
    let mut events = small_run(good, T0);
    // A step of a run that was never started, in the middle of a good run's events.
    events.insert(3, step_started(RunId::new(), 0, StepKind::Plan, &[], T0));
    record_all(&store, &events);
    store.flush().await;

    assert_eq!(store.write_failures(), 1);
    let run = store
        .get_run(switchboard::store::Scope::All, good)
        .await
        .unwrap();
    assert_eq!(run.summary.status, RunStatus::Succeeded);
    assert_eq!(run.steps.len(), 5);
    assert!(run.steps.iter().all(|s| s.status == StepStatus::Succeeded));
}

async fn finishing_a_run_closes_its_running_steps(db: &TestDb) {
    let store = db.open().await;
    let run_id = RunId::new();
    record_all(
        &store,
        &[
            run_started(run_id, ConversationId::new(), T0),
            step_started(run_id, 0, StepKind::Act, &[], T0 + 1),
            step_started(run_id, 1, StepKind::Act, &[], T0 + 1),
            step_finished(run_id, 0, StepStatus::Succeeded, T0 + 2),
            run_finished(run_id, RunStatus::Cancelled, T0 + 5),
        ],
    );
    store.flush().await;
    let run = store
        .get_run(switchboard::store::Scope::All, run_id)
        .await
        .unwrap();
    assert_eq!(run.summary.status, RunStatus::Cancelled);
    let statuses: Vec<_> = run
        .steps
        .iter()
        .map(|s| (s.status, s.finished_at))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (StepStatus::Succeeded, Some(T0 + 2)),
            (StepStatus::Cancelled, Some(T0 + 5))
        ]
    );
}

async fn lists_runs_with_filters_and_pages(db: &TestDb) {
    let store = db.open().await;
    // Twelve runs, one second apart: agents a/b alternate, models m1/m2/m3 rotate, every third
    // run is still running, run 7 failed.
    let mut ids = Vec::new();
    for i in 0..12_i64 {
        let run_id = RunId::new();
        ids.push(run_id);
        let at = T0 + i * 1000;
        store.record(&RunEvent::RunStarted {
            run_id,
            conversation_id: Some(ConversationId::new()),
            agent: Some(if i % 2 == 0 { "a" } else { "b" }.to_owned()),
            model: format!("m{}", i % 3 + 1),
            user_message: format!(
                "question {i}: what about 100%_OFF deals? {}",
                "x".repeat(300)
            ),
            trace_id: None,
            user: None,
            at,
        });
        if i % 3 != 0 {
            let status = if i == 7 {
                RunStatus::Failed
            } else {
                RunStatus::Succeeded
            };
            store.record(&run_finished(run_id, status, at + 500));
        }
    }
    // A run whose message matches the search only case-insensitively and literally.
    let odd = RunId::new();
    store.record(&RunEvent::RunStarted {
        run_id: odd,
        conversation_id: Some(ConversationId::new()),
        agent: None,
        model: "m9".to_owned(),
        user_message: "Weather in ZÜRICH".to_owned(),
        trace_id: None,
        user: None,
        at: T0 - 1000,
    });
    store.flush().await;
    let newest_first: Vec<RunId> = ids.iter().rev().copied().collect();

    let list = |filter: RunFilter| {
        let store = store.clone();
        async move {
            let page = store.list_runs(&filter).await.unwrap();
            page.runs.iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    let pick = |indexes: &[usize]| indexes.iter().rev().map(|&i| ids[i]).collect::<Vec<_>>();

    let mut all = newest_first.clone();
    all.push(odd);
    assert_eq!(list(RunFilter::default()).await, all);
    let running = RunFilter {
        status: Some(RunStatus::Running),
        ..RunFilter::default()
    };
    let mut running_ids = pick(&[0, 3, 6, 9]);
    running_ids.push(odd);
    assert_eq!(list(running).await, running_ids);
    let failed = RunFilter {
        status: Some(RunStatus::Failed),
        ..RunFilter::default()
    };
    assert_eq!(list(failed).await, pick(&[7]));
    let agent_b = RunFilter {
        agent: Some("b".to_owned()),
        ..RunFilter::default()
    };
    assert_eq!(list(agent_b).await, pick(&[1, 3, 5, 7, 9, 11]));
    let model_and_agent = RunFilter {
        agent: Some("a".to_owned()),
        model: Some("m1".to_owned()),
        ..RunFilter::default()
    };
    assert_eq!(list(model_and_agent).await, pick(&[0, 6]));
    let window = RunFilter {
        since: Some(T0 + 2000),
        until: Some(T0 + 5000),
        ..RunFilter::default()
    };
    assert_eq!(list(window).await, pick(&[2, 3, 4]));
    let search = |text: &str| RunFilter {
        search: Some(text.to_owned()),
        ..RunFilter::default()
    };
    assert_eq!(list(search("QUESTION 1")).await, pick(&[1, 10, 11]));
    assert_eq!(list(search("100%_off")).await.len(), 12);
    assert_eq!(list(search("100%%")).await, Vec::<RunId>::new());
    assert_eq!(list(search("weather in z")).await, vec![odd]);

    // Pages of five: 5 + 5 + 3, in order, each cursor leading to the next page.
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_runs(&RunFilter {
                limit: 5,
                cursor: cursor.take(),
                ..RunFilter::default()
            })
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.runs.iter().map(|r| r.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!((pages, seen), (3, all));
    // Pages combine with filters.
    let page = store
        .list_runs(&RunFilter {
            agent: Some("b".to_owned()),
            limit: 4,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.runs.len(), 4);
    let rest = store
        .list_runs(&RunFilter {
            agent: Some("b".to_owned()),
            limit: 4,
            cursor: page.next_cursor,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        rest.runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        pick(&[1, 3])
    );
    assert_eq!(rest.next_cursor, None);

    let bad_cursor = RunFilter {
        cursor: Some("not a cursor".to_owned()),
        ..RunFilter::default()
    };
    assert!(matches!(
        store.list_runs(&bad_cursor).await,
        Err(StoreError::Invalid(_))
    ));

    // Listings carry excerpts; the detail has the whole message.
    let page = store.list_runs(&RunFilter::default()).await.unwrap();
    let excerpt = &page.runs[0].user_message;
    assert_eq!(excerpt.chars().count(), 200);
    assert!(excerpt.ends_with('…'), "{excerpt}");
    let detail = store
        .get_run(switchboard::store::Scope::All, ids[11])
        .await
        .unwrap();
    assert!(detail.summary.user_message.ends_with(&"x".repeat(300)));
}

async fn conversations_and_messages(db: &TestDb) {
    let store = db.open().await;
    let first = store.create_conversation("first", None).await.unwrap();
    let second = store.create_conversation("second", None).await.unwrap();
    let third = store.create_conversation("third", None).await.unwrap();
    assert_eq!(first.created_at, first.updated_at);

    let titles = |records: Vec<switchboard::store::ConversationRecord>| {
        records.into_iter().map(|c| c.title).collect::<Vec<_>>()
    };
    assert_eq!(
        titles(
            store
                .list_conversations(switchboard::store::Scope::All, 10, None)
                .await
                .unwrap()
        ),
        ["third", "second", "first"]
    );
    assert_eq!(
        titles(
            store
                .list_conversations(switchboard::store::Scope::All, 1, Some(third.id))
                .await
                .unwrap()
        ),
        ["second"]
    );
    assert_eq!(
        titles(
            store
                .list_conversations(switchboard::store::Scope::All, 10, Some(first.id))
                .await
                .unwrap()
        ),
        Vec::<String>::new()
    );

    // Messages come back in the order they were written, interleaved with the run they name.
    let run_id = RunId::new();
    store
        .append_message(second.id, "user", "hello", Some(run_id))
        .await
        .unwrap();
    store.record(&run_started(run_id, second.id, T0));
    store
        .append_message(second.id, "assistant", "hi there", Some(run_id))
        .await
        .unwrap();
    store
        .append_message(second.id, "user", "and now?", None)
        .await
        .unwrap();
    let detail = store
        .get_conversation(switchboard::store::Scope::All, second.id)
        .await
        .unwrap();
    let messages: Vec<_> = detail
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_str(), m.run_id))
        .collect();
    assert_eq!(
        messages,
        [
            ("user", "hello", Some(run_id)),
            ("assistant", "hi there", Some(run_id)),
            ("user", "and now?", None)
        ]
    );
    assert!(detail.conversation.updated_at >= second.created_at);
    assert!(
        detail
            .messages
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at)
    );

    store
        .rename_conversation(switchboard::store::Scope::All, second.id, "renamed")
        .await
        .unwrap();
    assert_eq!(
        store
            .get_conversation(switchboard::store::Scope::All, second.id)
            .await
            .unwrap()
            .conversation
            .title,
        "renamed"
    );

    // Errors a caller can act on.
    let missing = ConversationId::new();
    assert!(matches!(
        store
            .get_conversation(switchboard::store::Scope::All, missing)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .rename_conversation(switchboard::store::Scope::All, missing, "x")
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.append_message(missing, "user", "x", None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.append_message(second.id, "system", "x", None).await,
        Err(StoreError::Invalid(_))
    ));

    // Deleting takes the messages; the run stays, detached.
    store
        .delete_conversation(switchboard::store::Scope::All, second.id)
        .await
        .unwrap();
    assert!(matches!(
        store
            .get_conversation(switchboard::store::Scope::All, second.id)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .delete_conversation(switchboard::store::Scope::All, second.id)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        titles(
            store
                .list_conversations(switchboard::store::Scope::All, 0, None)
                .await
                .unwrap()
        ),
        ["third", "first"]
    );
    let run = store
        .get_run(switchboard::store::Scope::All, run_id)
        .await
        .unwrap();
    assert_eq!(run.summary.conversation_id, None);
    // The other conversations are untouched.
    assert_eq!(
        store
            .get_conversation(switchboard::store::Scope::All, first.id)
            .await
            .unwrap()
            .messages,
        vec![]
    );
    assert_eq!(store.write_failures(), 0);
}

async fn caps_large_step_payloads(db: &TestDb) {
    let store = db.open().await;
    let run_id = RunId::new();
    let big_input = json!({"text": "é".repeat(60 * 1024)});
    let big_output = json!({"rows": vec!["0123456789"; 10_000]});
    let fits = json!("x".repeat(MAX_STORED_JSON_BYTES - 2));
    store.record(&run_started(run_id, ConversationId::new(), T0));
    store.record(&RunEvent::StepStarted {
        run_id,
        step: 0,
        kind: StepKind::Act,
        name: "files__read".to_owned(),
        server: Some("files".to_owned()),
        input: big_input.clone(),
        summary: None,
        depends_on: vec![],
        attempt: 1,
        at: T0,
    });
    store.record(&RunEvent::StepFinished {
        run_id,
        step: 0,
        status: StepStatus::Succeeded,
        output: Some(big_output.clone()),
        summary: None,
        error: None,
        usage: None,
        at: T0 + 1,
    });
    store.record(&step_started(run_id, 1, StepKind::Act, &[], T0));
    store.record(&RunEvent::StepFinished {
        run_id,
        step: 1,
        status: StepStatus::Failed,
        output: Some(fits.clone()),
        summary: None,
        error: Some("e".repeat(100_000)),
        usage: None,
        at: T0 + 1,
    });
    store.flush().await;

    let run = store
        .get_run(switchboard::store::Scope::All, run_id)
        .await
        .unwrap();
    for (stored, original) in [
        (&run.steps[0].input, &big_input),
        (run.steps[0].output.as_ref().unwrap(), &big_output),
    ] {
        let original = original.to_string();
        assert!(original.len() > MAX_STORED_JSON_BYTES);
        assert_eq!(stored["truncated"], json!(true));
        assert_eq!(stored["original_bytes"], json!(original.len()));
        let preview = stored["preview"].as_str().unwrap();
        assert!(preview.len() <= PREVIEW_BYTES && preview.len() > PREVIEW_BYTES - 4);
        assert!(original.starts_with(preview));
        assert!(stored.to_string().len() < PREVIEW_BYTES * 2);
    }
    assert_eq!(run.steps[1].output, Some(fits));
    let error = run.steps[1].error.as_deref().unwrap();
    assert!(error.len() < 20_000 && error.ends_with("100000 bytes in all]"));
}

async fn reopening_after_a_crash_interrupts_running_runs(db: &TestDb) {
    let crashed = RunId::new();
    let finished = RunId::new();
    {
        let store = db.open().await;
        record_all(&store, &small_run(finished, T0));
        record_all(
            &store,
            &[
                run_started(crashed, ConversationId::new(), T0 + 10),
                step_started(crashed, 0, StepKind::Plan, &[], T0 + 11),
                RunEvent::StepFinished {
                    run_id: crashed,
                    step: 0,
                    status: StepStatus::Succeeded,
                    output: Some(json!({"plan": ["a"]})),
                    summary: None,
                    error: None,
                    usage: Some(TokenUsage {
                        input_tokens: 7,
                        output_tokens: 3,
                    }),
                    at: T0 + 12,
                },
                step_started(crashed, 1, StepKind::Act, &[0], T0 + 13),
            ],
        );
        store.flush().await;
        // Dropped without RunFinished: the process "crashed" here.
    }

    let (store, interrupted) = Store::open(&db.url).await.unwrap();
    assert_eq!(interrupted, 1);
    let run = store
        .get_run(switchboard::store::Scope::All, crashed)
        .await
        .unwrap();
    assert_eq!(run.summary.status, RunStatus::Interrupted);
    assert!(run.summary.finished_at.is_some());
    assert!(run.summary.error.is_some());
    assert_eq!(
        (run.summary.input_tokens, run.summary.output_tokens),
        (7, 3)
    );
    let plan = &run.steps[0];
    assert_eq!(plan.status, StepStatus::Succeeded);
    assert_eq!(plan.finished_at, Some(T0 + 12));
    assert_eq!(plan.output, Some(json!({"plan": ["a"]})));
    assert_eq!(plan.input_tokens, Some(7));
    let act = &run.steps[1];
    assert_eq!(act.status, StepStatus::Interrupted);
    assert!(act.finished_at.is_some());
    assert_eq!(run.edges, vec![StepEdge { from: 0, to: 1 }]);
    // The finished run is untouched.
    let other = store
        .get_run(switchboard::store::Scope::All, finished)
        .await
        .unwrap();
    assert_eq!(other.summary.status, RunStatus::Succeeded);
    assert_eq!(other.summary.finished_at, Some(T0 + 3));
    drop(store);

    // Nothing is left to interrupt the next time.
    let (_store, interrupted) = Store::open(&db.url).await.unwrap();
    assert_eq!(interrupted, 0);
}

/// Two processes on one database: the second neither interrupts the first one's live run when it
/// opens nor later while both renew and sweep; once the first stops renewing (a crash), the
/// second marks the run `interrupted` after the lease.
async fn leases_keep_live_runs_and_free_orphaned_ones(db: &TestDb) {
    let lease = Duration::from_millis(1_500);
    let options = StoreOptions { run_lease: lease };
    let (first, _) = Store::open_with(&db.url, options).await.unwrap();
    let live = RunId::new();
    let now = switchboard::domain::now_millis();
    record_all(&first, &[run_started(live, ConversationId::new(), now)]);
    first.flush().await;

    let (second, interrupted) = Store::open_with(&db.url, options).await.unwrap();
    assert_eq!(interrupted, 0, "a live process's run is not orphaned");
    // Both renew and sweep every 500 ms meanwhile.
    tokio::time::sleep(lease * 2).await;
    let run = second
        .get_run(switchboard::store::Scope::All, live)
        .await
        .unwrap();
    assert_eq!(run.summary.status, RunStatus::Running, "{run:?}");

    // The first process stops renewing: the second interrupts the run once the lease is over.
    drop(first);
    let stopped = Instant::now();
    loop {
        let run = second
            .get_run(switchboard::store::Scope::All, live)
            .await
            .unwrap();
        if run.summary.status == RunStatus::Interrupted {
            assert!(run.summary.error.is_some(), "{run:?}");
            break;
        }
        assert!(
            stopped.elapsed() < lease * 4,
            "still {:?} {:?} after the owner stopped",
            run.summary.status,
            stopped.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stopped.elapsed() >= lease / 2,
        "interrupted {:?} after the owner stopped, before its lease could run out",
        stopped.elapsed()
    );
}

async fn concurrent_runs_lose_nothing(db: &TestDb) {
    // Two handles on the same database, as two processes would have: on SQLite that is two
    // writers contending for the file lock, which must wait rather than fail.
    let first = db.open().await;
    let second = db.open().await;
    let mut tasks = Vec::new();
    for i in 0..50_i64 {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let run_id = RunId::new();
            for event in small_run(run_id, T0 + i) {
                store.record(&event);
                tokio::task::yield_now().await;
            }
            if i % 5 == 0 {
                // Reads interleave with the writes.
                store.list_runs(&RunFilter::default()).await.unwrap();
            }
            run_id
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    first.flush().await;
    second.flush().await;

    assert_eq!((first.write_failures(), second.write_failures()), (0, 0));
    let page = first
        .list_runs(&RunFilter {
            limit: 200,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.runs.len(), 50);
    for id in ids {
        let run = second
            .get_run(switchboard::store::Scope::All, id)
            .await
            .unwrap();
        assert_eq!(run.summary.status, RunStatus::Succeeded, "{id}");
        assert_eq!(run.steps.len(), 5, "{id}");
        assert_eq!(run.edges.len(), 5, "{id}");
        assert!(run.steps.iter().all(|s| s.status == StepStatus::Succeeded));
    }
}

async fn throughput(db: &TestDb) {
    const RUNS: i64 = 1000;
    let store = db.open().await;
    let events: Vec<RunEvent> = (0..RUNS)
        .flat_map(|i| small_run(RunId::new(), T0 + i))
        .collect();
    let started = Instant::now();
    record_all(&store, &events);
    let enqueued = started.elapsed();
    store.flush().await;
    let elapsed = started.elapsed();
    let rate = events.len() as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    eprintln!(
        "store throughput ({}): {} events in {:.0} ms = {rate:.0} events/s \
         (record() took {:.1} µs per event)",
        db.backend.name(),
        events.len(),
        elapsed.as_secs_f64() * 1000.0,
        enqueued.as_secs_f64() * 1e6 / events.len() as f64,
    );
    assert_eq!(store.write_failures(), 0);
    let page = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(page.runs.len(), 50);
    assert!(elapsed < Duration::from_secs(120));
}

fn approval(run_id: RunId, step: StepIndex, id: &str, at: UnixMillis) -> RunEvent {
    RunEvent::ApprovalRequested {
        run_id,
        step,
        request: switchboard::domain::ApprovalRequest {
            id: id.to_owned(),
            tool: "notes__add_note".to_owned(),
            server: "notes".to_owned(),
            arguments: json!({}),
            arguments_hash: String::new(),
            reason: "test".to_owned(),
            expires_at: at + 1000,
        },
        at,
    }
}

fn decided(run_id: RunId, step: StepIndex, id: &str, at: UnixMillis) -> RunEvent {
    RunEvent::ApprovalDecided {
        run_id,
        step,
        id: id.to_owned(),
        decision: switchboard::domain::ApprovalDecision::Expired,
        at,
    }
}

/// Two gated acts: the run is `waiting` until the last is decided, each step `waiting_approval`
/// until its own decision; a cancelled run closes a step still waiting.
async fn a_waiting_approval_marks_its_step_and_run_until_decided(db: &TestDb) {
    let store = db.open().await;
    let run_id = RunId::new();
    let get = |store: Store| async move {
        store.flush().await;
        store
            .get_run(switchboard::store::Scope::All, run_id)
            .await
            .unwrap()
    };
    record_all(
        &store,
        &[
            run_started(run_id, ConversationId::new(), T0),
            step_started(run_id, 0, StepKind::Act, &[], T0 + 1),
            step_started(run_id, 1, StepKind::Act, &[], T0 + 1),
            approval(run_id, 0, "ap-1", T0 + 2),
            approval(run_id, 1, "ap-2", T0 + 2),
            decided(run_id, 0, "ap-1", T0 + 3),
        ],
    );
    let run = get(store.clone()).await;
    assert_eq!(run.summary.status, RunStatus::Waiting);
    let statuses: Vec<_> = run.steps.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Running, StepStatus::WaitingApproval]);
    let filter = RunFilter {
        status: Some(RunStatus::Waiting),
        ..RunFilter::default()
    };
    let page = store.list_runs(&filter).await.unwrap();
    assert_eq!(page.runs.len(), 1, "the runs list filters on waiting");
    record_all(&store, &[decided(run_id, 1, "ap-2", T0 + 4)]);
    assert_eq!(get(store.clone()).await.summary.status, RunStatus::Running);
    record_all(
        &store,
        &[
            approval(run_id, 1, "ap-3", T0 + 5),
            run_finished(run_id, RunStatus::Cancelled, T0 + 6),
        ],
    );
    let run = get(store.clone()).await;
    assert_eq!(run.summary.status, RunStatus::Cancelled);
    assert_eq!(run.steps[1].status, StepStatus::Cancelled);
}

/// Pinned tool definitions survive a reopen, and an update replaces the row.
async fn pins_are_kept_and_updated(db: &TestDb) {
    use switchboard::domain::{Pin, Pinned};
    let store = db.open().await;
    let pin = |hash: &str, description: &str| Pin {
        hash: hash.to_owned(),
        definition: json!({"name": "note", "description": description}),
    };
    let first = Pinned {
        accepted: Some(pin("a1", "Adds a note.")),
        pending: None,
    };
    store
        .save_pins(vec![("s".to_owned(), "note".to_owned(), first.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.load_pins().await.unwrap(),
        [("s".to_owned(), "note".to_owned(), first)]
    );
    let held = Pinned {
        accepted: Some(pin("a1", "Adds a note.")),
        pending: Some(pin("b2", "Reads your keys.")),
    };
    let fresh = Pinned {
        accepted: None,
        pending: Some(pin("c3", "New.")),
    };
    store
        .save_pins(vec![
            ("s".to_owned(), "note".to_owned(), held.clone()),
            ("s".to_owned(), "extra".to_owned(), fresh.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.load_pins().await.unwrap(),
        [
            ("s".to_owned(), "extra".to_owned(), fresh),
            ("s".to_owned(), "note".to_owned(), held),
        ]
    );
}

/// A run with a checkpoint whose process is gone is not interrupted: another store claims it
/// (once, and only after the lease), gets its checkpoint back, and can end it `interrupted`
/// with a reason if it cannot go on; a run without one is interrupted as before. A run's end
/// drops its checkpoint.
async fn a_checkpointed_run_is_claimed_not_interrupted(db: &TestDb) {
    let lease = Duration::from_millis(1_000);
    let options = StoreOptions { run_lease: lease };
    let (first, _) = Store::open_with(&db.url, options).await.unwrap();
    let (durable, plain, ended) = (RunId::new(), RunId::new(), RunId::new());
    let now = switchboard::domain::now_millis();
    for run in [durable, plain, ended] {
        record_all(&first, &[run_started(run, ConversationId::new(), now)]);
    }
    first
        .save_checkpoint(durable, "{\"kept\": 1}".to_owned())
        .await
        .unwrap();
    first.save_checkpoint(ended, "{}".to_owned()).await.unwrap();
    record_all(
        &first,
        &[run_finished(ended, RunStatus::Succeeded, now + 1)],
    );
    first.flush().await;
    let (second, _) = Store::open_with(&db.url, options).await.unwrap();
    assert!(
        second.claim_resumable().await.unwrap().is_empty(),
        "a live process's run is not claimed"
    );
    drop(first);
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let claimed = second.claim_resumable().await.unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].id, durable);
    assert_eq!(claimed[0].checkpoint, "{\"kept\": 1}");
    // A third store does not take it from the live one that claimed it.
    let (third, _) = Store::open_with(&db.url, options).await.unwrap();
    assert!(third.claim_resumable().await.unwrap().is_empty());
    let status = |store: Store, id: RunId| async move {
        store
            .get_run(switchboard::store::Scope::All, id)
            .await
            .unwrap()
            .summary
    };
    // The sweeps interrupt the plain run, not the checkpointed one.
    let deadline = Instant::now() + lease * 4;
    while status(second.clone(), plain).await.status != RunStatus::Interrupted {
        assert!(
            Instant::now() < deadline,
            "the plain run was never interrupted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status(second.clone(), durable).await.status,
        RunStatus::Running
    );

    second
        .abandon_run(durable, "its agent is gone")
        .await
        .unwrap();
    let summary = status(second.clone(), durable).await;
    assert_eq!(summary.status, RunStatus::Interrupted);
    assert_eq!(summary.error.as_deref(), Some("its agent is gone"));
    assert!(
        second.claim_resumable().await.unwrap().is_empty(),
        "its checkpoint went with it"
    );
}
