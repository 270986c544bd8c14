//! The `notes` server: a small persistent note store in one SQLite file.
//!
//! Owns the schema (`notes/schema.sql`, idempotent, run at every start), input caps,
//! and the search strategy: each whitespace-separated query term must occur, case-
//! insensitively, in the title or the body. Terms of three or more characters go
//! through an FTS5 trigram index; shorter ones (which a trigram index cannot match)
//! fall back to `LIKE` with `%`, `_` and `\` escaped. Results are newest first.
//!
//! The database is opened in WAL mode with a busy timeout, so several server processes
//! may share one file. All state lives in the pool, which is cheap to clone, so the
//! handler works unchanged in stateless HTTP mode.

use std::{path::Path, time::Duration};

use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock},
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use sqlx::{
    QueryBuilder, Sqlite, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Largest body, in bytes of UTF-8.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most tags on one note.
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// Largest `limit` for searches and listings.
pub const MAX_LIMIT: u32 = 100;
/// `limit` when none is given.
pub const DEFAULT_LIMIT: u32 = 20;
/// Most terms a search query may have.
pub const MAX_QUERY_TERMS: usize = 16;

const SCHEMA: &str = include_str!("notes/schema.sql");
/// Separates tags in the `group_concat` of a row; tags may not contain control
/// characters, so it cannot clash.
const TAG_SEPARATOR: char = '\u{1f}';

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The parent directory could not be created.
    #[error("cannot create the directory for the database")]
    CreateDir(#[source] std::io::Error),
    /// SQLite refused to open the file or run the schema.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

/// The `notes` MCP server.
#[derive(Debug, Clone)]
pub struct Notes {
    pool: SqlitePool,
    tool_router: ToolRouter<Self>,
}

/// Arguments of `add_note`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddNoteArgs {
    /// Short title, 1 to 200 characters.
    pub title: String,
    /// The note text (Markdown is fine), at most 64 KiB.
    pub body: String,
    /// Optional labels for filtering, at most 20, each 1 to 64 characters; matched
    /// case-insensitively.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// Arguments of `search_notes`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchNotesArgs {
    /// Words to look for; every word must occur (case-insensitively, anywhere, also
    /// inside longer words) in the title or body.
    pub query: String,
    /// Only notes with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Most notes to return, 1 to 100. Defaults to 20.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Arguments of `get_note`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoteIdArgs {
    /// The note's id, as returned by `add_note`, `search_notes` or `list_notes`.
    pub id: i64,
}

/// Arguments of `list_notes`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListNotesArgs {
    /// Most notes to return, 1 to 100. Defaults to 20.
    #[serde(default)]
    pub limit: Option<u32>,
    /// How many of the newest notes to skip, for paging. Defaults to 0.
    #[serde(default)]
    pub offset: Option<u32>,
    /// Only notes with this tag.
    #[serde(default)]
    pub tag: Option<String>,
}

/// One stored note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Row id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
}

type NoteRow = (i64, String, String, String, String, Option<String>);

const SELECT_NOTE: &str = "SELECT n.id, n.title, n.body, n.created_at, n.updated_at, \
     (SELECT group_concat(t.tag, char(31)) FROM note_tags t WHERE t.note_id = n.id) \
     FROM notes n";

