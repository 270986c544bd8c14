//! The access tables of the store (migration `0003_access`), one suite on both backends: SQLite
//! (a fresh file per test) and Postgres (a fresh schema per test in the database named by
//! `SWITCHBOARD_TEST_POSTGRES_URL`, skipped with a note without it, failing under CI).
//!
//! What the tests prove, on each backend:
//! - API keys are stored by hash only (neither the token nor its secret is in any column, and a
//!   record's `Debug` hides even the hash); they round-trip with their expiry, list newest first,
//!   an id cannot be taken twice, an unknown id is `None`, and revocation keeps its first time
//!   (a second revoke is a no-op, an unknown key is `NotFound`).
//! - Sessions are stored by hash, belong to a live key (none for an unknown or revoked key,
//!   revoking a key ends its sessions), delete idempotently, and come back with their expiry even
//!   when it has passed: the store does not filter expired sessions (the authenticator does).
//! - The audit log, written through the queued `Store::audit`, lists newest first, pages with
//!   `limit` + `cursor` without gaps or repeats, filters by user, action, outcome and time
//!   (`since` inclusive, `until` exclusive), and caps long fields at 512 bytes on a character
//!   boundary with a note of the original size.
//! - Ownership: with `Scope::User` another user's conversations and runs are exactly like
//!   missing ones (absent from lists, `NotFound` on get, rename and delete, which leave them
//!   intact); `Scope::All` sees everyone's; `RunFilter::user` filters runs.
//! - Upgrade: a database made by the migrations before `0003` keeps its conversations and runs
//!   when the current store opens it; they have no owner, so only `Scope::All` sees them.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use switchboard::access::{hash_token, issue_key, issue_session};
use switchboard::domain::{ConversationId, RunEvent, RunId, RunStatus, UnixMillis, now_millis};
use switchboard::store::{
    AuditEntry, AuditFilter, AuditRecord, KeyRecord, MAX_RUN_PAGE, RunFilter, Scope, SessionRecord,
    Store, StoreError,
};

use crate::support::testdb::{Backend, TestDb};

/// A fixed point in the past: rows carry their own times.
const T0: UnixMillis = 1_700_000_000_000;

/// One day in milliseconds (key and session lifetimes).
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The documented cap of a stored audit field (`store::access::MAX_AUDIT_FIELD_BYTES`).
const AUDIT_FIELD_CAP: usize = 512;

/// How long queued audit lines may take to show up in `list_audit`.
const AUDIT_DEADLINE: Duration = Duration::from_secs(10);

/// The schema version the access migration (`0003_access.sql`) comes after.
const VERSION_BEFORE_ACCESS: i64 = 2;

/// The same migrations the store embeds, to build the schema as it was before `0003`.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

crate::on_both_backends!(
    keys_are_stored_hashed_and_revoked_once,
    sessions_follow_their_key_and_keep_their_expiry,
    audit_pages_newest_first_without_gaps_or_repeats,
    audit_filters_by_user_action_outcome_and_time,
    audit_caps_long_fields_on_a_char_boundary,
    audit_rows_cannot_be_changed_or_removed,
    conversations_are_scoped_to_their_owner,
    runs_are_scoped_to_their_owner,
    rows_from_before_users_are_visible_only_to_all,
);

/// A connection of our own, beside the store's pools: to look at the rows as stored and to build
/// the old schema.
async fn raw(db: &TestDb) -> Raw {
    match db.backend {
        Backend::Sqlite => {
            if let Some(dir) = db.sqlite_data_dir() {
                std::fs::create_dir_all(dir).expect("create the SQLite data dir");
            }
            let options = SqliteConnectOptions::from_str(&db.url)
                .expect("sqlite url")
                .create_if_missing(true);
            Raw::Sqlite(
                SqliteConnection::connect_with(&options)
                    .await
                    .expect("raw sqlite connection"),
            )
        }
        Backend::Postgres => Raw::Postgres(
            PgConnection::connect(&db.url)
                .await
                .expect("raw postgres connection"),
        ),
    }
}

/// A direct connection to the test database, bypassing the store.
enum Raw {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Raw {
    /// Run SQL text (several statements allowed) as is.
    async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
        match self {
            Raw::Sqlite(conn) => sql.execute(&mut *conn).await.map(drop),
            Raw::Postgres(conn) => sql.execute(&mut *conn).await.map(drop),
        }
    }

