//! stdio transport: the child's stdout is read through a frame-size guard so a server that writes
//! without newlines fails fast instead of growing our memory.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// Largest JSON-RPC frame (one line) accepted from a stdio server.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Wraps a child's stdout and fails the stream once a single line grows past `max` bytes.
///
/// rmcp's line reader would discard such a line and keep reading forever, leaving the session
/// silently useless; failing the stream instead makes the supervisor restart the server with a
/// reason the status API can show.
pub struct FrameCappedReader<R> {
    inner: R,
    since_newline: usize,
    max: usize,
    overflow: FrameOverflow,
}

/// Whether a [`FrameCappedReader`] failed its stream, and why. rmcp's transport only logs read
/// errors and reports a closed connection, so the session keeps this to say what happened.
#[derive(Debug, Clone, Default)]
pub struct FrameOverflow(Arc<OnceLock<String>>);

impl FrameOverflow {
    /// The error the reader failed with, once it has.
    pub fn message(&self) -> Option<String> {
        self.0.get().cloned()
    }
}

impl<R> FrameCappedReader<R> {
    /// Guard `inner`, allowing lines of at most `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            since_newline: 0,
            max,
            overflow: FrameOverflow::default(),
        }
    }

    /// A handle that tells, later, whether this reader tripped its cap.
    pub fn overflow(&self) -> FrameOverflow {
        self.overflow.clone()
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for FrameCappedReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                match fresh.iter().rposition(|b| *b == b'\n') {
                    Some(last) => this.since_newline = fresh.len() - last - 1,
                    None => this.since_newline += fresh.len(),
                }
                if this.since_newline > this.max {
                    // A reader must not report bytes alongside an error.
                    buf.set_filled(before);
                    let message =
                        format!("stdout frame exceeded {} bytes without a newline", this.max);
                    let _ = this.overflow.0.set(message.clone());
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, message)));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn lines_within_cap_pass_through() {
        let data: &[u8] = b"0123456789\n0123456789\n";
        let mut reader = FrameCappedReader::new(data, 11);
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .await
            .expect("short lines are fine");
        assert_eq!(out, data);
    }

    #[tokio::test]
    async fn an_endless_line_fails_the_stream() {
        let data = vec![b'x'; 4096];
        let mut reader = FrameCappedReader::new(&data[..], 1000);
        let overflow = reader.overflow();
        assert_eq!(overflow.message(), None);
        let mut out = Vec::new();
        let err = reader
            .read_to_end(&mut out)
            .await
            .expect_err("cap must trip");
        assert!(err.to_string().contains("1000 bytes"), "{err}");
        assert_eq!(overflow.message(), Some(err.to_string()));
    }
}
