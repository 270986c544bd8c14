//! A child's stderr: every line is kept in the server's tail (for the status API and error
//! messages), and logged under a per-server rate limit, so a child writing 200,000 lines cannot
//! flood our log; the lines left out are counted and the count is logged.
//!
//! The limit is a token bucket: [`STDERR_LOG_BURST`] lines at once, then
//! [`STDERR_LOG_PER_SECOND`]. Dropped lines are reported at most every [`STDERR_REPORT_EVERY`]
//! ("199,800 stderr lines from `srv` not logged in the last 10 s") and when stderr closes. The
//! bucket lives with the tail, which belongs to the server, not to one child: a crash loop
//! does not get a fresh burst at every restart. Lines are escaped
//! ([`crate::trace::escape_control`]) before they are kept, so the tail, and every error message
//! quoting it, shows a carriage return or an ANSI sequence as text.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::time::Instant;

use crate::trace::escape_control;

/// How many stderr lines are kept per server for the status API and error messages.
pub const STDERR_TAIL_LINES: usize = 40;
/// Lines of a server's stderr logged at once before the rate limit applies.
pub const STDERR_LOG_BURST: u32 = 100;
/// Lines of a server's stderr logged per second once the burst is spent.
pub const STDERR_LOG_PER_SECOND: u32 = 10;
/// Longest a count of stderr lines left out of the log waits before it is logged.
pub const STDERR_REPORT_EVERY: Duration = Duration::from_secs(10);
/// Longest stderr line kept; longer lines are cut so a noisy child cannot grow our memory.
const STDERR_LINE_MAX: usize = 2048;

/// The last lines a child wrote to stderr (escaped), shared between the reader task and the
/// status API, and the server's log rate limit.
#[derive(Debug, Clone, Default)]
pub struct StderrTail(Arc<Mutex<TailState>>);

#[derive(Debug, Default)]
struct TailState {
    lines: VecDeque<String>,
    /// Created with the first line, full.
    bucket: Option<Bucket>,
    /// Lines not logged since `dropped_since`.
    dropped: u64,
    dropped_since: Option<Instant>,
}

/// What to do with a line just kept in the tail.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Log it (escaped).
    Log(String),
    /// Leave it out of the log; the count of such lines is due at `report_at`.
    Dropped { report_at: Instant },
}

/// Lines not logged, and for how long they were counted.
#[derive(Debug, PartialEq, Eq)]
struct Dropped {
    lines: u64,
    over: Duration,
}

