//! The connector's config: the API, its auth, and the streams to read from it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json_path::JsonPath;
use sluice_sdk::{Error, Result, Value, json};

/// The whole config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `https://api.example.com/v1`; stream paths are appended to it.
    pub base_url: String,
    /// How requests authenticate.
    #[serde(default)]
    pub auth: Auth,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The streams.
    pub streams: Vec<StreamConfig>,
    /// Pages read per stream before giving up (a server that never ends its pagination).
    #[serde(default = "default_max_pages")]
    pub max_pages: u64,
}

fn default_max_pages() -> u64 {
    100_000
}

/// Authentication. Secret values are best given as `{{secret:NAME}}` placeholders: the host
/// substitutes them on the way out, so this connector never holds them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// None.
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer {
        /// The token.
        token: String,
    },
    /// An API key in a header or a query parameter.
    ApiKey {
        /// Header or parameter name.
        name: String,
        /// The key.
        value: String,
        /// Where it goes.
        #[serde(default, rename = "in")]
        location: KeyLocation,
    },
    /// HTTP Basic. Either `username` and `password`, or `credentials` holding a placeholder of a
    /// secret whose value is `user:password` (then the host encodes it on the way out).
    Basic {
        /// User name.
        #[serde(default)]
        username: Option<String>,
        /// Password.
        #[serde(default)]
        password: Option<String>,
        /// `{{secret:NAME}}` of a `user:password` secret.
        #[serde(default)]
        credentials: Option<String>,
    },
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    /// A request header.
    #[default]
    Header,
    /// A query parameter.
    Query,
}

/// One stream: an endpoint, where its records are in the response, how it pages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// The stream's name.
    pub name: String,
    /// Path appended to `base_url`, e.g. `/users`.
    pub path: String,
    /// Query parameters sent with every request of this stream.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// JSONPath (RFC 9535) to the records in a response, e.g. `$.data` or `$.data.items[*]`.
    /// Default: the response is the array of records.
    #[serde(default)]
    pub records: Option<String>,
    /// Fields that identify a record.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// JSON schema of a record (default: any object).
    #[serde(default)]
    pub schema: Option<Value>,
    /// How to get the next page.
    #[serde(default)]
    pub pagination: Pagination,
    /// How to read only what changed.
    #[serde(default)]
    pub incremental: Option<Incremental>,
}

/// Pagination styles.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One request.
    #[default]
    None,
    /// `?page=1`, `?page=2`, … until a page is empty (or shorter than `size`).
    Page {
        /// Page parameter.
        #[serde(default = "page_param")]
        param: String,
        /// First page number.
        #[serde(default = "one")]
        start: u64,
        /// Page-size parameter, sent with `size` when both are given.
        #[serde(default)]
        size_param: Option<String>,
        /// Records per page.
        #[serde(default)]
        size: Option<u64>,
    },
    /// `?offset=0&limit=N`, `?offset=N&limit=N`, … until a page is shorter than `limit`.
    Offset {
        /// Offset parameter.
        #[serde(default = "offset_param")]
        param: String,
        /// Limit parameter.
        #[serde(default = "limit_param")]
        limit_param: String,
        /// Records per page.
        limit: u64,
    },
    /// The response carries the next page's cursor; send it back as `param`.
    Cursor {
        /// Cursor parameter.
        #[serde(default = "cursor_param")]
        param: String,
        /// JSONPath to the next cursor in the response body, e.g. `$.meta.next_cursor`.
        cursor_path: String,
    },
    /// Follow the `Link: <…>; rel="next"` response header (RFC 8288).
    Link,
}

fn page_param() -> String {
    "page".into()
}
fn offset_param() -> String {
    "offset".into()
}
fn limit_param() -> String {
    "limit".into()
}
fn cursor_param() -> String {
    "cursor".into()
}
fn one() -> u64 {
    1
}

