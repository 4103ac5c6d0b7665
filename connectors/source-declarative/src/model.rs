//! The components sluice runs, as the resolved manifest spells them.
//!
//! Field names and defaults are those of Airbyte's `declarative_component_schema.yaml`. Fields
//! the CDK accepts and sluice does not act on are ignored like the CDK ignores unknown ones
//! (parameters are copied into every component, so components take any extra field); component
//! types sluice does not run were refused before this (see `check`).

use serde::Deserialize;
use serde_json::{Map, Value};

/// Parameters a component was given (`$parameters`), for its templates.
pub type Parameters = Map<String, Value>;

/// The whole manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct DeclarativeSource {
    /// Its streams.
    pub streams: Vec<DeclarativeStream>,
    /// How `check` tests a config.
    pub check: Option<CheckStream>,
    /// The config's schema.
    pub spec: Option<SpecDef>,
}

/// `CheckStream`: a config is good when these streams answer.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckStream {
    /// Streams read (one page each) by `check`.
    #[serde(default)]
    pub stream_names: Vec<String>,
}

/// `Spec`: the connector's config schema.
#[derive(Debug, Clone, Deserialize)]
pub struct SpecDef {
    /// JSON schema of the config; `airbyte_secret: true` marks a secret.
    pub connection_specification: Value,
    /// Where to read more.
    #[serde(default)]
    pub documentation_url: Option<String>,
}

/// `DeclarativeStream`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeclarativeStream {
    /// Its name (often from `$parameters`).
    #[serde(default)]
    pub name: String,
    /// A field, a list of fields, or a list of field paths.
    #[serde(default)]
    pub primary_key: Value,
    /// How its records are fetched.
    pub retriever: SimpleRetriever,
    /// Where its schema comes from.
    #[serde(default)]
    pub schema_loader: Option<SchemaLoader>,
    /// How it is read incrementally.
    #[serde(default)]
    pub incremental_sync: Option<DatetimeBasedCursor>,
    /// What is done to each record.
    #[serde(default)]
    pub transformations: Vec<Transformation>,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

/// Where a stream's schema comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum SchemaLoader {
    /// The schema written in the manifest.
    InlineSchemaLoader {
        /// The schema.
        #[serde(default)]
        schema: Value,
    },
    /// A JSON file shipped with the manifest (`schemas/NAME.json`).
    JsonFileSchemaLoader {
        /// Its path; by default `./source_x/schemas/{{ parameters.name }}.json`.
        #[serde(default)]
        file_path: Option<String>,
        /// Its parameters.
        #[serde(default, rename = "$parameters")]
        parameters: Parameters,
    },
}

/// `SimpleRetriever`: requests, pages and partitions of one stream.
#[derive(Debug, Clone, Deserialize)]
pub struct SimpleRetriever {
    /// How each request is made.
    pub requester: HttpRequester,
    /// Where the records are in a response.
    pub record_selector: RecordSelector,
    /// How it pages.
    #[serde(default)]
    pub paginator: Option<Paginator>,
    /// One partition router or a list of them (their cartesian product).
    #[serde(default)]
    pub partition_router: Option<Value>,
    /// Paginated requests after the first drop the partition's request options.
    #[serde(default)]
    pub ignore_stream_slicer_parameters_on_paginated_requests: bool,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

/// `HttpRequester`.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpRequester {
    /// The API's base URL (a template).
    pub url_base: String,
    /// The path under it (a template).
    #[serde(default)]
    pub path: Option<String>,
    /// `GET` or `POST`.
    #[serde(default = "get")]
    pub http_method: String,
    /// Query parameters: a map of templates, or one template of a map.
    #[serde(default)]
    pub request_parameters: Option<Value>,
    /// Headers, like the parameters.
    #[serde(default)]
    pub request_headers: Option<Value>,
    /// A JSON body.
    #[serde(default)]
    pub request_body_json: Option<Value>,
    /// A form (or raw) body.
    #[serde(default)]
    pub request_body_data: Option<Value>,
    /// How requests are authenticated.
    #[serde(default)]
    pub authenticator: Option<Authenticator>,
    /// What to do with error responses.
    #[serde(default)]
    pub error_handler: Option<ErrorHandler>,
    /// Whether its responses are cached for the run (parent streams' are unless `false`).
    #[serde(default)]
    pub use_cache: Option<bool>,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

fn get() -> String {
    "GET".into()
}

/// The authenticators sluice runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum Authenticator {
    /// Nothing.
    NoAuth {},
    /// A token in a header or query parameter.
    ApiKeyAuthenticator {
        /// The token (a template).
        #[serde(default)]
        api_token: Option<String>,
        /// Old spelling of `inject_into` for a header.
        #[serde(default)]
        header: Option<String>,
        /// Where the token goes.
        #[serde(default)]
        inject_into: Option<RequestOption>,
        /// Its parameters.
        #[serde(default, rename = "$parameters")]
        parameters: Parameters,
    },
    /// `Authorization: Bearer TOKEN`.
    BearerAuthenticator {
        /// The token (a template).
        api_token: String,
        /// Its parameters.
        #[serde(default, rename = "$parameters")]
        parameters: Parameters,
    },
    /// `Authorization: Basic base64(username:password)`.
    BasicHttpAuthenticator {
        /// The user (a template).
        username: String,
        /// The password (a template).
        #[serde(default)]
        password: Option<String>,
        /// Its parameters.
        #[serde(default, rename = "$parameters")]
        parameters: Parameters,
    },
}