    /// Every value of a query's one text column.
    async fn texts(&mut self, sql: &str) -> Vec<String> {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Raw::Sqlite(conn) => {
                sqlx::query_scalar::<_, String>(sql)
                    .fetch_all(&mut *conn)
                    .await
            }
            Raw::Postgres(conn) => {
                sqlx::query_scalar::<_, String>(sql)
                    .fetch_all(&mut *conn)
                    .await
            }
        }
        .expect("raw query")
    }

    /// Apply the store's migrations up to and including `version`, and no further.
    async fn migrate_to(&mut self, version: i64) {
        match self {
            Raw::Sqlite(conn) => SQLITE_MIGRATIONS.run_to(version, &mut *conn).await,
            Raw::Postgres(conn) => POSTGRES_MIGRATIONS.run_to(version, &mut *conn).await,
        }
        .expect("apply the old migrations");
    }

    async fn close(self) {
        match self {
            Raw::Sqlite(conn) => conn.close().await,
            Raw::Postgres(conn) => conn.close().await,
        }
        .expect("close raw connection");
    }
}

/// A key record as `keys create` makes one, with its token (which must never be stored).
fn new_key(user: &str, role: &str, created_at: UnixMillis) -> (KeyRecord, String) {
    let issued = issue_key().expect("issue a key");
    let record = KeyRecord {
        id: issued.id,
        user: user.to_owned(),
        role: role.to_owned(),
        hash: issued.hash,
        created_at,
        expires_at: None,
        revoked_at: None,
    };
    (record, issued.token)
}

/// The secret part of a `sb_<id>_<secret>` token.
fn secret_of(token: &str) -> &str {
    token.rsplit_once('_').expect("a key token has an id").1
}

/// A session of `key_id` valid from `created_at` until `expires_at`, with its cookie value.
fn new_session(
    key_id: &str,
    created_at: UnixMillis,
    expires_at: UnixMillis,
) -> (SessionRecord, String) {
    let (token, hash) = issue_session().expect("issue a session");
    let record = SessionRecord {
        hash,
        key_id: key_id.to_owned(),
        created_at,
        expires_at,
    };
    (record, token)
}

/// Every stored text of the access tables, one string per row, to look for leaked secrets.
async fn stored_access_texts(db: &TestDb) -> Vec<String> {
    let mut raw = raw(db).await;
    let mut texts = raw
        .texts("SELECT id || '|' || user_name || '|' || role || '|' || hash FROM api_keys")
        .await;
    texts.extend(
        raw.texts("SELECT hash || '|' || key_id FROM sessions")
            .await,
    );
    raw.close().await;
    texts
}

