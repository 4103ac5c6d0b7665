//! `source-http`: records from REST APIs, declared in config.
//!
//! Each stream is an endpoint: a path under `base_url`, where its records are in the response
//! (a JSONPath), how it pages (page number, offset, a cursor from the body, or the `Link`
//! header), and optionally an incremental cursor field. Auth is bearer, an API key (header or
//! query) or basic; secret values should be `{{secret:NAME}}` placeholders, which the host fills
//! in on the way out so that this connector never holds them.
//!
//! State per stream: `{"cursor": <largest cursor value read>}` for incremental streams, committed
//! when the stream has been read to its end (pages need not be sorted by the cursor); for
//! full-refresh streams `{"done": true}`, so a resumed run skips streams it already finished.

pub mod config;
pub mod page;

use serde::{Deserialize, Serialize};
use sluice_sdk::{
    Catalog, ConfiguredCatalog, Emitter, Error, Reader, Result, Source, Spec, State, Stream,
    SyncMode, Value, json,
};

pub use config::Config;
use config::StreamConfig;
use page::Next;

/// The connector.
pub struct HttpSource;

/// A stream's checkpoint.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StreamState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    done: bool,
}

impl Source for HttpSource {
    type Config = Config;
    type Reader = HttpReader;

    fn spec() -> Spec {
        Spec::new(config::schema())
    }

    fn check(config: &Config) -> Result<()> {
        config.validate()?;
        let stream = &config.streams[0];
        let url = page::url(config, stream, &page::first(stream), None);
        let resp = page::request(config, &url).send()?.error_for_status()?;
        let body: Value = resp.json()?;
        page::records(stream, &body)?;
        Ok(())
    }

    fn discover(config: &Config) -> Result<Catalog> {
        config.validate()?;
        let streams = config
            .streams
            .iter()
            .map(|s| {
                let schema = s
                    .schema
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object"}));
                let mut d = Stream::new(&s.name, schema);
                if let Some(inc) = &s.incremental {
                    d = d.incremental_on(&inc.cursor_field);
                }
                d.primary_key = s.primary_key.iter().map(|k| vec![k.clone()]).collect();
                d
            })
            .collect();
        Ok(Catalog { streams })
    }

    fn read(config: Config, catalog: ConfiguredCatalog, state: State) -> Result<HttpReader> {
        config.validate()?;
        let mut pending = Vec::new();
        for configured in &catalog.streams {
            let name = &configured.stream.name;
            let cfg = config
                .streams
                .iter()
                .find(|s| &s.name == name)
                .ok_or_else(|| Error::config(format!("stream `{name}` is not in the config")))?
                .clone();
            let saved: StreamState = state.decode(name)?.unwrap_or_default();
            if saved.done && configured.sync_mode == SyncMode::FullRefresh {
                continue;
            }
            let incremental = configured.sync_mode == SyncMode::Incremental;
            if incremental && cfg.incremental.is_none() {
                return Err(Error::config(format!(
                    "stream `{name}` is read incrementally but has no `incremental` in the config"
                )));
            }
            let since = if incremental {
                saved
                    .cursor
                    .or_else(|| cfg.incremental.as_ref().and_then(|i| i.start.clone()))
            } else {
                None
            };
            pending.push(StreamRead {
                next: Some(page::first(&cfg)),
                cfg,
                incremental,
                since: since.clone(),
                max: since,
                pages: 0,
            });
        }
        pending.reverse();
        Ok(HttpReader { config, pending })
    }
}

/// One stream being read.
struct StreamRead {
    cfg: StreamConfig,
    incremental: bool,
    /// Records at or before this cursor value were read before.
    since: Option<Value>,
    /// The largest cursor value seen.
    max: Option<Value>,
    /// The next page; `None` when the stream is done.
    next: Option<Next>,
    pages: u64,
}

/// The read in progress.
pub struct HttpReader {
    config: Config,
    /// Streams left, the current one last.
    pending: Vec<StreamRead>,
}

impl Reader for HttpReader {
    fn read(&mut self, out: &mut Emitter) -> Result<bool> {
        while out.wants_more() {
            let Some(s) = self.pending.last_mut() else {
                return Ok(false);
            };
            match s.next.take() {
                Some(next) => read_page(&self.config, s, next, out)?,
                None => {
                    let state = if s.incremental {
                        StreamState {
                            cursor: s.max.clone(),
                            done: false,
                        }
                    } else {
                        StreamState {
                            cursor: None,
                            done: true,
                        }
                    };
                    out.checkpoint(&s.cfg.name, &state)?;
                    self.pending.pop();
                }
            }
        }
        Ok(!self.pending.is_empty())
    }
}

/// Fetch one page, emit its new records, and work out the next page.
fn read_page(config: &Config, s: &mut StreamRead, next: Next, out: &mut Emitter) -> Result<()> {
    s.pages += 1;
    if s.pages > config.max_pages {
        return Err(Error::fatal(format!(
            "stream `{}` has more than {} pages (raise `max_pages` if that is right)",
            s.cfg.name, config.max_pages
        )));
    }
    let since = if s.incremental {
        s.since.as_ref()
    } else {
        None
    };
    let url = page::url(config, &s.cfg, &next, since);
    let resp = page::request(config, &url).send()?.error_for_status()?;
    let body: Value = resp.json()?;
    let records = page::records(&s.cfg, &body)?;
    let field = s.cfg.incremental.as_ref().map(|i| i.cursor_field.clone());
    for record in &records {
        if s.incremental
            && let Some(field) = &field
        {
            let Some(value) = record.get(field).filter(|v| !v.is_null()) else {
                return Err(Error::fatal(format!(
                    "stream `{}`: a record has no cursor field `{field}`",
                    s.cfg.name
                )));
            };
            if let Some(since) = &s.since
                && page::compare(value, since).is_le()
            {
                continue;
            }
            if s.max
                .as_ref()
                .is_none_or(|m| page::compare(value, m).is_gt())
            {
                s.max = Some(value.clone());
            }
        }
        out.record(&s.cfg.name, record)?;
    }
    s.next = page::next(&s.cfg, &next, &url, &resp, &body, records.len())?;
    Ok(())
}

sluice_sdk::export_source!(HttpSource);
