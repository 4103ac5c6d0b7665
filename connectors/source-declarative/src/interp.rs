//! Jinja interpolation as the CDK does it: a sandboxed template engine (minijinja) with
//! Airbyte's context names, macros and filters, values printed the way Python prints them, and
//! every rendered result read back as a Python literal where it is one.
//!
//! The CDK's rules kept here: a template that renders empty, or fails on an undefined value,
//! gives its default; `stream_partition` and `stream_interval` are `stream_slice`; times are
//! Python `datetime`s (`now_utc().strftime('%Y-%m-%d')`, `.isoformat()`, `.timestamp()`).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use minijinja::value::{Kwargs, Object, ObjectRepr, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};
use serde_json::Value as Json;

use crate::time::{self, Time};
use crate::{literal, resolve};

/// What a template may refer to: `config`, `parameters`, `stream_slice`, `response`…
#[derive(Debug, Clone, Default)]
pub struct Context {
    vars: BTreeMap<String, minijinja::Value>,
}

impl Context {
    /// A context with the connector's config and the component's parameters.
    pub fn new(config: &Json, parameters: &serde_json::Map<String, Json>) -> Self {
        let mut c = Context::default();
        c.set("config", config);
        c.set("parameters", &Json::Object(parameters.clone()));
        c
    }

    /// Bind `name` to a JSON value.
    pub fn set(&mut self, name: &str, value: &Json) -> &mut Self {
        let v = minijinja::Value::from_serialize(value);
        if name == "stream_slice" {
            self.vars.insert("stream_partition".into(), v.clone());
            self.vars.insert("stream_interval".into(), v.clone());
        }
        self.vars.insert(name.into(), v);
        self
    }

    /// The same context with `name` bound too.
    pub fn with(&self, name: &str, value: &Json) -> Self {
        let mut c = self.clone();
        c.set(name, value);
        c
    }
}

/// A template that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<TemplateError> for sluice_sdk::Error {
    fn from(e: TemplateError) -> Self {
        sluice_sdk::Error::config(e.0)
    }
}

/// The most instructions one template render may take.
pub const TEMPLATE_FUEL: u64 = 100_000;

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        // A template is a few lookups and filters: a loop that runs away is stopped.
        env.set_fuel(Some(TEMPLATE_FUEL));
        // `debug()` would print the whole context; `indent` and `replace` could build gigabytes
        // from a few bytes in one instruction (`replace('', s)`): a bounded `replace` instead.
        env.remove_global("debug");
        env.remove_filter("indent");
        env.add_filter("replace", bounded_replace);
        // Python's methods on dicts, lists and strings (`config.get('x', [])`, `s.split(',')`),
        // as manifests call them: minijinja-contrib's, with `str.replace` bounded like the filter.
        env.set_unknown_method_callback(python_method);
        env.set_formatter(|out, _state, value| {
            out.write_str(&py_str(value))
                .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write"))
        });
        env.add_function("now_utc", || Dt::value(time::now(), false));
        env.add_function("today_utc", || Dt::value(time::now(), true));
        env.add_function("timestamp", timestamp);
        env.add_function("max", py_max);
        env.add_function("day_delta", day_delta);
        env.add_function("format_datetime", format_datetime);
        env.add_function("str_to_datetime", str_to_datetime);
        env.add_function(
            "duration",
            |_: minijinja::Value| -> Result<minijinja::Value, Error> {
                Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "`duration()` arithmetic on times is not supported by sluice yet; use \
                 `day_delta()` or a `MinMaxDatetime`",
                ))
            },
        );
        env.add_filter("base64encode", |s: String| {
            base64::engine::general_purpose::STANDARD.encode(s)
        });
        env.add_filter("base64decode", |s: String| -> Result<String, Error> {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            String::from_utf8(bytes)
                .map_err(|_| Error::new(ErrorKind::InvalidOperation, "not UTF-8"))
        });
        env.add_filter("string", |v: minijinja::Value| py_str(&v));
        env
    })
}