/// Incremental reads by a cursor field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// The record field (top level) that grows as records change, e.g. `updated_at`.
    pub cursor_field: String,
    /// Query parameter that asks the API for records after a cursor value (e.g. `since`). The
    /// connector also drops records at or before the cursor itself, so APIs that include the
    /// boundary record are fine.
    #[serde(default)]
    pub param: Option<String>,
    /// The cursor value of the very first read, if any.
    #[serde(default)]
    pub start: Option<Value>,
}

impl Config {
    /// Check what serde cannot: URLs, names, paths.
    pub fn validate(&self) -> Result<()> {
        sluice_sdk::http::split_url(&self.base_url).map_err(|_| {
            Error::config(format!(
                "`base_url` {:?} is not an absolute http(s) URL",
                self.base_url
            ))
        })?;
        if self.streams.is_empty() {
            return Err(Error::config("`streams` is empty: declare at least one"));
        }
        for (i, s) in self.streams.iter().enumerate() {
            if s.name.is_empty() {
                return Err(Error::config(format!("`streams[{i}].name` is empty")));
            }
            if self.streams[..i].iter().any(|o| o.name == s.name) {
                return Err(Error::config(format!(
                    "stream `{}` is declared twice",
                    s.name
                )));
            }
            if let Some(p) = &s.records {
                JsonPath::parse(p).map_err(|e| {
                    Error::config(format!(
                        "`streams[{i}].records` {p:?} is not a JSONPath: {e}"
                    ))
                })?;
            }
            if let Pagination::Cursor { cursor_path, .. } = &s.pagination {
                JsonPath::parse(cursor_path).map_err(|e| {
                    Error::config(format!(
                        "`streams[{i}].pagination.cursor_path` {cursor_path:?} is not a JSONPath: {e}"
                    ))
                })?;
            }
            if let Pagination::Offset { limit: 0, .. } = s.pagination {
                return Err(Error::config(format!(
                    "`streams[{i}].pagination.limit` must be at least 1"
                )));
            }
        }
        if let Auth::Basic {
            username,
            password,
            credentials,
        } = &self.auth
        {
            let pair = username.is_some() && password.is_some();
            if pair == credentials.is_some() {
                return Err(Error::config(
                    "`auth` of type basic needs either `username` and `password`, or `credentials`",
                ));
            }
        }
        Ok(())
    }
}

/// The config's JSON schema; secret fields are marked so the host never prints them.
pub fn schema() -> Value {
    let secret = json!({"type": "string", "secret": true});
    let s = json!({"type": "string"});
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": ["base_url", "streams"],
        "additionalProperties": false,
        "properties": {
            "base_url": {"type": "string", "format": "uri"},
            "headers": {"type": "object", "additionalProperties": s},
            "max_pages": {"type": "integer", "minimum": 1},
            "auth": {"oneOf": [
                {"type": "object", "required": ["type"], "properties": {"type": {"const": "none"}}},
                {"type": "object", "required": ["type", "token"],
                 "properties": {"type": {"const": "bearer"}, "token": secret}},
                {"type": "object", "required": ["type", "name", "value"],
                 "properties": {"type": {"const": "api_key"}, "name": s, "value": secret,
                                "in": {"enum": ["header", "query"]}}},
                {"type": "object", "required": ["type"],
                 "properties": {"type": {"const": "basic"}, "username": s, "password": secret,
                                "credentials": secret}}
            ]},
            "streams": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "required": ["name", "path"],
                "properties": {
                    "name": s, "path": s,
                    "params": {"type": "object", "additionalProperties": s},
                    "records": {"type": "string", "description": "JSONPath to the records"},
                    "primary_key": {"type": "array", "items": s},
                    "schema": {"type": "object"},
                    "pagination": {"type": "object", "required": ["type"], "properties": {
                        "type": {"enum": ["none", "page", "offset", "cursor", "link"]}
                    }},
                    "incremental": {"type": "object", "required": ["cursor_field"], "properties": {
                        "cursor_field": s, "param": s
                    }}
                }
            }}
        }
    })
}
