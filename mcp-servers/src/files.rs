//! The `files` server: read-only access to one shared directory.
//!
//! Containment is the whole point of this module. The root is canonicalized once; each
//! request path is checked lexically (no `..` climbing above the root, no absolute path
//! outside it), then joined, canonicalized and required to start with the canonical
//! root by path components (`Path::starts_with`, not string prefix, so `/srv/a` does not
//! contain `/srv/ab`). Symlinks are resolved by that canonicalization, so a link that
//! leads outside is refused while one that stays inside works. Refusals say "path
//! escapes the shared directory" and never show the outside path; every path shown to
//! the peer is relative to the root.
//!
//! The module never writes, never follows directory symlinks while searching (no
//! loops), and bounds every walk by depth, entry count and bytes scanned. Filesystem
//! calls run on the blocking pool.

use std::{
    fs,
    io::{self, Read, Seek, SeekFrom},
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use base64::Engine as _;
use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock},
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use search::Search;
use serde::Deserialize;

mod search;

/// Bytes `read_file` returns when `max_bytes` is not given.
pub const DEFAULT_READ_BYTES: u64 = 64 * 1024;
/// Largest `max_bytes` accepted.
pub const MAX_READ_BYTES: u64 = 1024 * 1024;
/// Most entries `list_directory` shows.
pub const MAX_LIST_ENTRIES: usize = 1000;
/// Most entries of one directory `list_directory` reads before sorting (it counts the
/// rest); the listing shows the first [`MAX_LIST_ENTRIES`] of them by name.
pub const MAX_LIST_SCAN: usize = 50_000;
/// Deepest directory level `search_files` descends to below its start.
pub const MAX_SEARCH_DEPTH: usize = 16;
/// Most directory entries `search_files` looks at.
pub const MAX_SEARCH_ENTRIES: usize = 20_000;
/// Most bytes a content search reads in total.
pub const MAX_SEARCH_BYTES: u64 = 32 * 1024 * 1024;
/// Files larger than this are skipped by a content search.
pub const MAX_GREP_FILE_BYTES: u64 = 1024 * 1024;
/// Default and largest `max_results`.
pub const DEFAULT_RESULTS: usize = 50;
/// Largest `max_results` accepted.
pub const MAX_RESULTS: usize = 500;

/// Why a request was refused. The `Display` text goes to the peer, so it only ever
/// shows paths relative to the root.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The path leads outside the root (by `..`, an absolute path or a symlink).
    #[error("path escapes the shared directory")]
    Escapes,
    /// Nothing exists at the path.
    #[error("`{0}` does not exist")]
    NotFound(String),
    /// A directory was needed.
    #[error("`{0}` is not a directory")]
    NotADirectory(String),
    /// A regular file was needed.
    #[error("`{0}` is not a regular file")]
    NotAFile(String),
    /// The file is not text and base64 was not requested.
    #[error(
        "`{0}` looks like a binary file; call read_file with encoding \"base64\" to get its raw bytes"
    )]
    Binary(String),
    /// Invalid arguments.
    #[error("{0}")]
    Invalid(String),
    /// Any other I/O failure.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// Relative path.
        path: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

/// The `files` MCP server.
#[derive(Debug, Clone)]
pub struct Files {
    root: Arc<PathBuf>,
    tool_router: ToolRouter<Self>,
}

/// Arguments of `list_directory`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListDirectoryArgs {
    /// Directory to list, relative to the shared directory. Defaults to the shared
    /// directory itself.
    #[serde(default)]
    pub path: Option<String>,
}

/// How `read_file` returns the bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 text; binary files are refused.
    #[default]
    Text,
    /// The raw bytes, base64-encoded; works for any file.
    Base64,
}

/// Arguments of `read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadFileArgs {
    /// File to read, relative to the shared directory.
    pub path: String,
    /// Byte offset to start reading at. Defaults to 0.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Most bytes to return. Defaults to 65536; at most 1048576.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// `text` (default) or `base64`.
    #[serde(default)]
    pub encoding: Option<Encoding>,
}

/// Arguments of `search_files`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchFilesArgs {
    /// Text to look for, case-insensitively, in file and directory names (and in file
    /// contents when `content` is true).
    pub query: String,
    /// Directory to search below, relative to the shared directory. Defaults to the
    /// shared directory itself.
    #[serde(default)]
    pub path: Option<String>,
    /// Also search inside text files (up to 1 MiB each, 32 MiB in total). Defaults to
    /// false.
    #[serde(default)]
    pub content: Option<bool>,
    /// Most matches to return. Defaults to 50; at most 500.
    #[serde(default)]
    pub max_results: Option<usize>,
}