/// `RequestOption`: where a value goes in a request.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestOption {
    /// The parameter, header or body field name (a template).
    #[serde(default)]
    pub field_name: Option<String>,
    /// `request_parameter`, `header`, `body_data` or `body_json`.
    pub inject_into: Inject,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

/// Where a [`RequestOption`] puts its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Inject {
    /// A query parameter.
    RequestParameter,
    /// A header.
    Header,
    /// A form body field.
    BodyData,
    /// A JSON body field.
    BodyJson,
}

/// `RecordSelector`.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordSelector {
    /// Where the records are.
    pub extractor: DpathExtractor,
    /// Which records are kept.
    #[serde(default)]
    pub record_filter: Option<RecordFilter>,
}

/// `DpathExtractor`: a path of keys (templates; `*` matches every key or index).
#[derive(Debug, Clone, Deserialize)]
pub struct DpathExtractor {
    /// The path; empty means the whole body.
    #[serde(default)]
    pub field_path: Vec<String>,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

/// `RecordFilter`: records for which `condition` is true are kept.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordFilter {
    /// A template of a boolean.
    #[serde(default)]
    pub condition: String,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

/// A stream's paginator.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum Paginator {
    /// One page only.
    NoPagination {},
    /// A strategy and where its token goes.
    DefaultPaginator(Box<DefaultPaginator>),
}

/// `DefaultPaginator`.
#[derive(Debug, Clone, Deserialize)]
pub struct DefaultPaginator {
    /// How the next page is found.
    pub pagination_strategy: PaginationStrategy,
    /// Where the next page's token goes.
    #[serde(default)]
    pub page_token_option: Option<TokenOption>,
    /// Where the page size goes.
    #[serde(default)]
    pub page_size_option: Option<RequestOption>,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

/// Where a page token goes: a request option, or the whole path (`RequestPath`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum TokenOption {
    /// A parameter, header or body field.
    RequestOption(RequestOption),
    /// The token is the next request's path (or URL).
    RequestPath {},
}

/// How the next page is found.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum PaginationStrategy {
    /// Page numbers.
    PageIncrement {
        /// Records per page (a number or template); a shorter page is the last.
        #[serde(default)]
        page_size: Option<Value>,
        /// The first page's number.
        #[serde(default)]
        start_from_page: i64,
        /// Send the first page's number on the first request too.
        #[serde(default)]
        inject_on_first_request: bool,
    },
    /// Record offsets.
    OffsetIncrement {
        /// Records per page (a number or template); a shorter page is the last.
        #[serde(default)]
        page_size: Option<Value>,
        /// Send offset 0 on the first request too.
        #[serde(default)]
        inject_on_first_request: bool,
    },
    /// A token read from the response.
    CursorPagination {
        /// The next token (a template over `response`, `headers`, `last_record`…).
        cursor_value: String,
        /// Stop when this template is true.
        #[serde(default)]
        stop_condition: Option<String>,
        /// Records per page, sent through `page_size_option`.
        #[serde(default)]
        page_size: Option<Value>,
        /// Its parameters.
        #[serde(default, rename = "$parameters")]
        parameters: Parameters,
    },
}

/// A partition router.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum PartitionRouter {
    /// One partition per listed value.
    ListPartitionRouter {
        /// The values: a list, or a template of one.
        values: Value,
        /// The partition's key (a template).
        cursor_field: String,
        /// Where the value goes in requests.
        #[serde(default)]
        request_option: Option<Box<RequestOption>>,
        /// Its parameters.
        #[serde(default, rename = "$parameters")]
        parameters: Parameters,
    },
    /// One partition per record of a parent stream.
    SubstreamPartitionRouter {
        /// The parents.
        parent_stream_configs: Vec<ParentStreamConfig>,
    },
}

