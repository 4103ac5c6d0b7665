//! The response body a connector reads: bounded in size, bounded in idle time, counted, and
//! recorded when it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use wasmtime_wasi_http::Error;

use super::NetPolicy;
use crate::boundary::audit::{Capability, Outcome};

/// What to record when the body ends.
pub(super) struct Report {
    pub policy: Arc<NetPolicy>,
    pub action: String,
    pub status: u16,
    pub sent: u64,
    pub retries: usize,
    pub started: Instant,
}

/// A response body passed through to the connector.
pub(super) struct Metered {
    inner: Incoming,
    limit: u64,
    seen: u64,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    report: Option<Report>,
}

impl Metered {
    pub fn new(inner: Incoming, limit: u64, idle: Duration, report: Report) -> Self {
        Metered {
            inner,
            limit,
            seen: 0,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            report: Some(report),
        }
    }

    /// Record the request once, however the body ends.
    fn finish(&mut self, problem: Option<&str>) {
        let Some(r) = self.report.take() else { return };
        let mut detail = format!(
            "{} · {} B sent · {} B received · {} ms",
            r.status,
            r.sent,
            self.seen,
            r.started.elapsed().as_millis()
        );
        if r.retries > 0 {
            detail.push_str(&format!(" · {} retries after 429/503", r.retries));
        }
        let outcome = match problem {
            Some(p) => {
                detail.push_str(&format!(" · {p}"));
                Outcome::Failed
            }
            None => Outcome::Allowed,
        };
        r.policy.events.record(
            &r.policy.connector,
            Capability::Network,
            outcome,
            &r.action,
            &detail,
        );
    }
}

impl Body for Metered {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if this.seen > this.limit {
                        let limit = this.limit;
                        this.finish(Some(&format!(
                            "response body over {limit} bytes (raise `network.max_response_mib`)"
                        )));
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(limit)))));
                    }
                }
                let deadline = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(Some(&format!("response body failed: {e}")));
                Poll::Ready(Some(Err(Error::Hyper(e))))
            }
            Poll::Ready(None) => {
                this.finish(None);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.finish(Some("the response stalled past the timeout"));
                    return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        // The connector dropped the body before its end (a HEAD, or it read only what it needed).
        self.finish(None);
    }
}