/// Arguments of `file_info`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileInfoArgs {
    /// File or directory, relative to the shared directory.
    pub path: String,
}

impl Files {
    /// Serve `root`, which must be an existing directory.
    ///
    /// # Errors
    ///
    /// The I/O error from canonicalizing `root`, or `NotADirectory`.
    pub fn new(root: &Path) -> io::Result<Self> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "the shared directory is not a directory",
            ));
        }
        Ok(Self {
            root: Arc::new(root),
            tool_router: Self::tool_router(),
        })
    }

    /// Resolve a peer-supplied path to a canonical path inside the root.
    ///
    /// # Errors
    ///
    /// [`AccessError::Escapes`] for anything that leads outside,
    /// [`AccessError::NotFound`] when nothing exists there.
    pub fn resolve(&self, requested: Option<&str>) -> Result<PathBuf, AccessError> {
        let requested = requested.unwrap_or("").trim();
        if requested.is_empty() || requested == "." {
            return Ok(self.root.as_ref().clone());
        }
        if requested.contains('\0') {
            return Err(AccessError::Invalid("path contains a NUL byte".to_owned()));
        }
        let path = Path::new(requested);
        // The lexical check refuses obvious escapes before touching the disk, so the
        // answer for `../secret` does not depend on whether it exists.
        // An absolute path is allowed only when it names something under the root; its
        // part below the root then gets the same check as a relative path.
        let below_root = if path.is_absolute() {
            path.strip_prefix(self.root.as_ref())
                .map_err(|_| AccessError::Escapes)?
        } else {
            path
        };
        let mut depth: usize = 0;
        for component in below_root.components() {
            match component {
                Component::Normal(_) => depth += 1,
                Component::CurDir => {}
                Component::ParentDir => {
                    depth = depth.checked_sub(1).ok_or(AccessError::Escapes)?;
                }
                Component::RootDir | Component::Prefix(_) => return Err(AccessError::Escapes),
            }
        }
        let joined = self.root.join(path);
        let canonical = joined.canonicalize().map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => AccessError::NotFound(requested.to_owned()),
            _ => AccessError::Io {
                path: requested.to_owned(),
                source: err,
            },
        })?;
        if canonical.starts_with(self.root.as_ref()) {
            Ok(canonical)
        } else {
            Err(AccessError::Escapes)
        }
    }

    /// `path` (canonical, inside the root) as shown to the peer.
    fn relative(&self, path: &Path) -> String {
        match path.strip_prefix(self.root.as_ref()) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => "?".to_owned(),
        }
    }
}

