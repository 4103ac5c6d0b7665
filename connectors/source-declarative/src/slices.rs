//! The partitions of a stream a read walks: list values, parent records, date windows, and the
//! cartesian product of several routers. Each slice carries what templates see as
//! `stream_slice` and the request options it adds.

use chrono::Duration;
use serde_json::{Map, Value};
use sluice_sdk::{Error, Result};

use crate::interp::{self, Context};
use crate::model::{DatetimeBasedCursor, MinMax, RequestOption};
use crate::time::{self, Time};

/// Most slices one stream read makes (windows × partitions).
pub const MAX_SLICES: usize = 100_000;

/// One partition of a read.
#[derive(Debug, Clone, Default)]
pub struct Slice {
    /// `stream_slice` as templates see it.
    pub value: Map<String, Value>,
    /// Request options the slice adds, with their values.
    pub options: Vec<(RequestOption, Value)>,
}

impl Slice {
    /// Both slices in one (a cartesian product's element).
    pub fn merge(&self, other: &Slice) -> Slice {
        let mut s = self.clone();
        for (k, v) in &other.value {
            s.value.insert(k.clone(), v.clone());
        }
        s.options.extend(other.options.iter().cloned());
        s
    }
}

/// The cartesian product of each router's slices (one empty slice when there are none).
pub fn product(groups: Vec<Vec<Slice>>) -> Result<Vec<Slice>> {
    let mut out = vec![Slice::default()];
    for g in groups {
        if out.len().saturating_mul(g.len()) > MAX_SLICES {
            return Err(Error::fatal(format!(
                "the stream has more than {MAX_SLICES} partitions ({} × {})",
                out.len(),
                g.len()
            )));
        }
        let mut next = Vec::with_capacity(out.len() * g.len());
        for a in &out {
            for b in &g {
                next.push(a.merge(b));
                if next.len() > MAX_SLICES {
                    return Err(Error::fatal(format!(
                        "the stream has more than {MAX_SLICES} partitions"
                    )));
                }
            }
        }
        out = next;
    }
    Ok(out)
}

/// `ListPartitionRouter`'s slices.
pub fn list(
    values: &Value,
    cursor_field: &str,
    option: Option<&RequestOption>,
    ctx: &Context,
) -> Result<Vec<Slice>> {
    let values = match values {
        Value::Array(a) => a.clone(),
        Value::String(t) => match interp::eval(t, ctx)? {
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(Error::config(format!(
                    "ListPartitionRouter `values` must be a list; `{t}` renders `{other}`"
                )));
            }
            None => vec![],
        },
        other => {
            return Err(Error::config(format!(
                "ListPartitionRouter `values` must be a list, not `{other}`"
            )));
        }
    };
    let key = interp::text(cursor_field, ctx)?.unwrap_or_default();
    Ok(values
        .into_iter()
        .map(|v| {
            let mut value = Map::new();
            value.insert(key.clone(), v.clone());
            Slice {
                value,
                options: option.iter().map(|o| ((*o).clone(), v.clone())).collect(),
            }
        })
        .collect())
}

/// A datetime cursor made ready for one read: its window bounds and formats.
#[derive(Debug, Clone)]
pub struct Windows {
    /// The record field holding the cursor.
    pub field: String,
    format: String,
    cursor_formats: Vec<String>,
    start_key: String,
    end_key: String,
}

impl Windows {
    /// Prepare `c`.
    pub fn new(c: &DatetimeBasedCursor, ctx: &Context) -> Result<Windows> {
        let ctx = ctx.with("parameters", &Value::Object(c.parameters.clone()));
        let mut cursor_formats = c.cursor_datetime_formats.clone();
        cursor_formats.push(c.datetime_format.clone());
        Ok(Windows {
            field: interp::text(&c.cursor_field, &ctx)?.unwrap_or_default(),
            format: c.datetime_format.clone(),
            cursor_formats,
            start_key: c
                .partition_field_start
                .clone()
                .unwrap_or_else(|| "start_time".into()),
            end_key: c
                .partition_field_end
                .clone()
                .unwrap_or_else(|| "end_time".into()),
        })
    }

    /// A record's cursor value as a time.
    pub fn parse(&self, v: &Value) -> Option<Time> {
        let text = interp::json_str(v);
        self.cursor_formats
            .iter()
            .find_map(|f| time::parse(&text, f))
            .or_else(|| time::parse_iso(&text))
    }