impl Notes {
    /// Open (creating when missing) the database at `path` and apply the schema.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the directory, file or schema cannot be created.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(StoreError::CreateDir)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(StoreError::Database)?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(StoreError::Database)?;
        Ok(Self {
            pool,
            tool_router: Self::tool_router(),
        })
    }

    /// Store a note and return its id.
    ///
    /// # Errors
    ///
    /// A message for the peer when an argument breaks a cap or the database fails.
    pub async fn add(&self, title: &str, body: &str, tags: &[String]) -> Result<i64, String> {
        let title = title.trim();
        if title.is_empty() {
            return Err("title must not be empty".to_owned());
        }
        let title_chars = title.chars().count();
        if title_chars > MAX_TITLE_CHARS {
            return Err(format!(
                "title is {title_chars} characters long; the limit is {MAX_TITLE_CHARS}"
            ));
        }
        if body.len() > MAX_BODY_BYTES {
            return Err(format!(
                "body is {} bytes long; the limit is {MAX_BODY_BYTES}",
                body.len()
            ));
        }
        let tags = normalize_tags(tags)?;
        let now = now();
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notes (title, body, created_at, updated_at) VALUES (?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(title)
        .bind(body)
        .bind(&now)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        for tag in &tags {
            sqlx::query("INSERT OR IGNORE INTO note_tags (note_id, tag) VALUES (?, ?)")
                .bind(id)
                .bind(tag)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(id)
    }

    /// Fetch one note.
    ///
    /// # Errors
    ///
    /// A message for the peer when the database fails.
    pub async fn get(&self, id: i64) -> Result<Option<Note>, String> {
        let mut query = QueryBuilder::<Sqlite>::new(SELECT_NOTE);
        query.push(" WHERE n.id = ").push_bind(id);
        let row: Option<NoteRow> = query
            .build_query_as()
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(row.map(note_from_row))
    }

    /// Delete one note; `false` when it did not exist.
    ///
    /// # Errors
    ///
    /// A message for the peer when the database fails.
    pub async fn delete(&self, id: i64) -> Result<bool, String> {
        let result = sqlx::query("DELETE FROM notes WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected() > 0)
    }

    /// Notes matching every term of `query`, newest first.
    ///
    /// # Errors
    ///
    /// A message for the peer for an empty or over-long query, a bad limit, or a
    /// database failure.
    pub async fn search(
        &self,
        query: &str,
        tag: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<Note>, String> {
        let limit = check_limit(limit)?;
        let terms: Vec<&str> = query.split_whitespace().collect();
        if terms.is_empty() {
            return Err("query must contain at least one word".to_owned());
        }
        if terms.len() > MAX_QUERY_TERMS {
            return Err(format!(
                "query has {} words; the limit is {MAX_QUERY_TERMS}",
                terms.len()
            ));
        }
        let (long, short): (Vec<&str>, Vec<&str>) =
            terms.into_iter().partition(|t| t.chars().count() >= 3);
        let mut sql = QueryBuilder::<Sqlite>::new(SELECT_NOTE);
        sql.push(" WHERE 1 = 1");
        if !long.is_empty() {
            // Each term becomes an FTS5 string (quotes doubled), so the user cannot
            // inject FTS operators; adjacent strings are ANDed.
            let fts: Vec<String> = long
                .iter()
                .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                .collect();
            sql.push(" AND n.id IN (SELECT rowid FROM notes_fts WHERE notes_fts MATCH ")
                .push_bind(fts.join(" AND "))
                .push(")");
        }
        for term in short {
            let pattern = format!("%{}%", escape_like(term));
            sql.push(" AND (n.title LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR n.body LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\')");
        }
        push_tag_filter(&mut sql, tag);
        sql.push(" ORDER BY n.updated_at DESC, n.id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows: Vec<NoteRow> = sql
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(note_from_row).collect())
    }

    /// One page of notes, newest first, and the total count matching `tag`.
    ///
    /// # Errors
    ///
    /// A message for the peer for a bad limit or a database failure.
    pub async fn list(
        &self,
        limit: Option<u32>,
        offset: Option<u32>,
        tag: Option<&str>,
    ) -> Result<(Vec<Note>, i64), String> {
        let limit = check_limit(limit)?;
        let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM notes n WHERE 1 = 1");
        push_tag_filter(&mut count, tag);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        let mut sql = QueryBuilder::<Sqlite>::new(SELECT_NOTE);
        sql.push(" WHERE 1 = 1");
        push_tag_filter(&mut sql, tag);
        sql.push(" ORDER BY n.updated_at DESC, n.id DESC LIMIT ")
            .push_bind(i64::from(limit))
            .push(" OFFSET ")
            .push_bind(i64::from(offset.unwrap_or(0)));
        let rows: Vec<NoteRow> = sql
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok((rows.into_iter().map(note_from_row).collect(), total))
    }
}

#[tool_router]
impl Notes {
    #[tool(
        description = "Save a new note (title, body, optional tags) to the persistent note \
                       store and return its id. Caps: title 200 characters, body 64 KiB, 20 tags.",
        annotations(
            title = "Add note",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn add_note(&self, Parameters(args): Parameters<AddNoteArgs>) -> CallToolResult {
        let tags = args.tags.unwrap_or_default();
        match self.add(&args.title, &args.body, &tags).await {
            Ok(id) => success(format!("added note #{id}")),
            Err(message) => failure(message),
        }
    }

    #[tool(
        description = "Search notes: every word of `query` must occur (case-insensitive, also \
                       inside longer words) in the title or body. Optionally only notes with \
                       `tag`. Returns id, title, tags, date and the start of the body, newest \
                       first; use get_note for the full text.",
        annotations(
            title = "Search notes",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn search_notes(&self, Parameters(args): Parameters<SearchNotesArgs>) -> CallToolResult {
        match self
            .search(&args.query, args.tag.as_deref(), args.limit)
            .await
        {
            Ok(notes) if notes.is_empty() => {
                success(format!("no notes match `{}`", args.query.trim()))
            }
            Ok(notes) => success(summaries(&notes)),
            Err(message) => failure(message),
        }
    }

    #[tool(
        description = "Get one note by id with its full body, tags and timestamps.",
        annotations(
            title = "Get note",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_note(&self, Parameters(args): Parameters<NoteIdArgs>) -> CallToolResult {
        match self.get(args.id).await {
            Ok(Some(note)) => success(format!(
                "#{} {}\ntags: {}\ncreated: {}\nupdated: {}\n\n{}",
                note.id,
                note.title,
                tag_list(&note.tags),
                note.created_at,
                note.updated_at,
                note.body
            )),
            Ok(None) => failure(format!("note #{} does not exist", args.id)),
            Err(message) => failure(message),
        }
    }

    #[tool(
        description = "List notes newest first, optionally only those with `tag`, with paging \
                       through `limit` (default 20, at most 100) and `offset`.",
        annotations(
            title = "List notes",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_notes(&self, Parameters(args): Parameters<ListNotesArgs>) -> CallToolResult {
        let offset = args.offset.unwrap_or(0);
        match self
            .list(args.limit, Some(offset), args.tag.as_deref())
            .await
        {
            Ok((notes, total)) if notes.is_empty() => {
                success(format!("no notes (total {total}, offset {offset})"))
            }
            Ok((notes, total)) => {
                let last = i64::from(offset) + notes.len() as i64;
                success(format!(
                    "notes {}..{last} of {total}\n{}",
                    offset + 1,
                    summaries(&notes)
                ))
            }
            Err(message) => failure(message),
        }
    }

    #[tool(
        description = "Delete a note by id, permanently.",
        annotations(
            title = "Delete note",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_note(&self, Parameters(args): Parameters<NoteIdArgs>) -> CallToolResult {
        match self.delete(args.id).await {
            Ok(true) => success(format!("deleted note #{}", args.id)),
            Ok(false) => failure(format!("note #{} does not exist", args.id)),
            Err(message) => failure(message),
        }
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "notes",
    instructions = "A persistent note store. Save facts with add_note, find them again with \
                    search_notes or list_notes, read one with get_note."
)]
impl ServerHandler for Notes {}

fn success(text: String) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn failure(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn db_error(err: sqlx::Error) -> String {
    tracing::warn!(error = %err, "notes database error");
    format!("the note store failed: {err}")
}

fn now() -> String {
    let now = jiff::Timestamp::now();
    now.round(jiff::Unit::Second).unwrap_or(now).to_string()
}

fn check_limit(limit: Option<u32>) -> Result<u32, String> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(format!("limit must be between 1 and {MAX_LIMIT}"));
    }
    Ok(limit)
}

fn push_tag_filter(sql: &mut QueryBuilder<Sqlite>, tag: Option<&str>) {
    if let Some(tag) = tag.map(str::trim).filter(|t| !t.is_empty()) {
        sql.push(" AND EXISTS (SELECT 1 FROM note_tags t WHERE t.note_id = n.id AND t.tag = ")
            .push_bind(tag.to_owned())
            .push(")");
    }
}

/// Trim, check and de-duplicate (case-insensitively) the tags of a new note.
fn normalize_tags(tags: &[String]) -> Result<Vec<String>, String> {
    if tags.len() > MAX_TAGS {
        return Err(format!(
            "{} tags given; the limit is {MAX_TAGS}",
            tags.len()
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() {
            return Err("tags must not be empty".to_owned());
        }
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(format!(
                "tag `{tag}` is longer than {MAX_TAG_CHARS} characters"
            ));
        }
        if tag.chars().any(char::is_control) {
            return Err("tags must not contain control characters".to_owned());
        }
        if !out.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) {
            out.push(tag.to_owned());
        }
    }
    Ok(out)
}

/// Escape `\`, `%` and `_` for `LIKE … ESCAPE '\'`.
fn escape_like(term: &str) -> String {
    let mut out = String::with_capacity(term.len());
    for c in term.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn note_from_row((id, title, body, created_at, updated_at, tags): NoteRow) -> Note {
    let mut tags: Vec<String> = tags
        .map(|t| t.split(TAG_SEPARATOR).map(str::to_owned).collect())
        .unwrap_or_default();
    tags.sort_by_key(|t| t.to_lowercase());
    Note {
        id,
        title,
        body,
        tags,
        created_at,
        updated_at,
    }
}

fn tag_list(tags: &[String]) -> String {
    if tags.is_empty() {
        "(none)".to_owned()
    } else {
        tags.join(", ")
    }
}

/// One block per note: id, title, tags, date and a one-line preview of the body.
fn summaries(notes: &[Note]) -> String {
    notes
        .iter()
        .map(|note| {
            let preview: String = note.body.split_whitespace().collect::<Vec<_>>().join(" ");
            let mut short: String = preview.chars().take(160).collect();
            if short.len() < preview.len() {
                short.push('…');
            }
            let tags = if note.tags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", note.tags.join(", "))
            };
            format!(
                "#{} {}{tags} ({})\n    {short}",
                note.id, note.title, note.updated_at
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Notes) {
        let dir = tempfile::tempdir().expect("tempdir");
        let notes = Notes::open(&dir.path().join("nested/dir/notes.db"))
            .await
            .expect("open");
        (dir, notes)
    }

    fn ids(notes: &[Note]) -> Vec<i64> {
        notes.iter().map(|n| n.id).collect()
    }

    #[tokio::test]
    async fn add_get_delete_round_trip() {
        let (_dir, notes) = store().await;
        let id = notes
            .add(
                "  Groceries ",
                "milk, eggs",
                &["Home".into(), "home".into(), "todo".into()],
            )
            .await
            .expect("add");
        let note = notes.get(id).await.expect("get").expect("exists");
        assert_eq!(note.title, "Groceries");
        assert_eq!(note.body, "milk, eggs");
        assert_eq!(note.tags, vec!["Home".to_owned(), "todo".to_owned()]);
        assert!(note.created_at.ends_with('Z'));
        assert!(notes.delete(id).await.expect("delete"));
        assert!(!notes.delete(id).await.expect("delete again"));
        assert_eq!(notes.get(id).await.expect("get"), None);
    }

    #[tokio::test]
    async fn search_is_case_insensitive_substring_and_respects_tags() {
        let (_dir, notes) = store().await;
        let a = notes
            .add(
                "Rust release",
                "The Borrow checker got faster",
                &["dev".into()],
            )
            .await
            .expect("add");
        let b = notes
            .add(
                "Garden",
                "Plant tomatoes in May; water daily",
                &["home".into()],
            )
            .await
            .expect("add");
        let c = notes
            .add("Discount", "100% off, see a_b", &[])
            .await
            .expect("add");
        let search = |q: &'static str, tag: Option<&'static str>| {
            let notes = notes.clone();
            async move { ids(&notes.search(q, tag, None).await.expect("search")) }
        };
        assert_eq!(search("borrow", None).await, vec![a]);
        assert_eq!(search("CHECK", None).await, vec![a]);
        assert_eq!(search("tomato water", None).await, vec![b]);
        assert_eq!(search("tomato rust", None).await, Vec::<i64>::new());
        assert_eq!(search("in", None).await, vec![b]);
        assert_eq!(search("in", Some("HOME")).await, vec![b]);
        assert_eq!(search("in", Some("dev")).await, Vec::<i64>::new());
        // Wildcards are literal.
        assert_eq!(search("0%", None).await, vec![c]);
        assert_eq!(search("a_b", None).await, vec![c]);
        assert_eq!(search("%", None).await, vec![c]);
        assert_eq!(search("_", None).await, vec![c]);
        // FTS syntax is literal too.
        assert_eq!(search("\"borrow\" OR", None).await, Vec::<i64>::new());
        assert_eq!(search("NEAR(x", None).await, Vec::<i64>::new());
        assert!(notes.search("   ", None, None).await.is_err());
        assert!(notes.search("x", None, Some(101)).await.is_err());
    }

    #[tokio::test]
    async fn list_pages_newest_first() {
        let (_dir, notes) = store().await;
        let mut added = Vec::new();
        for i in 0..5 {
            let tags = if i % 2 == 0 {
                vec!["even".to_owned()]
            } else {
                vec![]
            };
            added.push(notes.add(&format!("n{i}"), "x", &tags).await.expect("add"));
        }
        let (page, total) = notes.list(Some(2), Some(1), None).await.expect("list");
        assert_eq!(total, 5);
        assert_eq!(ids(&page), vec![added[3], added[2]]);
        let (even, total) = notes.list(None, None, Some("even")).await.expect("list");
        assert_eq!(total, 3);
        assert_eq!(ids(&even), vec![added[4], added[2], added[0]]);
    }

    #[tokio::test]
    async fn caps_are_enforced() {
        let (_dir, notes) = store().await;
        assert!(notes.add("", "b", &[]).await.is_err());
        assert!(notes.add(&"t".repeat(201), "b", &[]).await.is_err());
        assert!(notes.add(&"é".repeat(200), "b", &[]).await.is_ok());
        assert!(
            notes
                .add("t", &"b".repeat(MAX_BODY_BYTES + 1), &[])
                .await
                .is_err()
        );
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(notes.add("t", "b", &many).await.is_err());
        assert!(notes.add("t", "b", &["".into()]).await.is_err());
        assert!(notes.add("t", "b", &["a\u{1f}b".into()]).await.is_err());
    }

    #[tokio::test]
    async fn notes_persist_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.db");
        let id = {
            let notes = Notes::open(&path).await.expect("open");
            notes.add("keep", "me", &[]).await.expect("add")
        };
        let notes = Notes::open(&path).await.expect("reopen");
        let note = notes.get(id).await.expect("get").expect("exists");
        assert_eq!(note.title, "keep");
        assert_eq!(
            ids(&notes.search("keep", None, None).await.expect("search")),
            vec![id]
        );
    }

    #[tokio::test]
    async fn tools_report_errors_as_is_error() {
        let (_dir, notes) = store().await;
        let missing = notes.get_note(Parameters(NoteIdArgs { id: 42 })).await;
        assert_eq!(missing.is_error, Some(true));
        let deleted = notes.delete_note(Parameters(NoteIdArgs { id: 42 })).await;
        assert_eq!(deleted.is_error, Some(true));
        let added = notes
            .add_note(Parameters(AddNoteArgs {
                title: "t".into(),
                body: "b".into(),
                tags: None,
            }))
            .await;
        assert_eq!(added.is_error, Some(false));
        let tools = notes.tool_router.list_all();
        let delete = tools
            .iter()
            .find(|t| t.name == "delete_note")
            .expect("tool");
        assert_eq!(
            delete.annotations.as_ref().and_then(|a| a.destructive_hint),
            Some(true)
        );
    }
}