/// Render `template` and read the result as the CDK does: `None` when it is empty or refers
/// to something undefined (the caller then uses its default).
pub fn eval(template: &str, ctx: &Context) -> Result<Option<Json>, TemplateError> {
    if !template.contains("{{") && !template.contains("{%") {
        return Ok(if template.is_empty() {
            None
        } else {
            Some(literal::eval(template).unwrap_or_else(|| Json::String(template.into())))
        });
    }
    match env().render_str(template, &ctx.vars) {
        Ok(s) if s.is_empty() => Ok(None),
        Ok(s) => Ok(Some(literal::eval(&s).unwrap_or(Json::String(s)))),
        Err(e) if e.kind() == ErrorKind::UndefinedError => Ok(None),
        Err(e) => Err(TemplateError(format!("template `{template}`: {e}"))),
    }
}

/// Render `template` as text (the rendered string before any literal reading), `None` when
/// empty or undefined.
pub fn text(template: &str, ctx: &Context) -> Result<Option<String>, TemplateError> {
    if !template.contains("{{") && !template.contains("{%") {
        return Ok((!template.is_empty()).then(|| template.to_string()));
    }
    match env().render_str(template, &ctx.vars) {
        Ok(s) if s.is_empty() => Ok(None),
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::UndefinedError => Ok(None),
        Err(e) => Err(TemplateError(format!("template `{template}`: {e}"))),
    }
}

/// A template's value as a string the way Python's `str()` would print it.
pub fn string(template: &str, ctx: &Context) -> Result<Option<String>, TemplateError> {
    Ok(eval(template, ctx)?.map(|v| json_str(&v)))
}

/// A template of a boolean (`InterpolatedBoolean`): Python's truthiness, with the texts
/// `False`, `false`, `0`, `[]`, `{}`… false.
pub fn boolean(template: &str, ctx: &Context) -> Result<bool, TemplateError> {
    Ok(match eval(template, ctx)? {
        None => false,
        Some(Json::String(s)) => !matches!(
            s.as_str(),
            "False" | "false" | "{}" | "[]" | "()" | "" | "0" | "0.0" | "None" | "none" | "null"
        ),
        Some(v) => !resolve::is_falsy(&v),
    })
}

/// Python's `str()` of a JSON value: `True`, `None`, `{'a': 1}`, `1.5`.
pub fn json_str(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => py_repr_json(other),
    }
}

