//! Containment, paging and search tests for the `files` server, on temporary trees.

use super::*;

struct Fixture {
    outside: tempfile::TempDir,
    root: tempfile::TempDir,
    files: Files,
}

/// root/
///   hello.txt          "hello world\nsecond line\n"
///   docs/notes.md      "# Notes\nThe Quick brown fox\n"
///   data.bin           bytes with NUL
///   big.txt            200 000 bytes
///   inside_link -> docs/notes.md
///   escape_link -> <outside>/secret.txt
///   escape_dir  -> <outside>
/// outside/secret.txt
fn fixture() -> Fixture {
    let outside = tempfile::tempdir().expect("tempdir");
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    fs::write(outside.path().join("secret.txt"), "top secret").expect("write");
    fs::write(r.join("hello.txt"), "hello world\nsecond line\n").expect("write");
    fs::create_dir(r.join("docs")).expect("mkdir");
    fs::write(r.join("docs/notes.md"), "# Notes\nThe Quick brown fox\n").expect("write");
    fs::write(r.join("data.bin"), [0x89, b'P', 0, 1, 2, 3]).expect("write");
    let big: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    fs::write(r.join("big.txt"), big).expect("write");
    std::os::unix::fs::symlink(r.join("docs/notes.md"), r.join("inside_link")).expect("ln");
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), r.join("escape_link"))
        .expect("ln");
    std::os::unix::fs::symlink(outside.path(), r.join("escape_dir")).expect("ln");
    let files = Files::new(r).expect("root");
    Fixture {
        outside,
        root,
        files,
    }
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn read(files: &Files, path: &str, offset: Option<u64>, max: Option<u64>) -> CallToolResult {
    let args = ReadFileArgs {
        path: path.into(),
        offset,
        max_bytes: max,
        encoding: None,
    };
    match files.read_file_sync(&args) {
        Ok(content) => CallToolResult::success(content),
        Err(err) => CallToolResult::error(vec![ContentBlock::text(err.to_string())]),
    }
}

#[track_caller]
fn assert_escapes(files: &Files, path: &str) {
    let result = read(files, path, None, None);
    assert_eq!(result.is_error, Some(true), "{path}");
    let message = text(&result);
    assert_eq!(message, "path escapes the shared directory", "{path}");
}

#[test]
fn traversal_is_refused() {
    let fx = fixture();
    assert_escapes(&fx.files, "../secret.txt");
    assert_escapes(&fx.files, "docs/../../secret.txt");
    assert_escapes(&fx.files, "docs/../../../../../../etc/passwd");
    assert_escapes(&fx.files, "..");
    // Climbing out and back in is refused lexically too.
    let name = fx
        .root
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name");
    assert_escapes(&fx.files, &format!("../{name}/hello.txt"));
}

#[test]
fn absolute_paths_outside_are_refused() {
    let fx = fixture();
    assert_escapes(&fx.files, "/etc/passwd");
    let secret = fx.outside.path().join("secret.txt");
    assert_escapes(&fx.files, secret.to_str().expect("utf-8"));
    // Starting inside the root and climbing out is refused before the disk is asked.
    let climbing = fx.files.root.join("docs/../../x/secret.txt");
    assert_escapes(&fx.files, climbing.to_str().expect("utf-8"));
    // An absolute path that is inside the root is fine.
    let inside = fx.files.root.join("hello.txt");
    let result = read(&fx.files, inside.to_str().expect("utf-8"), None, None);
    assert_eq!(result.is_error, Some(false));
}

#[test]
fn symlinks_escaping_are_refused_and_inside_ones_work() {
    let fx = fixture();
    assert_escapes(&fx.files, "escape_link");
    assert_escapes(&fx.files, "escape_dir/secret.txt");
    let result = read(&fx.files, "inside_link", None, None);
    assert_eq!(result.is_error, Some(false));
    assert!(text(&result).contains("Quick brown fox"));
    let listing = fx.files.list_directory_sync(None).expect("list");
    let listing = listing[0]
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    assert!(listing.contains("[link] escape_link (points outside the shared directory)"));
    assert!(listing.contains("[dir]  docs/"));
    assert!(!listing.contains(fx.outside.path().to_str().expect("utf-8")));
}

#[test]
fn string_prefix_siblings_are_not_inside() {
    let parent = tempfile::tempdir().expect("tempdir");
    fs::create_dir(parent.path().join("share")).expect("mkdir");
    fs::create_dir(parent.path().join("shared")).expect("mkdir");
    fs::write(parent.path().join("shared/x.txt"), "x").expect("write");
    let files = Files::new(&parent.path().join("share")).expect("root");
    assert_escapes(&files, "../shared/x.txt");
    let abs = parent.path().join("shared/x.txt");
    assert_escapes(&files, abs.to_str().expect("utf-8"));
}

