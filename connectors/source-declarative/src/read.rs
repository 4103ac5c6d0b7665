//! Reading one stream: its slices, each slice's pages, each page's records, with the error
//! handler's verdict on every response, and the cursor's state after each window.

use std::collections::VecDeque;

use serde_json::{Map, Value};
use sluice_sdk::{Error, Result};

use crate::interp::{self, Context};
use crate::model::{
    Backoff, DeclarativeStream, ErrorHandler, HttpRequester, HttpResponseFilter, PartitionRouter,
};
use crate::pages::Pages;
use crate::records;
use crate::request::{self, HttpResponse, Options, Transport};
use crate::slices::{self, Slice, Windows};

/// Most pages one slice may have before the read stops with an error.
pub const MAX_PAGES_PER_SLICE: u64 = 100_000;
/// Most parent records read to partition a substream.
pub const MAX_PARENT_RECORDS: usize = 1_000_000;
/// Longest single wait a backoff strategy may ask for.
pub const MAX_BACKOFF_SECS: f64 = 600.0;

/// One page read: its records, and whether the slice has more.
pub struct Page {
    /// Records after the filter and transformations.
    pub records: Vec<Value>,
}

/// A stream being read.
pub struct StreamRead {
    /// The stream.
    pub stream: DeclarativeStream,
    config: Value,
    slices: VecDeque<Slice>,
    current: Option<(Slice, Pages, u64)>,
    /// The datetime cursor, when the stream is read incrementally.
    pub windows: Option<Windows>,
    /// The state the read started from.
    pub state: Value,
    /// The largest cursor value seen in the current window (raw, and as a time).
    pub max_seen: Option<(Value, crate::time::Time)>,
}

impl StreamRead {
    /// Prepare reading `stream` from `state` (incrementally when `incremental`).
    pub fn new(
        stream: &DeclarativeStream,
        config: &Value,
        state: Value,
        incremental: bool,
        transport: &mut dyn Transport,
    ) -> Result<StreamRead> {
        let ctx = Context::new(config, &stream.parameters);
        let mut groups = Vec::new();
        if let Some(routers) = &stream.retriever.partition_router {
            let list: Vec<Value> = match routers {
                Value::Array(a) => a.clone(),
                Value::Null => vec![],
                one => vec![one.clone()],
            };
            for r in list {
                let r: PartitionRouter = serde_json::from_value(r).map_err(|e| {
                    Error::config(format!("stream `{}`: partition_router: {e}", stream.name))
                })?;
                groups.push(router_slices(&r, config, &ctx, transport)?);
            }
        }
        let mut windows = None;
        if let Some(c) = &stream.incremental_sync {
            let w = Windows::new(c, &ctx)?;
            let saved = if incremental { Some(&state) } else { None };
            groups.push(w.slices(c, saved.filter(|s| !s.is_null()), &ctx)?);
            windows = Some(w);
        }
        let slices = slices::product(groups)?;
        Ok(StreamRead {
            stream: stream.clone(),
            config: config.clone(),
            slices: slices.into(),
            current: None,
            windows,
            state,
            max_seen: None,
        })
    }

    /// The next page's records, or `None` when the stream is read. `window_done` is set when
    /// the page ended a slice (the moment to checkpoint).
    pub fn next_page(
        &mut self,
        transport: &mut dyn Transport,
        window_done: &mut bool,
    ) -> Result<Option<Page>> {
        *window_done = false;
        let ctx = Context::new(&self.config, &self.stream.parameters);
        if self.current.is_none() {
            let Some(slice) = self.slices.pop_front() else {
                return Ok(None);
            };
            let pages = Pages::new(&self.stream.retriever.paginator, &ctx)?;
            self.current = Some((slice, pages, 0));
        }
        let Some((slice, pages, count)) = self.current.as_mut() else {
            return Ok(None);
        };
        *count += 1;
        if *count > MAX_PAGES_PER_SLICE {
            return Err(Error::fatal(format!(
                "stream `{}`: more than {MAX_PAGES_PER_SLICE} pages in one partition",
                self.stream.name
            )));
        }
        let retriever = &self.stream.retriever;
        let mut ctx = ctx.with("stream_slice", &Value::Object(slice.value.clone()));
        ctx.set("stream_state", &self.state)
            .set("next_page_token", &pages.token_value());
        let mut opts = Options::default();
        let skip_slice_options =
            retriever.ignore_stream_slicer_parameters_on_paginated_requests && pages.has_token();
        if !skip_slice_options {
            for (o, v) in &slice.options {
                opts.inject(o, v, &ctx)?;
            }
        }
        pages.options(&mut opts, &ctx)?;
        let req = request::build(&retriever.requester, &opts, &ctx)?;
        let (resp, ignored) = send(
            &retriever.requester,
            &req,
            transport,
            &ctx,
            &self.stream.name,
        )?;
        let body = if ignored {
            Value::Object(Map::new())
        } else {
            resp.json()
        };
        let found = if ignored {
            vec![]
        } else {
            records::extract(&retriever.record_selector, &body, &ctx)?
        };
        let page_size = found.len();
        let last = found.last().cloned();
        let mut out = Vec::with_capacity(found.len());
        for mut r in found {
            if !records::keep(&retriever.record_selector, &r, &ctx)? {
                continue;
            }
            records::transform(&self.stream.transformations, &mut r, &ctx)?;
            observe(self.windows.as_ref(), &mut self.max_seen, &r, slice);
            out.push(r);
        }
        let more = !ignored && pages.advance(&resp, &body, page_size, last.as_ref(), &ctx)?;
        if !more {
            self.current = None;
            *window_done = true;
        }
        Ok(Some(Page { records: out }))
    }