fn py_repr_json(v: &Json) -> String {
    match v {
        Json::Null => "None".into(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Number(n) => match n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)) {
            Some(i) if !n.is_f64() => i.to_string(),
            _ => time::python_float(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => py_quote(s),
        Json::Array(a) => format!(
            "[{}]",
            a.iter().map(py_repr_json).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_quote(k), py_repr_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `repr` of a string.
fn py_quote(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Python's `str()` of a template value.
fn py_str(v: &minijinja::Value) -> String {
    match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        _ => py_repr(v),
    }
}

fn py_repr(v: &minijinja::Value) -> String {
    if let Some(dt) = v.downcast_object_ref::<Dt>() {
        return dt.to_string();
    }
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number => {
            if v.is_integer() {
                v.to_string()
            } else {
                f64::try_from(v.clone())
                    .map(time::python_float)
                    .unwrap_or_else(|_| v.to_string())
            }
        }
        ValueKind::String => py_quote(v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => format!(
            "[{}]",
            v.try_iter()
                .map(|it| it.map(|x| py_repr(&x)).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        ),
        ValueKind::Map => {
            let items = v
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        let val = v.get_item(&k).unwrap_or_default();
                        format!("{}: {}", py_repr(&k), py_repr(&val))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
                })
                .unwrap_or_default();
            format!("{{{items}}}")
        }
        _ => v.to_string(),
    }
}

/// A Python `datetime` (or `date`) in templates.
#[derive(Debug, Clone)]
struct Dt {
    t: Time,
    date_only: bool,
}

impl Dt {
    fn value(t: Time, date_only: bool) -> minijinja::Value {
        minijinja::Value::from_object(Dt { t, date_only })
    }
}

impl fmt::Display for Dt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.date_only {
            return f.write_str(&time::strftime(&self.t, "%Y-%m-%d"));
        }
        f.write_str(&isoformat(&self.t, " "))
    }
}

/// Python's `datetime.isoformat(sep)`.
fn isoformat(t: &Time, sep: &str) -> String {
    use chrono::Timelike;
    let frac = if t.nanosecond() / 1000 != 0 {
        ".%f"
    } else {
        ""
    };
    time::strftime(t, &format!("%Y-%m-%d{sep}%H:%M:%S{frac}%:z"))
}

impl Object for Dt {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        use chrono::{Datelike, Timelike};
        let t = &self.t;
        Some(minijinja::Value::from(match key.as_str()? {
            "year" => t.year() as i64,
            "month" => t.month() as i64,
            "day" => t.day() as i64,
            "hour" => t.hour() as i64,
            "minute" => t.minute() as i64,
            "second" => t.second() as i64,
            "microsecond" => (t.nanosecond() / 1000) as i64,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[minijinja::Value],
    ) -> Result<minijinja::Value, Error> {
        match method {
            "strftime" => {
                let f = args
                    .first()
                    .and_then(|a| a.as_str())
                    .ok_or_else(|| Error::new(ErrorKind::MissingArgument, "strftime(format)"))?;
                Ok(minijinja::Value::from(time::strftime(&self.t, f)))
            }
            "isoformat" => {
                if self.date_only {
                    return Ok(minijinja::Value::from(time::strftime(&self.t, "%Y-%m-%d")));
                }
                let sep = args.first().and_then(|a| a.as_str()).unwrap_or("T");
                Ok(minijinja::Value::from(isoformat(&self.t, sep)))
            }
            "timestamp" => Ok(minijinja::Value::from(
                self.t.timestamp_micros() as f64 / 1e6,
            )),
            "date" => Ok(Dt::value(self.t, true)),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("a datetime has no method `{method}` in sluice's templates"),
            )),
        }
    }
}

fn to_time(v: &minijinja::Value) -> Result<Time, Error> {
    if let Some(dt) = v.downcast_object_ref::<Dt>() {
        return Ok(dt.t);
    }
    if let Some(s) = v.as_str() {
        return time::parse_iso(s).ok_or_else(|| {
            Error::new(ErrorKind::InvalidOperation, format!("`{s}` is not a time"))
        });
    }
    if let Ok(n) = f64::try_from(v.clone()) {
        return time::parse(&n.to_string(), "%s_as_float")
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "not a timestamp"));
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("`{v}` is not a time"),
    ))
}

/// `timestamp(dt)`: seconds since the epoch — a number's as an integer, a date's as a float.
fn timestamp(v: minijinja::Value) -> Result<minijinja::Value, Error> {
    if v.is_number() {
        let f = f64::try_from(v).unwrap_or(0.0);
        return Ok(minijinja::Value::from(f.trunc() as i64));
    }
    // A date's timestamp is a float in the CDK (`datetime.timestamp()`): `1735689600.0`.
    Ok(minijinja::Value::from(
        to_time(&v)?.timestamp_micros() as f64 / 1e6,
    ))
}

/// `max(a, b, …)`, Python's.
fn py_max(args: Rest<minijinja::Value>) -> Result<minijinja::Value, Error> {
    let items: Vec<minijinja::Value> = if args.len() == 1 && args[0].kind() == ValueKind::Seq {
        args[0].try_iter()?.collect()
    } else {
        args.0
    };
    items
        .into_iter()
        .reduce(|a, b| if b > a { b } else { a })
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "max() of nothing"))
}