impl StderrTail {
    /// A copy of the kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.iter().cloned().collect()
    }

    /// Keep `line` (escaped) and say whether the rate limit lets it be logged at `now`.
    fn record(&self, line: &str, now: Instant) -> Verdict {
        let line = escape_control(line).into_owned();
        let mut state = self.lock();
        let allowed = state
            .bucket
            .get_or_insert_with(|| Bucket::full(STDERR_LOG_BURST, STDERR_LOG_PER_SECOND, now))
            .take(now);
        let verdict = if allowed {
            Verdict::Log(line.clone())
        } else {
            state.dropped += 1;
            let since = *state.dropped_since.get_or_insert(now);
            Verdict::Dropped {
                report_at: since + STDERR_REPORT_EVERY,
            }
        };
        if state.lines.len() == STDERR_TAIL_LINES {
            state.lines.pop_front();
        }
        state.lines.push_back(line);
        verdict
    }

    /// Take the count of lines not logged so far, if any.
    fn take_dropped(&self, now: Instant) -> Option<Dropped> {
        let mut state = self.lock();
        let since = state.dropped_since.take()?;
        let lines = std::mem::take(&mut state.dropped);
        Some(Dropped {
            lines,
            over: now.saturating_duration_since(since),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TailState> {
        // A poisoned tail only means a reader panicked mid-push; the lines are still usable.
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// A token bucket counting lines: `burst` at once, refilled at `per_second`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    updated: Instant,
}

impl Bucket {
    fn full(burst: u32, per_second: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_second: f64::from(per_second),
            updated: now,
        }
    }

    /// Take one token if there is one at `now`.
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Read `stderr` to its end: every line into `tail`, the ones the rate limit allows into our
/// log (with the server name), and the count of the others into the log when it is due.
pub(super) async fn read_stderr(server: String, stderr: impl AsyncRead + Unpin, tail: StderrTail) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    let mut report_at: Option<Instant> = None;
    loop {
        let read = tokio::select! {
            // The timer first: a flood keeps the reader always ready.
            biased;
            () = tokio::time::sleep_until(report_at.unwrap_or_else(Instant::now)),
                if report_at.is_some() =>
            {
                report_at = None;
                report_dropped(&server, &tail);
                continue;
            }
            read = read_line_capped(&mut reader, &mut buf, STDERR_LINE_MAX) => read,
        };
        let ended = match read {
            Ok(LineEnd::Newline) => false,
            Ok(LineEnd::Eof) if buf.is_empty() => break,
            Ok(LineEnd::Eof) => true,
            Err(_) => break,
        };
        let verdict = tail.record(String::from_utf8_lossy(&buf).trim_end(), Instant::now());
        buf.clear();
        match verdict {
            Verdict::Log(line) => {
                tracing::info!(target: "switchboard::mcp::stderr", server = %server, "{line}");
            }
            Verdict::Dropped { report_at: due } => {
                report_at.get_or_insert(due);
            }
        }
        if ended {
            break;
        }
    }
    report_dropped(&server, &tail);
}

/// Log how many lines of `server`'s stderr were left out of the log, if any were.
fn report_dropped(server: &str, tail: &StderrTail) {
    let Some(dropped) = tail.take_dropped(Instant::now()) else {
        return;
    };
    let seconds = dropped.over.as_secs().max(1);
    tracing::warn!(
        target: "switchboard::mcp::stderr",
        server = %server,
        dropped = dropped.lines,
        "{} stderr lines from `{server}` not logged in the last {seconds} s \
         (at most {STDERR_LOG_BURST} at once, then {STDERR_LOG_PER_SECOND}/s; \
         the status API keeps the last {STDERR_TAIL_LINES})",
        thousands(dropped.lines),
    );
}

/// `199800` as `199,800`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// How a read of one line ended.
#[derive(Debug, PartialEq, Eq)]
enum LineEnd {
    /// A newline: `out` holds the line (without it).
    Newline,
    /// The end of the stream: `out` holds the last, unterminated line, possibly empty.
    Eof,
}

/// Read one line into `out`, keeping at most `max` bytes of it and discarding the rest, so a
/// child that never writes a newline to stderr costs bounded memory.
///
/// Cancel-safe as long as the caller keeps `out` until the line is complete: bytes are moved
/// from the reader's buffer into `out` (or discarded) without an await in between.
async fn read_line_capped(
    reader: &mut BufReader<impl AsyncRead + Unpin>,
    out: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineEnd> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(LineEnd::Eof);
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(newline) => (&available[..newline], Some(newline + 1)),
            None => (available, None),
        };
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let consumed = done.unwrap_or(available.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(LineEnd::Newline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::full(5, 2, start);
        assert_eq!((0..10).filter(|_| bucket.take(start)).count(), 5);
        // Half a second later one more token has come in; a full second, two.
        assert!(bucket.take(start + Duration::from_millis(500)));
        assert!(!bucket.take(start + Duration::from_millis(500)));
        let later = start + Duration::from_millis(1500);
        assert_eq!((0..10).filter(|_| bucket.take(later)).count(), 2);
        // A long pause refills to the burst, not beyond.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!((0..10).filter(|_| bucket.take(much_later)).count(), 5);
    }

    #[test]
    fn every_line_reaches_the_tail_and_drops_are_counted() {
        let tail = StderrTail::default();
        let start = Instant::now();
        let total = 1000u64;
        let mut logged = 0u64;
        let mut due = None;
        for i in 0..total {
            match tail.record(&format!("line {i}\r"), start) {
                Verdict::Log(line) => {
                    assert_eq!(line, format!("line {i}\\r"));
                    logged += 1;
                }
                Verdict::Dropped { report_at } => {
                    assert_eq!(*due.get_or_insert(report_at), report_at);
                }
            }
        }
        assert_eq!(logged, u64::from(STDERR_LOG_BURST));
        assert_eq!(due, Some(start + STDERR_REPORT_EVERY));
        let lines = tail.lines();
        assert_eq!(lines.len(), STDERR_TAIL_LINES);
        assert_eq!(lines.last().map(String::as_str), Some("line 999\\r"));
        let later = start + Duration::from_secs(3);
        assert_eq!(
            tail.take_dropped(later),
            Some(Dropped {
                lines: total - logged,
                over: Duration::from_secs(3),
            })
        );
        assert_eq!(tail.take_dropped(later), None);
        // The bucket refilled meanwhile: the next line is logged again.
        assert!(matches!(tail.record("again", later), Verdict::Log(_)));
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(199_800), "199,800");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_the_last_line_needs_no_newline() {
        let input: &[u8] = b"short\nxxxxxxxxxxxxxxxx\nlast";
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        let mut lines = Vec::new();
        loop {
            let end = read_line_capped(&mut reader, &mut out, 8)
                .await
                .expect("read");
            lines.push(String::from_utf8_lossy(&out).into_owned());
            out.clear();
            if end == LineEnd::Eof {
                break;
            }
        }
        assert_eq!(lines, ["short", "xxxxxxxx", "last"]);
    }
}