async fn keys_are_stored_hashed_and_revoked_once(db: &TestDb) {
    let store = db.open().await;
    let (lasting, lasting_token) = new_key("alice", "user", T0);
    let (mut expiring, expiring_token) = new_key("bob", "admin", T0 + 1);
    expiring.expires_at = Some(T0 + 30 * DAY_MS);
    store.create_key(&lasting).await.expect("create a key");
    store.create_key(&expiring).await.expect("create a key");

    // Round trip, expiry included; newest first.
    assert_eq!(
        store.get_key(&lasting.id).await.unwrap().as_ref(),
        Some(&lasting),
        "a key without expiry comes back as stored"
    );
    assert_eq!(
        store.get_key(&expiring.id).await.unwrap().as_ref(),
        Some(&expiring),
        "a key with an expiry comes back with it"
    );
    assert_eq!(
        store.list_keys().await.unwrap(),
        vec![expiring.clone(), lasting.clone()],
        "keys are listed newest first"
    );
    assert_eq!(
        store.get_key("000000000000").await.unwrap(),
        None,
        "an unknown key id is None"
    );

    // The hash of the token is stored; the token, its secret, are not, anywhere.
    for (record, token) in [(&lasting, &lasting_token), (&expiring, &expiring_token)] {
        assert_eq!(
            record.hash,
            hash_token(token),
            "the stored hash is the token's"
        );
        let debug = format!("{record:?}");
        assert!(
            !debug.contains(&record.hash) && !debug.contains(secret_of(token)),
            "a key record's Debug must show neither the hash nor the secret: {debug}"
        );
    }
    let stored = stored_access_texts(db).await;
    assert_eq!(stored.len(), 2, "two key rows: {stored:?}");
    for token in [&lasting_token, &expiring_token] {
        assert!(
            stored.iter().all(|row| !row.contains(secret_of(token))),
            "no stored column may hold a key's secret: {stored:?}"
        );
    }

    // An id cannot be taken twice, and the first key is not overwritten.
    let (mut clash, _) = new_key("mallory", "admin", T0 + 2);
    clash.id.clone_from(&lasting.id);
    assert!(
        matches!(store.create_key(&clash).await, Err(StoreError::Conflict(_))),
        "a second key with a taken id is a conflict"
    );
    assert_eq!(
        store.get_key(&lasting.id).await.unwrap().as_ref(),
        Some(&lasting),
        "a conflicting create leaves the first key as it was"
    );

    // Revocation sets the time once; a second one keeps the first time.
    store
        .revoke_key(&lasting.id, T0 + 10)
        .await
        .expect("revoke");
    store
        .revoke_key(&lasting.id, T0 + 20)
        .await
        .expect("revoking a revoked key is a no-op, not an error");
    let revoked = store
        .get_key(&lasting.id)
        .await
        .unwrap()
        .expect("still listed");
    assert_eq!(
        revoked.revoked_at,
        Some(T0 + 10),
        "a second revocation keeps the first time"
    );
    assert_eq!(
        KeyRecord {
            revoked_at: None,
            ..revoked
        },
        lasting,
        "revocation changes nothing but revoked_at"
    );
    assert_eq!(
        store
            .get_key(&expiring.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None,
        "revoking one key leaves the others alone"
    );
    assert_eq!(
        store.list_keys().await.unwrap().len(),
        2,
        "revoked keys are still listed"
    );
    assert!(
        matches!(
            store.revoke_key("000000000000", T0).await,
            Err(StoreError::NotFound(_))
        ),
        "revoking an unknown key is NotFound"
    );
    assert_eq!(store.write_failures(), 0, "no write failed");
}

async fn sessions_follow_their_key_and_keep_their_expiry(db: &TestDb) {
    let store = db.open().await;
    let now = now_millis();
    let (key, _) = new_key("alice", "user", T0);
    let (other_key, _) = new_key("bob", "user", T0 + 1);
    store.create_key(&key).await.unwrap();
    store.create_key(&other_key).await.unwrap();

    let (live, live_token) = new_session(&key.id, now, now + DAY_MS);
    store.create_session(&live).await.expect("create a session");
    assert_eq!(
        store.get_session(&live.hash).await.unwrap().as_ref(),
        Some(&live),
        "a session comes back as stored"
    );
    assert_eq!(
        store.get_session(&live_token).await.unwrap(),
        None,
        "sessions are found by the hash of their token, not the token"
    );
    let stored = stored_access_texts(db).await;
    assert!(
        stored.iter().all(|row| !row.contains(&live_token)),
        "no stored column may hold a session token: {stored:?}"
    );

    // The store returns an expired session with its expiry; the authenticator refuses it.
    let (expired, _) = new_session(&key.id, T0, T0 + 1);
    store.create_session(&expired).await.unwrap();
    let found = store
        .get_session(&expired.hash)
        .await
        .unwrap()
        .expect("the store does not filter expired sessions");
    assert_eq!(found, expired, "an expired session keeps its expiry");
    assert!(found.expires_at < now, "and that expiry is in the past");

    // Deleting is idempotent and touches only that session.
    store.delete_session(&expired.hash).await.unwrap();
    assert_eq!(store.get_session(&expired.hash).await.unwrap(), None);
    store
        .delete_session(&expired.hash)
        .await
        .expect("deleting an unknown session is fine");
    assert!(store.get_session(&live.hash).await.unwrap().is_some());

    // A session needs a live key; revoking a key ends its sessions, and only its own.
    let (orphan, _) = new_session("000000000000", now, now + DAY_MS);
    assert!(
        matches!(
            store.create_session(&orphan).await,
            Err(StoreError::NotFound(_))
        ),
        "a session of an unknown key is NotFound"
    );
    let (bobs, _) = new_session(&other_key.id, now, now + DAY_MS);
    store.create_session(&bobs).await.unwrap();
    store.revoke_key(&key.id, now).await.unwrap();
    assert_eq!(
        store.get_session(&live.hash).await.unwrap(),
        None,
        "revoking a key ends its sessions"
    );
    assert_eq!(
        store.get_session(&bobs.hash).await.unwrap().as_ref(),
        Some(&bobs),
        "another key's session survives the revocation"
    );
    let (late, _) = new_session(&key.id, now, now + DAY_MS);
    assert!(
        matches!(
            store.create_session(&late).await,
            Err(StoreError::NotFound(_))
        ),
        "a revoked key gets no new session"
    );
    assert_eq!(store.get_session(&late.hash).await.unwrap(), None);
    assert_eq!(store.write_failures(), 0, "no write failed");
}

/// An audit line at `T0 + i`, with every field set.
fn audit_entry(i: i64, user: Option<&str>, action: &str, outcome: &str) -> AuditEntry {
    AuditEntry {
        at: T0 + i,
        user: user.map(str::to_owned),
        key_id: user.map(|_| format!("{i:012x}")),
        action: action.to_owned(),
        target: Some(format!("target-{i}")),
        outcome: outcome.to_owned(),
        client: Some("127.0.0.1".to_owned()),
        trace_id: Some(format!("{i:032x}")),
    }
}

/// 25 lines by three users (one anonymous), two actions and three outcomes, at `T0 + i`; the
/// three spread differently over `i`, so each filter of a combination removes lines.
fn audit_fixture() -> Vec<AuditEntry> {
    (0..25)
        .map(|i| {
            let user = [Some("alice"), Some("bob"), None][(i % 3) as usize];
            let action = if i % 2 == 0 {
                "tool_invoke"
            } else {
                "auth_failure"
            };
            let outcome = ["ok", "denied", "limited", "ok"][(i % 4) as usize];
            audit_entry(i, user, action, outcome)
        })
        .collect()
}

/// Queue every entry (as the server does) and wait until the log lists them all; returns the
/// lines, newest first. Audit writes are fire-and-forget, so this polls with a deadline.
async fn write_audit(store: &Store, entries: &[AuditEntry]) -> Vec<AuditRecord> {
    for entry in entries {
        store.audit(entry.clone());
    }
    let all = AuditFilter {
        limit: MAX_RUN_PAGE,
        ..AuditFilter::default()
    };
    let deadline = Instant::now() + AUDIT_DEADLINE;
    loop {
        let page = store.list_audit(&all).await.expect("list the audit log");
        if page.entries.len() >= entries.len() {
            assert_eq!(
                page.entries.len(),
                entries.len(),
                "the log holds exactly the lines written"
            );
            return page.entries;
        }
        assert!(
            Instant::now() < deadline,
            "expected {} audit lines within {AUDIT_DEADLINE:?}, found {}",
            entries.len(),
            page.entries.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The database itself refuses to change or remove an audit line (a trigger of the migration),
/// so not even a raw connection that bypasses the store rewrites history.
async fn audit_rows_cannot_be_changed_or_removed(db: &TestDb) {
    let store = db.open().await;
    let written = write_audit(&store, &audit_fixture()[..3]).await;
    let mut raw = raw(db).await;
    for sql in [
        "UPDATE audit SET outcome = 'ok'",
        "UPDATE audit SET user_name = NULL WHERE id = (SELECT MAX(id) FROM audit)",
        "DELETE FROM audit",
    ] {
        let refused = raw.execute(sql).await.expect_err(sql);
        assert!(
            refused.to_string().contains("append-only"),
            "`{sql}` was refused for the wrong reason: {refused}"
        );
    }
    if db.backend == Backend::Postgres {
        let refused = raw.execute("TRUNCATE audit").await.expect_err("TRUNCATE");
        assert!(refused.to_string().contains("append-only"), "{refused}");
    }
    raw.close().await;
    let after = store
        .list_audit(&AuditFilter {
            limit: MAX_RUN_PAGE,
            ..AuditFilter::default()
        })
        .await
        .expect("list the audit log");
    assert_eq!(
        after.entries, written,
        "every audit line is still there, unchanged"
    );
}

/// Every page of `filter`, following `next_cursor` until there is none.
async fn all_pages(store: &Store, filter: &AuditFilter) -> Vec<Vec<AuditRecord>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_audit(&AuditFilter {
                cursor,
                ..filter.clone()
            })
            .await
            .expect("list an audit page");
        pages.push(page.entries);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
        assert!(pages.len() <= 100, "paging does not end");
    }
}

async fn audit_pages_newest_first_without_gaps_or_repeats(db: &TestDb) {
    let store = db.open().await;
    let entries = audit_fixture();
    let listed = write_audit(&store, &entries).await;

    // Newest first, exactly as written.
    let newest_first: Vec<AuditEntry> = entries.iter().rev().cloned().collect();
    assert_eq!(
        listed.iter().map(|r| r.entry.clone()).collect::<Vec<_>>(),
        newest_first,
        "the log lists every line as written, newest first"
    );
    assert!(
        listed.windows(2).all(|w| w[0].id > w[1].id),
        "ids decrease down the listing"
    );

    // Pages of 10: 10, 10, 5, in order, each line once.
    let pages = all_pages(
        &store,
        &AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [10, 10, 5],
        "25 lines in pages of 10"
    );
    assert_eq!(
        pages.concat(),
        listed,
        "the pages together are the whole log, in order, without gaps or repeats"
    );

    // Paging a filtered view: alice's 9 lines in pages of 4.
    let alices = AuditFilter {
        user: Some("alice".to_owned()),
        limit: 4,
        ..AuditFilter::default()
    };
    let pages = all_pages(&store, &alices).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 1]);
    let expected: Vec<&AuditRecord> = listed
        .iter()
        .filter(|r| r.entry.user.as_deref() == Some("alice"))
        .collect();
    assert_eq!(
        pages.iter().flatten().collect::<Vec<_>>(),
        expected,
        "a filtered view pages without gaps or repeats too"
    );

    // A page size of 0 is the default page (which holds all 25 here).
    let default_page = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(default_page.entries, listed);
    assert_eq!(default_page.next_cursor, None, "no page after the last");

    for bad in ["not a cursor", "0", "-5"] {
        let filter = AuditFilter {
            cursor: Some(bad.to_owned()),
            ..AuditFilter::default()
        };
        assert!(
            matches!(store.list_audit(&filter).await, Err(StoreError::Invalid(_))),
            "cursor {bad:?} is refused as invalid"
        );
    }
    assert_eq!(store.write_failures(), 0, "no write failed");
}