/// A method minijinja does not have, as Python has it.
fn python_method(
    state: &State,
    value: &minijinja::Value,
    method: &str,
    args: &[minijinja::Value],
) -> Result<minijinja::Value, Error> {
    if method == "replace"
        && let Some(s) = value.as_str()
    {
        let (old, new, count): (String, String, Option<i64>) = minijinja::value::from_args(args)?;
        let count = count.and_then(|c| usize::try_from(c).ok());
        return bounded_replace(s.to_string(), old, new, count).map(minijinja::Value::from);
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// The longest text `replace` may make.
pub const MAX_REPLACED: usize = 1 << 20;

/// Jinja's `replace(old, new, count=None)`, refusing to make more than [`MAX_REPLACED`] bytes.
fn bounded_replace(
    s: String,
    old: String,
    new: String,
    count: Option<usize>,
) -> Result<String, Error> {
    let found = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old.as_str()).count()
    };
    let n = count.map_or(found, |c| c.min(found));
    let len = s
        .len()
        .saturating_add(n.saturating_mul(new.len()))
        .saturating_sub(n.saturating_mul(old.len()));
    if len > MAX_REPLACED {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("replace() would make {len} bytes; at most {MAX_REPLACED}"),
        ));
    }
    Ok(s.replacen(old.as_str(), &new, n))
}

/// `day_delta(days, format='%Y-%m-%dT%H:%M:%S.%f%z')`: now plus `days`, written in `format`.
fn day_delta(days: f64, format: Option<String>) -> Result<String, Error> {
    let t = (days.abs() * 86_400.0 <= time::MAX_DURATION_SECS)
        .then(|| chrono::Duration::microseconds((days * 86_400e6) as i64))
        .and_then(|d| time::now().checked_add_signed(d))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("day_delta({days}) is past the calendar"),
            )
        })?;
    Ok(time::strftime(
        &t,
        format.as_deref().unwrap_or("%Y-%m-%dT%H:%M:%S.%f%z"),
    ))
}

/// `format_datetime(dt, format, input_format=None)`.
fn format_datetime(
    dt: minijinja::Value,
    format: String,
    input_format: Option<String>,
    _kwargs: Kwargs,
) -> Result<String, Error> {
    let t = match (dt.as_str(), input_format) {
        (Some(s), Some(inf)) => time::parse(s, &inf).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("`{s}` is not a time in `{inf}`"),
            )
        })?,
        _ => to_time(&dt)?,
    };
    Ok(time::format(&t, &format))
}

