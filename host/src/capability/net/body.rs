//! The response body a connector reads: bounded in size, bounded in idle time, counted, and
//! recorded when it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use wasmtime_wasi_http::Error;

use super::NetPolicy;
use crate::boundary::events::{Capability, Outcome};
use crate::boundary::scrub::Scrubber;

/// What to record when the body ends.
pub(super) struct Report {
    pub _permit: tokio::sync::OwnedSemaphorePermit,
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
    /// Bound secrets looked for in the body.
    reflected: Arc<Scrubber>,
    /// The tail not yet handed on: it could be the start of a secret the next frame completes.
    held: BytesMut,
    /// A trailers frame waiting behind the held bytes.
    trailers: Option<Frame<Bytes>>,
    ended: bool,
}

impl Metered {
    pub fn new(
        inner: Incoming,
        limit: u64,
        idle: Duration,
        reflected: Arc<Scrubber>,
        report: Report,
    ) -> Self {
        Metered {
            inner,
            limit,
            seen: 0,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            report: Some(report),
            reflected,
            held: BytesMut::new(),
            trailers: None,
            ended: false,
        }
    }

    /// Record the refusal of a response that carried a secret; what the connector is told.
    fn refuse_reflected(&mut self, reason: &str) -> Error {
        if let Some(r) = &self.report {
            r.policy
                .events
                .refused(&r.policy.connector, Capability::Secret, &r.action, reason);
        }
        self.finish(Some("refused: the response carried a bound secret"));
        self.held.clear();
        super::send::reflected_error()
    }

    /// Scan `data` after what is held; hand on all but the bytes that could begin a secret.
    fn screen(&mut self, data: &Bytes) -> Result<Bytes, Error> {
        self.held.extend_from_slice(data);
        if let Some(secret) = self.reflected.find(&self.held) {
            let reason = format!(
                "the response body carries the value of secret `{secret}`; the connector never \
                 sees a bound secret, so the rest of the body is refused"
            );
            return Err(self.refuse_reflected(&reason));
        }
        let keep = self
            .reflected
            .longest()
            .saturating_sub(1)
            .min(self.held.len());
        let release = self.held.len() - keep;
        Ok(self.held.split_to(release).freeze())
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
        if this.ended {
            // The held tail went out; then the trailers, if any; then the end.
            return Poll::Ready(this.trailers.take().map(Ok));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(deadline);
                let Some(data) = frame.data_ref() else {
                    // Trailers reach the connector too (`TE: trailers`): checked like headers.
                    if let Some(trailers) = frame.trailers_ref()
                        && let Some((name, secret)) = trailers.iter().find_map(|(n, v)| {
                            this.reflected
                                .find(v.as_bytes())
                                .map(|s| (n.clone(), s.to_string()))
                        })
                    {
                        return Poll::Ready(Some(Err(this.refuse_reflected(&format!(
                            "the response's `{name}` trailer carries the value of secret \
                             `{secret}`; the connector never sees a bound secret, so the \
                             response is refused"
                        )))));
                    }
                    if this.held.is_empty() {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    this.trailers = Some(frame);
                    this.ended = true;
                    let tail = this.held.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(tail))));
                };
                this.seen += data.len() as u64;
                if this.seen > this.limit {
                    let limit = this.limit;
                    this.finish(Some(&format!(
                        "response body over {limit} bytes (raise `network.max_response_mib`)"
                    )));
                    return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(limit)))));
                }
                if this.reflected.is_empty() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                let data = data.clone();
                match this.screen(&data) {
                    Ok(clean) => Poll::Ready(Some(Ok(Frame::data(clean)))),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(Some(&format!("response body failed: {e}")));
                Poll::Ready(Some(Err(Error::Hyper(e))))
            }
            Poll::Ready(None) => {
                this.finish(None);
                if this.held.is_empty() {
                    return Poll::Ready(None);
                }
                this.ended = true;
                Poll::Ready(Some(Ok(Frame::data(this.held.split().freeze()))))
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
        self.held.is_empty() && self.trailers.is_none() && self.inner.is_end_stream()
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