    /// The windows from the start (or the state, less the lookback) to the end.
    pub fn slices(
        &self,
        c: &DatetimeBasedCursor,
        state: Option<&Value>,
        ctx: &Context,
    ) -> Result<Vec<Slice>> {
        let ctx = ctx.with("parameters", &Value::Object(c.parameters.clone()));
        let start = min_max(&c.start_datetime, &self.format, &ctx)?;
        let end = match &c.end_datetime {
            Some(e) => min_max(e, &self.format, &ctx)?,
            None => time::now(),
        };
        let dur = |s: &Option<String>, what: &str| -> Result<Option<Duration>> {
            match s {
                None => Ok(None),
                Some(text) => {
                    let t = interp::text(text, &ctx)?.unwrap_or_default();
                    if t.is_empty() {
                        return Ok(None);
                    }
                    time::duration(&t).map(Some).ok_or_else(|| {
                        Error::config(format!("`{what}` `{t}` is not an ISO 8601 duration"))
                    })
                }
            }
        };
        let step = dur(&c.step, "step")?;
        let granularity = dur(&c.cursor_granularity, "cursor_granularity")?;
        let lookback = dur(&c.lookback_window, "lookback_window")?.unwrap_or_else(Duration::zero);
        let mut from = start;
        if let Some(saved) = state
            .and_then(|s| s.get(&self.field))
            .and_then(|v| self.parse(v))
        {
            from = from.max(saved.checked_sub_signed(lookback).unwrap_or(from));
        }
        let mut out = Vec::new();
        let within = |a: Time, b: Time| if granularity.is_some() { a < b } else { a <= b };
        match step {
            None => {
                if from <= end {
                    out.push(self.window(c, from, end));
                }
            }
            Some(step) if step <= Duration::zero() => {
                return Err(Error::config("`step` must be longer than zero"));
            }
            Some(step) => {
                while within(from, end) {
                    // A step past the calendar's end makes the last window.
                    let (next, last) = match from.checked_add_signed(step) {
                        Some(next) => (next, false),
                        None => (end, true),
                    };
                    let window_end = next
                        .checked_sub_signed(granularity.unwrap_or_else(Duration::zero))
                        .unwrap_or(next)
                        .min(end);
                    out.push(self.window(c, from, window_end));
                    if out.len() > MAX_SLICES {
                        return Err(Error::config(format!(
                            "the date range makes more than {MAX_SLICES} windows; use a longer `step` or a later start"
                        )));
                    }
                    if last {
                        break;
                    }
                    from = next;
                }
            }
        }
        Ok(out)
    }

    fn window(&self, c: &DatetimeBasedCursor, from: Time, to: Time) -> Slice {
        let a = Value::String(time::format(&from, &self.format));
        let b = Value::String(time::format(&to, &self.format));
        let mut value = Map::new();
        value.insert(self.start_key.clone(), a.clone());
        value.insert(self.end_key.clone(), b.clone());
        let mut options = Vec::new();
        if let Some(o) = &c.start_time_option {
            options.push((o.clone(), a));
        }
        if let Some(o) = &c.end_time_option {
            options.push((o.clone(), b));
        }
        Slice { value, options }
    }

    /// The window's bounds of `slice`.
    pub fn bounds(&self, slice: &Slice) -> (Option<Time>, Option<Time>) {
        let get = |k: &str| slice.value.get(k).and_then(|v| self.parse(v));
        (get(&self.start_key), get(&self.end_key))
    }
}

/// A `MinMaxDatetime` (or a plain template of a time), clamped.
fn min_max(m: &MinMax, default_format: &str, ctx: &Context) -> Result<Time> {
    let (text, format, min, max, params) = match m {
        MinMax::Text(t) => (
            t.clone(),
            default_format.to_string(),
            None,
            None,
            Map::new(),
        ),
        MinMax::Bounded(b) => (
            b.datetime.clone(),
            b.datetime_format
                .clone()
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| default_format.to_string()),
            b.min_datetime.clone(),
            b.max_datetime.clone(),
            b.parameters.clone(),
        ),
    };
    let ctx = ctx.with("parameters", &Value::Object(params));
    let read = |t: &str| -> Result<Option<Time>> {
        let Some(s) = interp::text(t, &ctx)? else {
            return Ok(None);
        };
        time::parse(&s, &format)
            .or_else(|| time::parse_iso(&s))
            .map(Some)
            .ok_or_else(|| Error::config(format!("`{s}` is not a time in the format `{format}`")))
    };
    let mut t = read(&text)?.ok_or_else(|| {
        Error::config(format!(
            "the cursor's time `{text}` renders empty: is the config complete?"
        ))
    })?;
    if let Some(min) = min.as_deref().map(read).transpose()?.flatten() {
        t = t.max(min);
    }
    if let Some(max) = max.as_deref().map(read).transpose()?.flatten() {
        t = t.min(max);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cursor(v: Value) -> DatetimeBasedCursor {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn windows_step_through_the_range_and_resume_after_the_state() {
        let ctx = Context::new(&json!({"start": "2024-01-01T00:00:00Z"}), &Map::new());
        let c = cursor(json!({
            "cursor_field": "updated_at", "datetime_format": "%Y-%m-%dT%H:%M:%SZ",
            "start_datetime": "{{ config.start }}", "end_datetime": "2024-01-03T12:00:00Z",
            "step": "P1D", "cursor_granularity": "PT1S",
            "start_time_option": {"inject_into": "request_parameter", "field_name": "since"}
        }));
        let w = Windows::new(&c, &ctx).unwrap();
        let s = w.slices(&c, None, &ctx).unwrap();
        let got: Vec<_> = s.iter().map(|s| Value::Object(s.value.clone())).collect();
        assert_eq!(
            got,
            vec![
                json!({"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-01T23:59:59Z"}),
                json!({"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-02T23:59:59Z"}),
                json!({"start_time": "2024-01-03T00:00:00Z", "end_time": "2024-01-03T12:00:00Z"}),
            ]
        );
        assert_eq!(s[0].options[0].1, json!("2024-01-01T00:00:00Z"));
        let s = w
            .slices(
                &c,
                Some(&json!({"updated_at": "2024-01-02T06:00:00Z"})),
                &ctx,
            )
            .unwrap();
        assert_eq!(s[0].value["start_time"], "2024-01-02T06:00:00Z");
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn partitions_multiply() {
        let ctx = Context::new(&json!({"repos": ["a", "b"]}), &Map::new());
        let a = list(&json!("{{ config.repos }}"), "repo", None, &ctx).unwrap();
        let b = list(&json!([1, 2, 3]), "n", None, &ctx).unwrap();
        let p = product(vec![a, b]).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(
            Value::Object(p[5].value.clone()),
            json!({"repo": "b", "n": 3})
        );
    }
}