/// `str_to_datetime(text)`: a time from ISO-like text (UTC when it names no offset).
fn str_to_datetime(s: String) -> Result<minijinja::Value, Error> {
    let t = time::parse_iso(&s)
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("`{s}` is not a time")))?;
    Ok(Dt::value(t, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        let mut c = Context::new(
            &json!({"api_key": "{{secret:key}}", "start": "2024-01-01", "flag": true, "n": 5, "subdomain": "acme"}),
            &json!({"name": "users", "path": "/users"})
                .as_object()
                .unwrap()
                .clone(),
        );
        c.set(
            "stream_slice",
            &json!({"start_time": "2024-01-01T00:00:00Z", "parent_id": 7}),
        );
        c.set("next_page_token", &json!({"next_page_token": "abc"}));
        c
    }

    #[test]
    fn templates_see_airbyte_names_and_read_back_as_python_literals() {
        let c = ctx();
        let e = |t: &str| eval(t, &c).unwrap();
        assert_eq!(
            e("{{ config['api_key'] }}"),
            Some(json!("{{secret:key}}")),
            "a placeholder is data, never a template"
        );
        assert_eq!(
            e("https://{{ config.subdomain }}.example.com"),
            Some(json!("https://acme.example.com"))
        );
        assert_eq!(e("{{ parameters.path }}/x"), Some(json!("/users/x")));
        assert_eq!(e("{{ config['n'] }}"), Some(json!(5)));
        assert_eq!(e("{{ config['flag'] }}"), Some(json!(true)));
        assert_eq!(
            string("{{ config['flag'] }}", &c).unwrap().as_deref(),
            Some("True")
        );
        assert_eq!(e("{{ stream_partition.parent_id }}"), Some(json!(7)));
        assert_eq!(
            e("{{ stream_interval['start_time'] }}"),
            Some(json!("2024-01-01T00:00:00Z"))
        );
        assert_eq!(
            e("{{ next_page_token['next_page_token'] }}"),
            Some(json!("abc"))
        );
        assert_eq!(
            e("{{ config['missing'] }}"),
            None,
            "undefined renders empty: the default"
        );
        assert_eq!(
            e("{{ config.missing.deeper }}"),
            None,
            "an undefined error gives the default"
        );
        assert_eq!(e("plain"), Some(json!("plain")));
        assert_eq!(e("100"), Some(json!(100)));
        assert_eq!(e("{{ [1, 2] }}"), Some(json!([1, 2])));
        assert_eq!(e("{{ {'a': none} }}"), Some(json!({"a": null})));
        assert_eq!(e("{{ 'a:b' | base64encode }}"), Some(json!("YTpi")));
        assert_eq!(e("{{ max(1, 3, 2) }}"), Some(json!(3)));
        assert_eq!(
            e("{{ timestamp('2024-01-01T00:00:00Z') }}"),
            Some(json!(1704067200.0)),
            "a date's timestamp is a float, as in the CDK"
        );
        assert_eq!(
            e("{{ timestamp('2024-01-01T00:00:00Z') * 1000 }}"),
            Some(json!(1704067200000.0))
        );
        assert_eq!(
            e("{{ timestamp(1.7) }}"),
            Some(json!(1)),
            "a number's is an int"
        );
        assert_eq!(
            e("{{ format_datetime('2024-01-01T00:00:00Z', '%Y/%m/%d') }}"),
            Some(json!("2024/01/01"))
        );
        assert_eq!(
            e("{{ format_datetime('1704067200', '%Y-%m-%d', '%s') }}"),
            Some(json!("2024-01-01"))
        );
        assert_eq!(
            e("{{ str_to_datetime('2024-01-02').strftime('%s') }}"),
            Some(json!(1704153600))
        );
        assert_eq!(
            e("{{ str_to_datetime('2024-01-02T03:04:05Z') }}"),
            Some(json!("2024-01-02 03:04:05+00:00"))
        );
    }

    #[test]
    fn booleans_follow_the_cdk() {
        let c = ctx();
        assert!(boolean("{{ config['flag'] }}", &c).unwrap());
        assert!(!boolean("{{ not config['flag'] }}", &c).unwrap());
        assert!(!boolean("{{ config['missing'] }}", &c).unwrap());
        assert!(boolean("{{ config['n'] > 3 }}", &c).unwrap());
        assert!(!boolean("{{ [] }}", &c).unwrap());
    }

    #[test]
    fn now_and_errors() {
        let c = ctx();
        let y = eval("{{ now_utc().strftime('%Y') }}", &c).unwrap().unwrap();
        assert!(y.as_i64().unwrap() >= 2024);
        let d = eval("{{ today_utc() }}", &c).unwrap().unwrap();
        assert_eq!(d.as_str().unwrap().len(), 10);
        let e = eval("{{ now_utc() - duration('P1D') }}", &c).unwrap_err();
        assert!(e.0.contains("duration"), "{e}");
        let e = eval(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            &c,
        )
        .unwrap_err();
        assert!(e.0.contains("fuel"), "{e}");
        let e = eval("{{ ('x' * 1000).replace('x', 'y' * 2000) }}", &c).unwrap_err();
        assert!(
            e.0.contains("replace"),
            "str.replace is bounded like the filter: {e}"
        );
        let e = eval("{{ now_utc().astimezone() }}", &c).unwrap_err();
        assert!(e.0.contains("astimezone"), "{e}");
    }
}