#[tool_router]
impl Files {
    #[tool(
        description = "List the entries of a directory in the shared directory (default: its \
                       top level): name, kind (dir, file, link) and size. Paths are relative to \
                       the shared directory.",
        annotations(
            title = "List directory",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_directory(
        &self,
        Parameters(args): Parameters<ListDirectoryArgs>,
    ) -> CallToolResult {
        let this = self.clone();
        blocking(move || this.list_directory_sync(args.path.as_deref())).await
    }

    #[tool(
        description = "Read a file from the shared directory. Returns up to `max_bytes` (default \
                       64 KiB, at most 1 MiB) starting at byte `offset`, as UTF-8 text, or as \
                       base64 with encoding \"base64\". Binary files are refused as text. When \
                       more remains, a note says which offset to continue from.",
        annotations(
            title = "Read file",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn read_file(&self, Parameters(args): Parameters<ReadFileArgs>) -> CallToolResult {
        let this = self.clone();
        blocking(move || this.read_file_sync(&args)).await
    }

    #[tool(
        description = "Find files and directories in the shared directory whose names contain \
                       `query` (case-insensitive), searching below `path`. With `content: \
                       true`, also list lines of text files that contain `query`. The walk is \
                       bounded (depth 16, 20000 entries, 32 MiB of content) and does not follow \
                       directory symlinks.",
        annotations(
            title = "Search files",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn search_files(&self, Parameters(args): Parameters<SearchFilesArgs>) -> CallToolResult {
        let this = self.clone();
        blocking(move || this.search_files_sync(&args)).await
    }

    #[tool(
        description = "Describe one file or directory in the shared directory: kind, size, \
                       modification time, whether it is a symlink, and whether a file looks \
                       like text or binary.",
        annotations(
            title = "File info",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn file_info(&self, Parameters(args): Parameters<FileInfoArgs>) -> CallToolResult {
        let this = self.clone();
        blocking(move || this.file_info_sync(&args.path)).await
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "files",
    instructions = "Read-only access to a shared directory. All paths are relative to it; start \
                    with list_directory."
)]
impl ServerHandler for Files {}

/// Run `work` on the blocking pool and turn its outcome into a tool result.
async fn blocking<F>(work: F) -> CallToolResult
where
    F: FnOnce() -> Result<Vec<ContentBlock>, AccessError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(content)) => CallToolResult::success(content),
        Ok(Err(err)) => CallToolResult::error(vec![ContentBlock::text(err.to_string())]),
        Err(err) => CallToolResult::error(vec![ContentBlock::text(format!(
            "the file operation failed: {err}"
        ))]),
    }
}

impl Files {
    fn list_directory_sync(
        &self,
        requested: Option<&str>,
    ) -> Result<Vec<ContentBlock>, AccessError> {
        let dir = self.resolve(requested)?;
        let rel = self.relative(&dir);
        let io_err = |source| AccessError::Io {
            path: rel.clone(),
            source,
        };
        if !dir.is_dir() {
            return Err(AccessError::NotADirectory(rel));
        }
        // Keep at most MAX_LIST_SCAN entries in memory; beyond that only count, so a
        // directory with millions of files costs time but not memory.
        let mut entries = Vec::new();
        let mut total = 0usize;
        for entry in fs::read_dir(&dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            total += 1;
            if entries.len() < MAX_LIST_SCAN {
                entries.push(entry);
            }
        }
        entries.sort_by_key(|e| e.file_name());
        let mut lines = vec![format!(
            "{rel}: {total} entr{}",
            if total == 1 { "y" } else { "ies" }
        )];
        for entry in entries.iter().take(MAX_LIST_ENTRIES) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let line = match entry.file_type() {
                Ok(kind) if kind.is_dir() => format!("[dir]  {name}/"),
                Ok(kind) if kind.is_symlink() => {
                    let target = self.resolve(Some(&self.relative(&entry.path())));
                    match target {
                        Ok(target) if target.is_dir() => format!("[link] {name}/ (directory)"),
                        Ok(target) => format!(
                            "[link] {name} ({})",
                            human_size(fs::metadata(&target).map(|m| m.len()).unwrap_or(0))
                        ),
                        Err(AccessError::Escapes) => {
                            format!("[link] {name} (points outside the shared directory)")
                        }
                        Err(_) => format!("[link] {name} (broken)"),
                    }
                }
                Ok(_) => format!(
                    "[file] {name} ({})",
                    human_size(entry.metadata().map(|m| m.len()).unwrap_or(0))
                ),
                Err(_) => format!("[?]    {name}"),
            };
            lines.push(line);
        }
        if total > MAX_LIST_ENTRIES {
            lines.push(format!("… and {} more", total - MAX_LIST_ENTRIES));
        }
        Ok(vec![ContentBlock::text(lines.join("\n"))])
    }

    fn read_file_sync(&self, args: &ReadFileArgs) -> Result<Vec<ContentBlock>, AccessError> {
        let path = self.resolve(Some(&args.path))?;
        let rel = self.relative(&path);
        let io_err = |source| AccessError::Io {
            path: rel.clone(),
            source,
        };
        if !path.is_file() {
            return Err(AccessError::NotAFile(rel));
        }
        let max = args.max_bytes.unwrap_or(DEFAULT_READ_BYTES);
        if max == 0 || max > MAX_READ_BYTES {
            return Err(AccessError::Invalid(format!(
                "max_bytes must be between 1 and {MAX_READ_BYTES}"
            )));
        }
        let offset = args.offset.unwrap_or(0);
        let mut file = fs::File::open(&path).map_err(io_err)?;
        let size = file.metadata().map_err(io_err)?.len();
        if offset > size {
            return Err(AccessError::Invalid(format!(
                "offset {offset} is past the end of `{rel}` ({size} bytes)"
            )));
        }
        file.seek(SeekFrom::Start(offset)).map_err(io_err)?;
        let mut bytes = Vec::new();
        file.take(max).read_to_end(&mut bytes).map_err(io_err)?;
        let end = offset + bytes.len() as u64;
        let mut content = match args.encoding.unwrap_or_default() {
            Encoding::Base64 => vec![ContentBlock::text(
                base64::engine::general_purpose::STANDARD.encode(&bytes),
            )],
            Encoding::Text => {
                if looks_binary(&bytes) {
                    return Err(AccessError::Binary(rel));
                }
                vec![ContentBlock::text(
                    String::from_utf8_lossy(&bytes).into_owned(),
                )]
            }
        };
        if offset > 0 || end < size {
            let more = if end < size {
                format!("; continue with offset {end}")
            } else {
                String::new()
            };
            content.push(ContentBlock::text(format!(
                "[`{rel}`: bytes {offset}..{end} of {size}{more}]"
            )));
        }
        Ok(content)
    }