async fn audit_filters_by_user_action_outcome_and_time(db: &TestDb) {
    let store = db.open().await;
    let entries = audit_fixture();
    write_audit(&store, &entries).await;

    // Each filter against the same predicate over the fixture (the log is newest first).
    let expect = |keep: &dyn Fn(&AuditEntry) -> bool| -> Vec<AuditEntry> {
        entries.iter().rev().filter(|e| keep(e)).cloned().collect()
    };
    let cases: Vec<(&str, AuditFilter, Vec<AuditEntry>)> = vec![
        (
            "user bob",
            AuditFilter {
                user: Some("bob".to_owned()),
                ..AuditFilter::default()
            },
            expect(&|e| e.user.as_deref() == Some("bob")),
        ),
        (
            "action auth_failure",
            AuditFilter {
                action: Some("auth_failure".to_owned()),
                ..AuditFilter::default()
            },
            expect(&|e| e.action == "auth_failure"),
        ),
        (
            "outcome denied",
            AuditFilter {
                outcome: Some("denied".to_owned()),
                ..AuditFilter::default()
            },
            expect(&|e| e.outcome == "denied"),
        ),
        (
            "since T0+5 until T0+10",
            AuditFilter {
                since: Some(T0 + 5),
                until: Some(T0 + 10),
                ..AuditFilter::default()
            },
            expect(&|e| (T0 + 5..T0 + 10).contains(&e.at)),
        ),
        (
            "alice's tool invokes that were ok",
            AuditFilter {
                user: Some("alice".to_owned()),
                action: Some("tool_invoke".to_owned()),
                outcome: Some("ok".to_owned()),
                ..AuditFilter::default()
            },
            expect(&|e| {
                e.user.as_deref() == Some("alice") && e.action == "tool_invoke" && e.outcome == "ok"
            }),
        ),
        (
            "an exact user name only",
            AuditFilter {
                user: Some("ali".to_owned()),
                ..AuditFilter::default()
            },
            vec![],
        ),
    ];
    for (what, filter, expected) in cases {
        let page = store.list_audit(&filter).await.unwrap();
        assert_eq!(
            page.entries
                .into_iter()
                .map(|r| r.entry)
                .collect::<Vec<_>>(),
            expected,
            "filter {what}: expected exactly the matching lines, newest first"
        );
    }
    // The fixture really spreads over the filters (else the cases above prove little).
    assert_eq!(expect(&|e| e.user.as_deref() == Some("bob")).len(), 8);
    assert_eq!(expect(&|e| (T0 + 5..T0 + 10).contains(&e.at)).len(), 5);
    let alices_invokes =
        |e: &AuditEntry| e.user.as_deref() == Some("alice") && e.action == "tool_invoke";
    assert_eq!(expect(&alices_invokes).len(), 5);
    assert_eq!(expect(&|e| alices_invokes(e) && e.outcome == "ok").len(), 3);
}