    /// The stream's state after what was read so far (the largest cursor value seen, or the
    /// state it started from).
    pub fn checkpoint(&self) -> Option<Value> {
        let w = self.windows.as_ref()?;
        let before = self.state.get(&w.field).cloned();
        let value = match (&self.max_seen, before) {
            (Some((v, t)), Some(b)) => match w.parse(&b) {
                Some(bt) if bt >= *t => b,
                _ => v.clone(),
            },
            (Some((v, _)), None) => v.clone(),
            (None, Some(b)) => b,
            (None, None) => return None,
        };
        let mut m = Map::new();
        m.insert(w.field.clone(), value);
        Some(Value::Object(m))
    }
}

/// Note `record`'s cursor value when it falls in its window and beats the largest so far.
fn observe(
    windows: Option<&Windows>,
    max_seen: &mut Option<(Value, crate::time::Time)>,
    record: &Value,
    slice: &Slice,
) {
    let Some(w) = windows else { return };
    let Some(v) = record.get(&w.field).filter(|v| !v.is_null()) else {
        return;
    };
    let Some(t) = w.parse(v) else { return };
    let (start, end) = w.bounds(slice);
    if start.is_some_and(|s| t < s) || end.is_some_and(|e| t > e) {
        return;
    }
    if max_seen.as_ref().is_none_or(|(_, m)| t > *m) {
        *max_seen = Some((v.clone(), t));
    }
}

/// Every record of `stream` (a parent), with the slice it came from.
fn read_all(
    stream: &DeclarativeStream,
    config: &Value,
    transport: &mut dyn Transport,
) -> Result<Vec<(Value, Slice)>> {
    let mut read = StreamRead::new(stream, config, Value::Null, false, transport)?;
    let mut out = Vec::new();
    let mut done = false;
    loop {
        let slice = read.current.as_ref().map(|c| c.0.clone());
        let Some(page) = read.next_page(transport, &mut done)? else {
            break;
        };
        let slice = slice
            .or_else(|| read.current.as_ref().map(|c| c.0.clone()))
            .unwrap_or_default();
        for r in page.records {
            out.push((r, slice.clone()));
            if out.len() > MAX_PARENT_RECORDS {
                return Err(Error::fatal(format!(
                    "parent stream `{}` has more than {MAX_PARENT_RECORDS} records",
                    stream.name
                )));
            }
        }
    }
    Ok(out)
}

fn router_slices(
    r: &PartitionRouter,
    config: &Value,
    ctx: &Context,
    transport: &mut dyn Transport,
) -> Result<Vec<Slice>> {
    match r {
        PartitionRouter::ListPartitionRouter {
            values,
            cursor_field,
            request_option,
            parameters,
        } => {
            let ctx = ctx.with("parameters", &Value::Object(parameters.clone()));
            slices::list(values, cursor_field, request_option.as_deref(), &ctx)
        }
        PartitionRouter::SubstreamPartitionRouter {
            parent_stream_configs,
        } => {
            let mut out = Vec::new();
            for p in parent_stream_configs {
                let pctx = ctx.with("parameters", &Value::Object(p.parameters.clone()));
                let key = interp::text(&p.parent_key, &pctx)?.unwrap_or_default();
                let field = interp::text(&p.partition_field, &pctx)?.unwrap_or_default();
                for (record, parent_slice) in read_all(&p.stream, config, transport)? {
                    let Some(v) = lookup(&record, &key) else {
                        continue;
                    };
                    let mut value = Map::new();
                    value.insert(field.clone(), v.clone());
                    value.insert("parent_slice".into(), Value::Object(parent_slice.value));
                    out.push(Slice {
                        value,
                        options: p
                            .request_option
                            .iter()
                            .map(|o| (o.clone(), v.clone()))
                            .collect(),
                    });
                }
            }
            Ok(out)
        }
    }
}