/// `ParentStreamConfig`.
#[derive(Debug, Clone, Deserialize)]
pub struct ParentStreamConfig {
    /// The parent stream.
    pub stream: Box<DeclarativeStream>,
    /// The parent record's field (a template) that identifies the partition.
    pub parent_key: String,
    /// The partition's key for it (a template).
    pub partition_field: String,
    /// Where the value goes in requests.
    #[serde(default)]
    pub request_option: Option<RequestOption>,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

/// `DatetimeBasedCursor`.
#[derive(Debug, Clone, Deserialize)]
pub struct DatetimeBasedCursor {
    /// The record field holding its time (a template).
    pub cursor_field: String,
    /// How the cursor's values are written (a strftime format, `%s`, `%ms`…).
    pub datetime_format: String,
    /// Formats records' values may be in; by default `datetime_format`.
    #[serde(default)]
    pub cursor_datetime_formats: Vec<String>,
    /// The start.
    pub start_datetime: MinMax,
    /// The end; by default now.
    #[serde(default)]
    pub end_datetime: Option<MinMax>,
    /// The window's length (ISO 8601 duration); one window when absent.
    #[serde(default)]
    pub step: Option<String>,
    /// The smallest step of the cursor (ISO 8601 duration): windows end one granularity before
    /// the next starts.
    #[serde(default)]
    pub cursor_granularity: Option<String>,
    /// Re-read this far before the state (ISO 8601 duration).
    #[serde(default)]
    pub lookback_window: Option<String>,
    /// Where a window's start goes.
    #[serde(default)]
    pub start_time_option: Option<RequestOption>,
    /// Where a window's end goes.
    #[serde(default)]
    pub end_time_option: Option<RequestOption>,
    /// The window's start key in `stream_slice`.
    #[serde(default)]
    pub partition_field_start: Option<String>,
    /// The window's end key in `stream_slice`.
    #[serde(default)]
    pub partition_field_end: Option<String>,
    /// Records outside the window are dropped by the connector.
    #[serde(default)]
    pub is_client_side_incremental: bool,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

/// A time, written as a template or as `MinMaxDatetime`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MinMax {
    /// A template of a time.
    Text(String),
    /// `MinMaxDatetime`.
    Bounded(MinMaxDatetime),
}

/// `MinMaxDatetime`: a time, clamped.
#[derive(Debug, Clone, Deserialize)]
pub struct MinMaxDatetime {
    /// The time (a template).
    pub datetime: String,
    /// Its format; by default ISO 8601.
    #[serde(default)]
    pub datetime_format: Option<String>,
    /// No earlier than this (a template).
    #[serde(default)]
    pub min_datetime: Option<String>,
    /// No later than this (a template).
    #[serde(default)]
    pub max_datetime: Option<String>,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

/// What is done to a record.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum Transformation {
    /// Set fields.
    AddFields {
        /// The fields.
        fields: Vec<AddedField>,
        /// Its parameters.
        #[serde(default, rename = "$parameters")]
        parameters: Parameters,
    },
    /// Delete fields.
    RemoveFields {
        /// Paths (with `*`) of the fields.
        field_pointers: Vec<Vec<String>>,
        /// Only when this template is true (of `property`).
        #[serde(default)]
        condition: Option<String>,
        /// Its parameters.
        #[serde(default, rename = "$parameters")]
        parameters: Parameters,
    },
}

/// `AddedFieldDefinition`.
#[derive(Debug, Clone, Deserialize)]
pub struct AddedField {
    /// Where the field goes.
    pub path: Vec<String>,
    /// Its value (a template, or a plain value).
    pub value: Value,
}

/// What to do with error responses.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum ErrorHandler {
    /// Filters and a backoff.
    DefaultErrorHandler(DefaultErrorHandler),
    /// The first handler that matches decides.
    CompositeErrorHandler {
        /// The handlers, in order.
        error_handlers: Vec<ErrorHandler>,
    },
}

/// `DefaultErrorHandler`.
#[derive(Debug, Clone, Deserialize)]
pub struct DefaultErrorHandler {
    /// Which responses get which action.
    #[serde(default)]
    pub response_filters: Vec<HttpResponseFilter>,
    /// How long to wait before a retry.
    #[serde(default)]
    pub backoff_strategies: Vec<Backoff>,
    /// Retries of one request (default 5).
    #[serde(default)]
    pub max_retries: Option<u32>,
}

/// `HttpResponseFilter`.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpResponseFilter {
    /// `SUCCESS`, `FAIL`, `RETRY`, `IGNORE` or `RATE_LIMITED`.
    #[serde(default)]
    pub action: Option<String>,
    /// The status codes it matches.
    #[serde(default)]
    pub http_codes: Vec<u16>,
    /// A substring of the error message it matches.
    #[serde(default)]
    pub error_message_contains: Option<String>,
    /// A template of a boolean over `response` and `headers`.
    #[serde(default)]
    pub predicate: Option<String>,
    /// The message to fail with (a template).
    #[serde(default)]
    pub error_message: Option<String>,
    /// Its parameters.
    #[serde(default, rename = "$parameters")]
    pub parameters: Parameters,
}

/// A backoff strategy.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum Backoff {
    /// The same wait each time.
    ConstantBackoffStrategy {
        /// Seconds (a number or template).
        backoff_time_in_seconds: Value,
    },
    /// `factor * 2^attempt` seconds.
    ExponentialBackoffStrategy {
        /// The factor (default 5).
        #[serde(default)]
        factor: Option<Value>,
    },
    /// Seconds from a response header.
    WaitTimeFromHeader {
        /// The header.
        header: String,
        /// A regex whose first match is the number.
        #[serde(default)]
        regex: Option<String>,
        /// The most to wait.
        #[serde(default)]
        max_waiting_time_in_seconds: Option<f64>,
    },
    /// A unix time from a response header.
    WaitUntilTimeFromHeader {
        /// The header.
        header: String,
        /// The least to wait, in seconds.
        #[serde(default)]
        min_wait: Option<Value>,
        /// A regex whose first match is the time.
        #[serde(default)]
        regex: Option<String>,
    },
}