/// `original` as the audit log stores it: at most the cap's bytes, cut on a char boundary,
/// with a note of the original size.
fn capped(original: &str, kept_bytes: usize) -> String {
    assert!(
        original.len() > AUDIT_FIELD_CAP,
        "only a long field is capped"
    );
    format!(
        "{}… [truncated, {} bytes in all]",
        &original[..kept_bytes],
        original.len()
    )
}

async fn audit_caps_long_fields_on_a_char_boundary(db: &TestDb) {
    let store = db.open().await;
    // Byte 512 falls inside a 2-byte `é` (kept: 511 bytes), inside a 4-byte emoji (kept: 510),
    // or exactly on a boundary (kept: 512).
    let e_straddles = format!("{}{}", "a".repeat(511), "é".repeat(10));
    let emoji_straddles = format!("{}{}", "b".repeat(510), "😀".repeat(3));
    let on_boundary = format!("{}{}", "c".repeat(512), "é".repeat(5));
    let at_cap = "é".repeat(AUDIT_FIELD_CAP / 2);
    let long_ascii = "u".repeat(2_000);
    let entry = AuditEntry {
        at: T0,
        user: Some(long_ascii.clone()),
        key_id: Some(on_boundary.clone()),
        action: e_straddles.clone(),
        target: Some(emoji_straddles.clone()),
        outcome: at_cap.clone(),
        client: Some(e_straddles.clone()),
        trace_id: Some("t".to_owned()),
    };
    let listed = write_audit(&store, &[entry]).await;
    let stored = &listed[0].entry;

    assert_eq!(
        stored.action,
        capped(&e_straddles, 511),
        "cut before a 2-byte char straddling the cap"
    );
    assert_eq!(
        stored.client.as_deref(),
        Some(capped(&e_straddles, 511).as_str())
    );
    assert_eq!(
        stored.target.as_deref(),
        Some(capped(&emoji_straddles, 510).as_str()),
        "cut before a 4-byte char straddling the cap"
    );
    assert_eq!(
        stored.key_id.as_deref(),
        Some(capped(&on_boundary, 512).as_str()),
        "a cap on a char boundary keeps all 512 bytes"
    );
    assert_eq!(
        stored.user.as_deref(),
        Some(capped(&long_ascii, 512).as_str())
    );
    assert_eq!(
        stored.outcome, at_cap,
        "a field of exactly 512 bytes is kept"
    );
    assert_eq!(
        stored.trace_id.as_deref(),
        Some("t"),
        "short fields are kept"
    );
    assert_eq!(store.write_failures(), 0, "no write failed");
}

