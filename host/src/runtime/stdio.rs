//! A connector's stdout and stderr: split into lines and appended to the run log, never to the
//! host's own streams. Writes always succeed, so a chatty connector is not killed for printing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::log::RunLog;
use crate::protocol::LogLevel;

/// Bytes a line is buffered beyond [`RunLog::MAX_LINE_BYTES`]: a secret (in any encoded form)
/// up to this long that starts inside the kept part of a line is scrubbed whole, never cut.
pub const SCRUB_MARGIN: usize = 64 << 10;

/// One of a connector's output streams, feeding the run log.
#[derive(Clone)]
pub struct LogStream {
    connector: String,
    level: LogLevel,
    log: RunLog,
}

impl LogStream {
    /// A stream whose lines go to `log` at `level`.
    pub fn new(connector: &str, level: LogLevel, log: RunLog) -> Self {
        LogStream {
            connector: connector.to_string(),
            level,
            log,
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            stream: self.clone(),
            partial: Vec::new(),
        })
    }
}

struct LineWriter {
    stream: LogStream,
    partial: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        let text = String::from_utf8_lossy(&self.partial);
        let text = text.trim_end_matches(['\r', '\n']);
        self.stream
            .log
            .push(&self.stream.connector, self.stream.level, text);
        self.partial.clear();
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        for &b in buf {
            if b == b'\n' {
                self.emit();
            } else if self.partial.len() < RunLog::MAX_LINE_BYTES + SCRUB_MARGIN {
                // Kept past the line's length so the run log's filter sees a secret that starts
                // inside the kept part whole; the log cuts the line after filtering it.
                self.partial.push(b);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.partial.is_empty() {
            self.emit();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_secret_at_the_cut_of_a_long_line_is_scrubbed_whole() {
        let log = RunLog::new();
        let secret = "sk_live_0123456789abcdef0123456789abcdef";
        log.set_filter(Arc::new(move |m: &str| m.replace(secret, "[secret:api]")));
        let stream = LogStream::new("c", LogLevel::Info, log.clone());
        let mut w = Box::into_pin(stream.async_stream());
        // The secret starts a few bytes before the line's cut.
        let line = format!(
            "{}{secret}{}\n",
            "x".repeat(RunLog::MAX_LINE_BYTES - 6),
            "y".repeat(100)
        );
        w.write_all(line.as_bytes()).await.unwrap();
        w.shutdown().await.unwrap();
        let kept = &log.lines()[0].message;
        assert!(kept.len() <= RunLog::MAX_LINE_BYTES);
        assert!(
            !kept.contains("sk_liv") && !kept.ends_with("sk_"),
            "{}",
            &kept[kept.len() - 20..]
        );
    }
}