    fn search_files_sync(&self, args: &SearchFilesArgs) -> Result<Vec<ContentBlock>, AccessError> {
        let query = args.query.trim().to_lowercase();
        if query.is_empty() {
            return Err(AccessError::Invalid("query must not be empty".to_owned()));
        }
        let max_results = args.max_results.unwrap_or(DEFAULT_RESULTS);
        if max_results == 0 || max_results > MAX_RESULTS {
            return Err(AccessError::Invalid(format!(
                "max_results must be between 1 and {MAX_RESULTS}"
            )));
        }
        let start = self.resolve(args.path.as_deref())?;
        if !start.is_dir() {
            return Err(AccessError::NotADirectory(self.relative(&start)));
        }
        let mut search = Search {
            files: self,
            query,
            content: args.content.unwrap_or(false),
            max_results,
            name_hits: Vec::new(),
            line_hits: Vec::new(),
            entries_seen: 0,
            bytes_scanned: 0,
            truncated: None,
        };
        search.walk(start);
        let mut lines = Vec::new();
        if search.name_hits.is_empty() && search.line_hits.is_empty() {
            lines.push(format!("no matches for `{}`", args.query.trim()));
        }
        if !search.name_hits.is_empty() {
            lines.push("names:".to_owned());
            lines.extend(search.name_hits);
        }
        if !search.line_hits.is_empty() {
            lines.push("contents:".to_owned());
            lines.extend(search.line_hits);
        }
        if let Some(why) = search.truncated {
            lines.push(format!("[search stopped early: {why}]"));
        }
        Ok(vec![ContentBlock::text(lines.join("\n"))])
    }

    fn file_info_sync(&self, requested: &str) -> Result<Vec<ContentBlock>, AccessError> {
        let path = self.resolve(Some(requested))?;
        let rel = self.relative(&path);
        let io_err = |source| AccessError::Io {
            path: rel.clone(),
            source,
        };
        let meta = fs::metadata(&path).map_err(io_err)?;
        // Whether the *requested* path is a link; the canonical path never is.
        let is_link = fs::symlink_metadata(self.root.join(requested.trim()))
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        let kind = if meta.is_dir() {
            "directory"
        } else if meta.is_file() {
            "file"
        } else {
            "other"
        };
        let mut lines = vec![
            format!("path: {rel}"),
            format!("kind: {kind}"),
            format!("size: {} bytes ({})", meta.len(), human_size(meta.len())),
        ];
        if let Ok(modified) = meta.modified()
            && let Ok(ts) = jiff::Timestamp::try_from(modified)
        {
            lines.push(format!("modified: {ts}"));
        }
        lines.push(format!("symlink: {is_link}"));
        lines.push(format!("readonly: {}", meta.permissions().readonly()));
        if meta.is_file() {
            let mut head = Vec::new();
            fs::File::open(&path)
                .and_then(|f| f.take(8192).read_to_end(&mut head))
                .map_err(io_err)?;
            let content = if looks_binary(&head) {
                "binary"
            } else {
                "text"
            };
            lines.push(format!("content: {content}"));
        } else if meta.is_dir() {
            let count = fs::read_dir(&path).map(Iterator::count).unwrap_or(0);
            lines.push(format!("entries: {count}"));
        }
        Ok(vec![ContentBlock::text(lines.join("\n"))])
    }
}

/// A NUL byte in the first 8 KiB is the same heuristic git and grep use.
fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|&b| b == 0)
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests;