/// `RunStarted` for a run of `user` (what the run service's engine emits first).
fn run_started(
    run_id: RunId,
    conversation_id: ConversationId,
    user: Option<&str>,
    at: UnixMillis,
) -> RunEvent {
    RunEvent::RunStarted {
        run_id,
        conversation_id: Some(conversation_id),
        agent: Some("helper".to_owned()),
        model: "fake-model".to_owned(),
        user_message: format!("a question from {}", user.unwrap_or("nobody")),
        trace_id: None,
        user: user.map(str::to_owned),
        at,
    }
}

/// The titles a scope lists, newest first (pages of `limit`, following `before`).
async fn titles(store: &Store, scope: Scope<'_>, limit: u32) -> Vec<String> {
    let mut titles = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_conversations(scope, limit, before)
            .await
            .expect("list conversations");
        let Some(last) = page.last() else {
            return titles;
        };
        before = Some(last.id);
        titles.extend(page.into_iter().map(|c| c.title));
        assert!(titles.len() <= 100, "paging does not end");
    }
}

async fn conversations_are_scoped_to_their_owner(db: &TestDb) {
    let store = db.open().await;
    let alice = Scope::User("alice");
    let bob = Scope::User("bob");
    // Interleaved, so a scoped page must skip the other user's rows.
    let alice_1 = store
        .create_conversation("alice 1", Some("alice"))
        .await
        .unwrap();
    let bob_1 = store
        .create_conversation("bob 1", Some("bob"))
        .await
        .unwrap();
    let alice_2 = store
        .create_conversation("alice 2", Some("alice"))
        .await
        .unwrap();
    store
        .create_conversation("bob 2", Some("bob"))
        .await
        .unwrap();
    let run_id = RunId::new();
    store
        .append_message(alice_1.id, "user", "mine", Some(run_id))
        .await
        .unwrap();
    store.record(&run_started(run_id, alice_1.id, Some("alice"), T0));
    store.flush().await;
    let before = store
        .get_conversation(Scope::All, alice_1.id)
        .await
        .unwrap();
    assert_eq!(before.conversation.user.as_deref(), Some("alice"));

    // Lists: each user their own (in pages of one too), the administrators everyone's.
    assert_eq!(titles(&store, bob, 1).await, ["bob 2", "bob 1"]);
    assert_eq!(titles(&store, alice, 1).await, ["alice 2", "alice 1"]);
    assert_eq!(
        titles(&store, Scope::All, 0).await,
        ["bob 2", "alice 2", "bob 1", "alice 1"]
    );
    assert_eq!(
        titles(&store, Scope::User("ali"), 0).await,
        Vec::<String>::new(),
        "the owner must match exactly"
    );

    // Another user's conversation is exactly like a missing one, and stays as it was.
    assert!(
        matches!(
            store.get_conversation(bob, alice_1.id).await,
            Err(StoreError::NotFound(_))
        ),
        "bob cannot read alice's conversation"
    );
    assert!(
        matches!(
            store.rename_conversation(bob, alice_1.id, "taken").await,
            Err(StoreError::NotFound(_))
        ),
        "bob cannot rename alice's conversation"
    );
    assert!(
        matches!(
            store.delete_conversation(bob, alice_1.id).await,
            Err(StoreError::NotFound(_))
        ),
        "bob cannot delete alice's conversation"
    );
    assert_eq!(
        store.get_conversation(alice, alice_1.id).await.unwrap(),
        before,
        "alice's conversation, title and messages are intact after bob's attempts"
    );
    assert_eq!(
        store
            .get_run(Scope::All, run_id)
            .await
            .unwrap()
            .summary
            .conversation_id,
        Some(alice_1.id),
        "alice's run still belongs to her conversation"
    );

    // The owner and the administrators may.
    store
        .rename_conversation(alice, alice_1.id, "renamed by alice")
        .await
        .expect("alice renames her own conversation");
    store
        .rename_conversation(Scope::All, bob_1.id, "renamed by an admin")
        .await
        .expect("an admin renames anyone's conversation");
    store
        .delete_conversation(alice, alice_2.id)
        .await
        .expect("alice deletes her own conversation");
    assert_eq!(
        titles(&store, Scope::All, 0).await,
        ["bob 2", "renamed by an admin", "renamed by alice"]
    );
    assert_eq!(
        store
            .get_conversation(bob, bob_1.id)
            .await
            .unwrap()
            .conversation
            .user
            .as_deref(),
        Some("bob"),
        "an admin's rename keeps the owner"
    );
    assert_eq!(store.write_failures(), 0, "no write failed");
}

