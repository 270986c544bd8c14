//! Control characters from outside never reach a terminal raw.
//!
//! A child's stderr, a server's log message, a provider's error text: any of them may carry a
//! carriage return (`ok\rFORGED` overwrites the start of its own log line), an ANSI sequence
//! (colours, cursor moves, a new window title), a C1 control or a bidi override, and a
//! terminal showing our log would then show something we never wrote. Everything we log passes
//! [`EscapingFields`], the field formatter of our subscriber, which writes such characters as
//! visible escapes (`\r`, `\x1b`, `\u{202e}`); [`escape_control`] does the same for text kept
//! for later display (a server's stderr tail).
//!
//! Backslashes are not doubled: the escape is for reading, not for decoding, and keeping it
//! idempotent means text escaped once (a tail line) and logged again reads the same.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// True for a character a terminal would act on instead of showing: C0 controls other than tab,
/// DEL, C1 controls, bidi embeddings/overrides/isolates and marks, and the Unicode line and
/// paragraph separators.
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Write `c` (one that [`needs_escape`]) as a visible escape.
fn write_escape(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    }
}

/// `text` with every control character a terminal would act on written as a visible escape
/// (`\r`, `\n`, `\x1b`, `\u{9b}`, `\u{202e}`); borrowed when there is nothing to escape.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let _ = EscapingWriter(&mut out).write_str(text);
    Cow::Owned(out)
}

/// Shows a value through [`escape_control`] without building the unescaped text first; for
/// external text put into a message or an error (`format!("{}", Escaped(&name))`).
#[derive(Debug, Clone, Copy)]
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

/// A `fmt::Write` that escapes what passes through it.
struct EscapingWriter<W>(W);

impl<W: fmt::Write> fmt::Write for EscapingWriter<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut safe_from = 0;
        for (at, c) in s.char_indices() {
            if needs_escape(c) {
                self.0.write_str(&s[safe_from..at])?;
                write_escape(&mut self.0, c)?;
                safe_from = at + c.len_utf8();
            }
        }
        self.0.write_str(&s[safe_from..])
    }
}

/// The field formatter of our log subscriber: fields as `tracing_subscriber`'s default writes
/// them (the message bare, then `name=value`, strings quoted), every value escaped.
///
/// The formatter is the one place every log line passes, so no call site can forget to escape,
/// and `tracing_subscriber`'s own sanitizing is not enough: it leaves carriage returns and line
/// feeds alone, and does not touch `%value` fields at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapingFields;

impl<'writer> FormatFields<'writer> for EscapingFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'a, 'writer> {
    writer: &'a mut Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_, '_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // `log` records bridged into tracing carry their metadata as fields; the event
        // formatter shows it already.
        if name.starts_with("log.") {
            return;
        }
        self.result = (|| {
            if !self.first {
                self.writer.write_char(' ')?;
            }
            self.first = false;
            if name != "message" {
                write!(self.writer, "{}=", name.strip_prefix("r#").unwrap_or(name))?;
            }
            EscapingWriter(&mut *self.writer).write_fmt(value)
        })();
    }
}

impl Visit for EscapingVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut sources = Vec::new();
        let mut source = value.source();
        while let Some(cause) = source {
            sources.push(cause.to_string());
            source = cause.source();
        }
        if sources.is_empty() {
            self.write(field, format_args!("{value}"));
        } else {
            let name = field.name();
            let list = sources.join(", ");
            self.write(field, format_args!("{value} {name}.sources=[{list}]"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        let cases = [
            ("plain text, tabs\tstay", "plain text, tabs\tstay"),
            ("ok\rFORGED", r"ok\rFORGED"),
            ("two\nlines", r"two\nlines"),
            ("\u{1b}[31mred\u{1b}[0m", r"\x1b[31mred\x1b[0m"),
            ("title\u{1b}]0;x\u{7}", r"title\x1b]0;x\x07"),
            ("nul\u{0} bs\u{8} del\u{7f}", r"nul\x00 bs\x08 del\x7f"),
            ("c1 \u{9b}31m \u{85}", r"c1 \u{9b}31m \u{85}"),
            (
                "bidi \u{202e}x\u{202c} \u{2066}y\u{2069} \u{200f}\u{61c}",
                r"bidi \u{202e}x\u{202c} \u{2066}y\u{2069} \u{200f}\u{61c}",
            ),
            ("sep\u{2028}par\u{2029}", r"sep\u{2028}par\u{2029}"),
            ("ünïcödé and 日本語 stay", "ünïcödé and 日本語 stay"),
        ];
        for (raw, shown) in cases {
            assert_eq!(escape_control(raw), shown, "{raw:?}");
            assert_eq!(Escaped(raw).to_string(), shown, "{raw:?}");
            // Idempotent: escaping an escaped text changes nothing.
            assert_eq!(escape_control(shown), shown);
        }
        assert!(matches!(escape_control("nothing to do"), Cow::Borrowed(_)));
    }

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer\rforged")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner\u{1b}[2J")]
    struct Inner;

    #[test]
    fn every_kind_of_field_is_escaped_in_the_log() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(EscapingFields)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let name = "srv\r\u{1b}[1m";
            let text = String::from("provider said: no\rINFO forged");
            let span = tracing::info_span!("call", tool = %"t\u{202e}x");
            let _entered = span.enter();
            tracing::warn!(
                server = %name,
                plain = name,
                debug = ?text,
                error = &Outer(Inner) as &(dyn std::error::Error + 'static),
                "line\r{text}"
            );
        });
        let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        assert_eq!(log.lines().count(), 1, "{log:?}");
        let raw: Vec<char> = log
            .chars()
            .filter(|c| needs_escape(*c) && *c != '\n')
            .collect();
        assert!(raw.is_empty(), "raw controls {raw:?} in {log:?}");
        for shown in [
            r"line\rprovider said: no\rINFO forged",
            r"server=srv\r\x1b[1m",
            r#"plain="srv\r\u{1b}[1m""#,
            r#"debug="provider said: no\rINFO forged""#,
            r"error=outer\rforged error.sources=[inner\x1b[2J]",
            r"tool=t\u{202e}x",
        ] {
            assert!(log.contains(shown), "{shown} not in {log:?}");
        }
    }
}