/// A parent record's key: the field itself, or a path through `/` or `.`.
fn lookup<'a>(record: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(v) = record.get(key) {
        return Some(v);
    }
    for sep in ['/', '.'] {
        if key.contains(sep) {
            let mut node = record;
            let mut ok = true;
            for part in key.split(sep) {
                match node.get(part) {
                    Some(n) => node = n,
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                return Some(node);
            }
        }
    }
    None
}

/// What the error handler makes of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Success,
    Ignore,
    Retry,
    Fail,
}

/// Send `req`, retrying as the error handler says; `(response, ignored)`.
fn send(
    requester: &HttpRequester,
    req: &request::HttpRequest,
    transport: &mut dyn Transport,
    ctx: &Context,
    stream: &str,
) -> Result<(HttpResponse, bool)> {
    let handler = requester.error_handler.as_ref();
    let mut attempt = 0u32;
    loop {
        let resp = transport.send(req)?;
        let (action, filter, backoffs, max_retries) = judge(handler, &resp, ctx)?;
        match action {
            Action::Success => return Ok((resp, false)),
            Action::Ignore => {
                sluice_sdk::log::log(
                    sluice_sdk::log::Level::Warn,
                    &format!(
                        "stream `{stream}`: a {} response is ignored, as the manifest says",
                        resp.status
                    ),
                );
                return Ok((resp, true));
            }
            Action::Retry if attempt < max_retries => {
                let wait = backoff_secs(&backoffs, &resp, attempt, ctx)?;
                attempt += 1;
                sluice_sdk::log::log(
                    sluice_sdk::log::Level::Info,
                    &format!(
                        "stream `{stream}`: status {}, retry {attempt} of {max_retries} in {wait:.1} s",
                        resp.status
                    ),
                );
                if wait > 0.0 {
                    std::thread::sleep(std::time::Duration::from_secs_f64(wait));
                }
            }
            Action::Retry | Action::Fail => {
                let message = match filter.and_then(|f| f.error_message.clone()) {
                    Some(m) => {
                        let c = ctx.with("response", &resp.json());
                        interp::text(&m, &c)?.unwrap_or(m)
                    }
                    None => String::new(),
                };
                return Err(failure(&resp, &message, action == Action::Retry));
            }
        }
    }
}

fn failure(resp: &HttpResponse, message: &str, gave_up: bool) -> Error {
    let snippet: String = String::from_utf8_lossy(&resp.body)
        .chars()
        .take(200)
        .collect();
    let detail = if message.is_empty() {
        snippet
    } else {
        message.to_string()
    };
    match resp.status {
        401 | 403 => Error::auth(format!(
            "the API refused the credentials ({}): {detail}",
            resp.status
        )),
        429 | 503 => Error::RateLimited {
            retry_after: std::time::Duration::from_secs(60),
            message: format!(
                "the API is still limiting requests ({}) after the host's retries: {detail}",
                resp.status
            ),
        },
        s if gave_up => {
            Error::transient(format!("status {s} after the manifest's retries: {detail}"))
        }
        s => Error::fatal(format!("the API answered {s}: {detail}")),
    }
}

/// The CDK's default verdict on a status when no filter matches. 429 and 503 were already
/// retried by the host (with their `Retry-After`) before the connector sees them.
fn default_action(status: u16) -> Action {
    match status {
        200..=399 => Action::Success,
        429 | 503 => Action::Fail,
        500..=599 => Action::Retry,
        _ => Action::Fail,
    }
}

/// The most retries of one request, whatever `max_retries` says (each waits at most the
/// longest backoff): a manifest cannot make a request loop forever.
pub const MAX_RETRIES: u32 = 50;

type Verdict<'a> = (Action, Option<&'a HttpResponseFilter>, Vec<Backoff>, u32);