async fn runs_are_scoped_to_their_owner(db: &TestDb) {
    let store = db.open().await;
    let alice_runs = [RunId::new(), RunId::new()];
    let bob_run = RunId::new();
    store.record(&run_started(
        alice_runs[0],
        ConversationId::new(),
        Some("alice"),
        T0,
    ));
    store.record(&run_started(
        bob_run,
        ConversationId::new(),
        Some("bob"),
        T0 + 1,
    ));
    store.record(&run_started(
        alice_runs[1],
        ConversationId::new(),
        Some("alice"),
        T0 + 2,
    ));
    store.flush().await;

    for id in alice_runs {
        assert!(
            matches!(
                store.get_run(Scope::User("bob"), id).await,
                Err(StoreError::NotFound(_))
            ),
            "bob cannot read alice's run"
        );
        let run = store.get_run(Scope::User("alice"), id).await.unwrap();
        assert_eq!(
            run.summary.user.as_deref(),
            Some("alice"),
            "the owner is recorded"
        );
        assert_eq!(
            store.get_run(Scope::All, id).await.unwrap(),
            run,
            "an admin sees alice's run"
        );
    }
    assert!(store.get_run(Scope::User("bob"), bob_run).await.is_ok());
    assert!(matches!(
        store.get_run(Scope::User("alice"), bob_run).await,
        Err(StoreError::NotFound(_))
    ));

    let listed = |user: Option<&str>| {
        let filter = RunFilter {
            user: user.map(str::to_owned),
            ..RunFilter::default()
        };
        let store = store.clone();
        async move {
            let page = store.list_runs(&filter).await.expect("list runs");
            page.runs.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(Some("alice")).await, [alice_runs[1], alice_runs[0]]);
    assert_eq!(listed(Some("bob")).await, [bob_run]);
    assert_eq!(
        listed(None).await,
        [alice_runs[1], bob_run, alice_runs[0]],
        "no user filter lists everyone's runs"
    );
    assert_eq!(
        listed(Some("ali")).await,
        Vec::<RunId>::new(),
        "the user filter is exact"
    );
    assert_eq!(store.write_failures(), 0, "no write failed");
}

/// A conversation with a message and a finished run with one step, written with the schema as
/// it was before `0003` (no owner columns).
fn old_rows(conversation: ConversationId, run: RunId) -> String {
    format!(
        "INSERT INTO conversations (id, title, created_at, updated_at) \
             VALUES ('{conversation}', 'from before users', {T0}, {T0}); \
         INSERT INTO messages (conversation_id, role, content, run_id, created_at) \
             VALUES ('{conversation}', 'user', 'hello', '{run}', {T0}); \
         INSERT INTO runs (id, conversation_id, agent, model, status, user_message, answer, \
             started_at, finished_at, input_tokens, output_tokens, owner, heartbeat_at) \
             VALUES ('{run}', '{conversation}', 'helper', 'fake-model', 'succeeded', 'hello', \
             'hi', {T0}, {finished}, 3, 4, 'old-process', {finished}); \
         INSERT INTO steps (run_id, idx, kind, name, status, started_at, finished_at, input, \
             output, attempt) \
             VALUES ('{run}', 0, 'answer', 'answer', 'succeeded', {T0}, {finished}, '{{}}', \
             '\"hi\"', 1);",
        finished = T0 + 5,
    )
}

async fn rows_from_before_users_are_visible_only_to_all(db: &TestDb) {
    let conversation = ConversationId::new();
    let run = RunId::new();
    let mut raw = raw(db).await;
    raw.migrate_to(VERSION_BEFORE_ACCESS).await;
    assert!(
        raw.execute("SELECT user_name FROM runs").await.is_err(),
        "before 0003 runs have no owner column (else this is not the old schema)"
    );
    raw.execute(&old_rows(conversation, run))
        .await
        .expect("write rows with the old schema");
    raw.close().await;

    let (store, interrupted) = Store::open(&db.url).await.expect("open the old database");
    assert_eq!(interrupted, 0, "the old run had finished");

    // The rows survive, ownerless, and administrators see them.
    let detail = store
        .get_conversation(Scope::All, conversation)
        .await
        .expect("the old conversation survives the migration");
    assert_eq!(detail.conversation.title, "from before users");
    assert_eq!(
        detail.conversation.user, None,
        "an old conversation has no owner"
    );
    assert_eq!(
        detail
            .messages
            .iter()
            .map(|m| (m.content.as_str(), m.run_id))
            .collect::<Vec<_>>(),
        [("hello", Some(run))],
        "its messages survive"
    );
    let old_run = store
        .get_run(Scope::All, run)
        .await
        .expect("the old run survives the migration");
    assert_eq!(old_run.summary.user, None, "an old run has no owner");
    assert_eq!(old_run.summary.status, RunStatus::Succeeded);
    assert_eq!(old_run.summary.answer.as_deref(), Some("hi"));
    assert_eq!(old_run.summary.conversation_id, Some(conversation));
    assert_eq!(old_run.steps.len(), 1, "its steps survive");
    assert_eq!(
        store
            .list_conversations(Scope::All, 0, None)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        [conversation]
    );
    assert_eq!(
        store
            .list_runs(&RunFilter::default())
            .await
            .unwrap()
            .runs
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [run]
    );

    // A user sees none of it, and cannot change it.
    let user = Scope::User("x");
    assert!(matches!(
        store.get_conversation(user, conversation).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store
            .list_conversations(user, 0, None)
            .await
            .unwrap()
            .is_empty(),
        "a user lists no ownerless conversation"
    );
    assert!(matches!(
        store.rename_conversation(user, conversation, "mine").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_conversation(user, conversation).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_run(user, run).await,
        Err(StoreError::NotFound(_))
    ));
    let users_runs = RunFilter {
        user: Some("x".to_owned()),
        ..RunFilter::default()
    };
    assert!(
        store.list_runs(&users_runs).await.unwrap().runs.is_empty(),
        "a user lists no ownerless run"
    );
    assert_eq!(
        store
            .get_conversation(Scope::All, conversation)
            .await
            .unwrap(),
        detail,
        "the old conversation is intact after the user's attempts"
    );

    // The new tables are there too.
    let (key, _) = new_key("x", "user", T0);
    store
        .create_key(&key)
        .await
        .expect("the upgraded schema stores keys");
    assert_eq!(store.get_key(&key.id).await.unwrap(), Some(key));
    assert_eq!(store.write_failures(), 0, "no write failed");
}
