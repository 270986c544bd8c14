//! Build script (kept in `src/` so the repository's top level stays as designed).
//!
//! - Embeds the web UI: every file under `web/` becomes an entry of `$OUT_DIR/web_assets.rs`
//!   (`include_bytes!` with its path), so `cargo run` is the only build step and the binary
//!   serves the UI with no files beside it. Adding a file to `web/` needs no code change.
//! - Rebuilds when `web/` or `migrations/` change (sqlx embeds migrations at compile time and
//!   would otherwise miss a new file).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let web = root.join("web");
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=migrations");
    let mut files = Vec::new();
    collect(&web, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&web)
            .expect("under web/")
            .components()
            .map(|c| c.as_os_str().to_str().expect("UTF-8 file names under web/"))
            .collect::<Vec<_>>()
            .join("/");
        writeln!(
            out,
            "    ({relative:?}, include_bytes!({:?}) as &[u8]),",
            file.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push(']');
    let dest =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("web_assets.rs");
    std::fs::write(dest, out).expect("writing web_assets.rs");
}

/// Every regular file under `dir`, skipping hidden files (editor swap files and the like).
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else if path.is_file() {
            files.push(path);
        }
    }
}
