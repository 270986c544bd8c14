//! Reading config files from disk: size cap, UTF-8 check with a position, BOM removal.
//!
//! Shared by the main YAML file and the included JSON files so both fail the same way.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::yaml::Pos;

/// Larger files are refused before parsing: no real config comes close, and parsing cost and
/// memory grow with size.
pub(super) const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Why a file could not be turned into text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReadError {
    /// Where, for encoding errors.
    pub(super) pos: Option<Pos>,
    /// What went wrong, lower case.
    pub(super) message: String,
}

/// The text of `path`, without a leading byte-order mark.
pub(super) fn read_text(path: &Path) -> Result<String, ReadError> {
    let plain = |message: String| ReadError { pos: None, message };
    let file = File::open(path).map_err(|e| plain(io_message(&e)))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(plain("is a directory, not a file".to_owned()));
    }
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| plain(io_message(&e)))?;
    check_size(bytes.len()).map_err(plain)?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(strip_bom(&text).to_owned()),
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            // `valid` is valid UTF-8 by definition; lossy conversion cannot change it.
            let before = String::from_utf8_lossy(valid);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            Err(ReadError {
                pos: Some(Pos { line, column }),
                message: "the file is not valid UTF-8".to_owned(),
            })
        }
    }
}

/// Refuses texts over [`MAX_FILE_BYTES`].
pub(super) fn check_size(len: usize) -> Result<(), String> {
    if len > MAX_FILE_BYTES {
        Err(format!(
            "the file is larger than the {} MiB limit",
            MAX_FILE_BYTES / (1024 * 1024)
        ))
    } else {
        Ok(())
    }
}

/// `text` without a UTF-8 byte-order mark, which some Windows editors add.
pub(super) fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

fn io_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::IsADirectory => "is a directory, not a file".to_owned(),
        _ => {
            let text = e.to_string();
            let mut chars = text.chars();
            chars.next().map_or(text.clone(), |first| {
                first.to_lowercase().chain(chars).collect()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_text(&dir.path().join("nope.yaml")).unwrap_err();
        assert_eq!(e.message, "no such file");
        let e = read_text(dir.path()).unwrap_err();
        assert_eq!(e.message, "is a directory, not a file");
    }

    #[test]
    fn invalid_utf8_has_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, b"a: 1\nbb: \xff\n").unwrap();
        let e = read_text(&path).unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 2, column: 5 }));
    }

    #[test]
    fn bom_is_removed_and_size_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bom.yaml");
        std::fs::write(&path, "\u{feff}a: 1\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "a: 1\n");
        assert!(check_size(MAX_FILE_BYTES).is_ok());
        assert!(check_size(MAX_FILE_BYTES + 1).is_err());
    }
}