#[test]
fn binary_files_are_refused_as_text_but_readable_as_base64() {
    let fx = fixture();
    let result = read(&fx.files, "data.bin", None, None);
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("binary"));
    let args = ReadFileArgs {
        path: "data.bin".into(),
        offset: None,
        max_bytes: None,
        encoding: Some(Encoding::Base64),
    };
    let content = fx.files.read_file_sync(&args).expect("base64 read");
    assert_eq!(
        content[0].as_text().map(|t| t.text.as_str()),
        Some("iVAAAQID")
    );
}

#[test]
fn large_files_are_paged_by_offset() {
    let fx = fixture();
    let first = read(&fx.files, "big.txt", None, None);
    assert_eq!(first.is_error, Some(false));
    assert_eq!(
        first.content[0].as_text().map(|t| t.text.len()),
        Some(65_536)
    );
    assert!(text(&first).contains("bytes 0..65536 of 200000; continue with offset 65536"));
    let last = read(&fx.files, "big.txt", Some(199_990), Some(100));
    let body = last.content[0]
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    assert_eq!(body.len(), 10);
    assert!(body.starts_with(char::from(b'a' + (199_990 % 26) as u8)));
    assert!(text(&last).contains("bytes 199990..200000 of 200000]"));
    let past = read(&fx.files, "big.txt", Some(300_000), None);
    assert_eq!(past.is_error, Some(true));
    let too_much = read(&fx.files, "big.txt", None, Some(MAX_READ_BYTES + 1));
    assert_eq!(too_much.is_error, Some(true));
    let small = read(&fx.files, "hello.txt", None, None);
    assert_eq!(text(&small), "hello world\nsecond line\n");
}

#[test]
fn missing_and_wrong_kinds() {
    let fx = fixture();
    let missing = read(&fx.files, "nope.txt", None, None);
    assert_eq!(text(&missing), "`nope.txt` does not exist");
    let dir = read(&fx.files, "docs", None, None);
    assert_eq!(text(&dir), "`docs` is not a regular file");
    let err = fx
        .files
        .list_directory_sync(Some("hello.txt"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("`hello.txt` is not a directory"));
}

#[test]
fn search_by_name_and_content() {
    let fx = fixture();
    let search = |query: &str, content: bool| {
        let args = SearchFilesArgs {
            query: query.into(),
            path: None,
            content: Some(content),
            max_results: None,
        };
        let out = fx.files.search_files_sync(&args).expect("search");
        out[0].as_text().map(|t| t.text.clone()).unwrap_or_default()
    };
    let names = search("NOTES", false);
    assert!(names.contains("docs/notes.md"), "{names}");
    let contents = search("quick", true);
    assert!(
        contents.contains("docs/notes.md:2: The Quick brown fox"),
        "{contents}"
    );
    // The escaping link is never read, and the outside dir is not descended.
    let secret = search("secret", true);
    assert!(!secret.contains("top secret"), "{secret}");
    assert!(secret.contains("no matches"), "{secret}");
}

#[test]
fn search_is_bounded() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut dir = root.path().to_path_buf();
    for i in 0..30 {
        dir = dir.join(format!("d{i}"));
    }
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("target.txt"), "x").expect("write");
    for i in 0..600 {
        fs::write(root.path().join(format!("match{i}.txt")), "x").expect("write");
    }
    let files = Files::new(root.path()).expect("root");
    let args = SearchFilesArgs {
        query: "target".into(),
        path: None,
        content: None,
        max_results: None,
    };
    let out = files.search_files_sync(&args).expect("search");
    let out = out[0].as_text().map(|t| t.text.clone()).unwrap_or_default();
    assert!(out.contains("no matches"), "{out}");
    assert!(out.contains("deeper than 16"), "{out}");
    let args = SearchFilesArgs {
        query: "match".into(),
        path: None,
        content: None,
        max_results: Some(10),
    };
    let out = files.search_files_sync(&args).expect("search");
    let out = out[0].as_text().map(|t| t.text.clone()).unwrap_or_default();
    assert_eq!(out.lines().filter(|l| l.starts_with("match")).count(), 10);
    assert!(out.contains("10 results reached"));
}

#[test]
fn file_info_describes() {
    let fx = fixture();
    let info = fx.files.file_info_sync("inside_link").expect("info");
    let info = info[0]
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    assert!(info.contains("path: docs/notes.md"), "{info}");
    assert!(info.contains("symlink: true"), "{info}");
    assert!(info.contains("content: text"), "{info}");
    let info = fx.files.file_info_sync("data.bin").expect("info");
    let info = info[0]
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    assert!(info.contains("content: binary"), "{info}");
    let err = fx.files.file_info_sync("../x").err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("path escapes the shared directory"));
}

#[test]
fn root_must_be_a_directory() {
    let fx = fixture();
    assert!(Files::new(&fx.root.path().join("hello.txt")).is_err());
    assert!(Files::new(&fx.root.path().join("missing")).is_err());
}