fn judge<'a>(
    handler: Option<&'a ErrorHandler>,
    resp: &HttpResponse,
    ctx: &Context,
) -> Result<Verdict<'a>> {
    match handler {
        None => Ok((default_action(resp.status), None, vec![], 5)),
        Some(ErrorHandler::DefaultErrorHandler(h)) => {
            let retries = h.max_retries.unwrap_or(5).min(MAX_RETRIES);
            for f in &h.response_filters {
                if matches(f, resp, ctx)? {
                    let action = match f.action.as_deref().map(str::to_ascii_uppercase).as_deref() {
                        Some("SUCCESS") => Action::Success,
                        Some("IGNORE") => Action::Ignore,
                        Some("RETRY" | "RATE_LIMITED") => Action::Retry,
                        Some("FAIL") => Action::Fail,
                        _ => default_action(resp.status),
                    };
                    return Ok((action, Some(f), h.backoff_strategies.clone(), retries));
                }
            }
            Ok((
                default_action(resp.status),
                None,
                h.backoff_strategies.clone(),
                retries,
            ))
        }
        Some(ErrorHandler::CompositeErrorHandler { error_handlers }) => {
            let mut last = (default_action(resp.status), None, vec![], 5);
            for h in error_handlers {
                let v = judge(Some(h), resp, ctx)?;
                if v.1.is_some() || v.0 != Action::Success && v.0 != default_action(resp.status) {
                    return Ok(v);
                }
                last = v;
            }
            Ok(last)
        }
    }
}

fn matches(f: &HttpResponseFilter, resp: &HttpResponse, ctx: &Context) -> Result<bool> {
    if f.http_codes.contains(&resp.status) {
        return Ok(true);
    }
    if let Some(s) = &f.error_message_contains
        && String::from_utf8_lossy(&resp.body).contains(s.as_str())
    {
        return Ok(true);
    }
    if let Some(p) = &f.predicate {
        let mut c = ctx.with("parameters", &Value::Object(f.parameters.clone()));
        c.set("response", &resp.json())
            .set("headers", &resp.headers_value());
        return Ok(interp::boolean(p, &c)?);
    }
    Ok(false)
}

fn number(v: &Value, ctx: &Context) -> Result<Option<f64>> {
    Ok(match v {
        Value::Number(n) => n.as_f64(),
        Value::String(t) => interp::eval(t, ctx)?.and_then(|v| v.as_f64()),
        _ => None,
    })
}

/// Seconds to wait before retry `attempt` (from 0).
fn backoff_secs(bs: &[Backoff], resp: &HttpResponse, attempt: u32, ctx: &Context) -> Result<f64> {
    let header_number = |h: &str, regex: &Option<String>| -> Option<f64> {
        let v = resp.header(h)?;
        match regex {
            Some(r) => {
                let re = regex::Regex::new(r).ok()?;
                re.find(v).and_then(|m| m.as_str().parse().ok())
            }
            None => v.trim().parse().ok(),
        }
    };
    for b in bs {
        let secs = match b {
            Backoff::ConstantBackoffStrategy {
                backoff_time_in_seconds,
            } => number(backoff_time_in_seconds, ctx)?,
            Backoff::ExponentialBackoffStrategy { factor } => {
                let f = match factor {
                    Some(f) => number(f, ctx)?.unwrap_or(5.0),
                    None => 5.0,
                };
                Some(f * 2f64.powi(attempt as i32))
            }
            Backoff::WaitTimeFromHeader {
                header,
                regex,
                max_waiting_time_in_seconds,
            } => header_number(header, regex).map(|s| match max_waiting_time_in_seconds {
                Some(m) => s.min(*m),
                None => s,
            }),
            Backoff::WaitUntilTimeFromHeader {
                header,
                min_wait,
                regex,
            } => header_number(header, regex).map(|until| {
                let now = crate::time::now().timestamp_micros() as f64 / 1e6;
                let min = min_wait
                    .as_ref()
                    .and_then(|m| number(m, ctx).ok().flatten())
                    .unwrap_or(0.0);
                (until - now).max(min)
            }),
        };
        if let Some(s) = secs {
            return Ok(s.clamp(0.0, MAX_BACKOFF_SECS));
        }
    }
    // The CDK's default: exponential with factor 5.
    Ok((5.0 * 2f64.powi(attempt as i32)).min(MAX_BACKOFF_SECS))
}
