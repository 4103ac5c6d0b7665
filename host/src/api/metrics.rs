//! `GET /metrics`: Prometheus (OpenMetrics text) — API requests, their latencies and refusals,
//! counted by the audit layer; runs, records and bytes, read from the store at scrape time.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::error::ApiError;
use super::routes::{Endpoint, get};
use super::{ApiState, Role, RouteAccess};

/// The media type of the answer.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The route of `/metrics`.
pub(super) fn routes() -> Vec<Endpoint> {
    vec![
        get(
            "/metrics",
            RouteAccess::Org(&[Role::Owner, Role::Admin, Role::Billing]),
            "Prometheus metrics: API requests, latencies and refusals; runs, records and bytes",
            scrape,
        )
        .answers_text(http::StatusCode::OK, OPENMETRICS, "OpenMetrics text"),
    ]
}

/// A request, as counted.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

/// A route, for latencies.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// Why access was refused.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: String,
}

/// Runs by status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

type Latencies = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// What the audit layer counts, for `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latencies: Latencies,
    refusals: Family<RefusalLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            latencies: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            refusals: Family::default(),
        }
    }
}

impl Metrics {
    /// Count one answered request (`route` as routed, so ids do not explode the labels).
    pub fn observe(
        &self,
        method: &str,
        route: Option<&str>,
        status: u16,
        seconds: f64,
        refusal: Option<&str>,
    ) {
        let route = route.unwrap_or("unmatched").to_string();
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.clone(),
                status: status.to_string(),
            })
            .inc();
        self.latencies
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route,
            })
            .observe(seconds);
        if let Some(reason) = refusal {
            self.refusals
                .get_or_create(&RefusalLabels {
                    reason: reason.to_string(),
                })
                .inc();
        }
    }
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let totals = state.server.store.run_totals().await?;
    let mut registry = Registry::with_prefix("sluice");
    let m = &state.metrics;
    registry.register(
        "api_requests",
        "API requests answered, by route and status",
        m.requests.clone(),
    );
    registry.register(
        "api_request_duration_seconds",
        "Time to answer API requests (audit entry written), by route",
        m.latencies.clone(),
    );
    registry.register(
        "api_refusals",
        "API requests refused by the access layer, by reason",
        m.refusals.clone(),
    );
    let runs: Family<StatusLabels, Gauge> = Family::default();
    for (status, n) in &totals.runs_by_status {
        runs.get_or_create(&StatusLabels {
            status: status.clone(),
        })
        .set(*n);
    }
    registry.register("runs", "Runs in the store, by status", runs);
    let running: Gauge = Gauge::default();
    running.set(i64::try_from(state.server.running.len()).unwrap_or(i64::MAX));
    registry.register(
        "runs_in_progress",
        "Runs this server started that have not ended",
        running,
    );
    let records: Gauge = Gauge::default();
    records.set(totals.records);
    registry.register(
        "records_written",
        "Records the destinations durably wrote, over every run in the store",
        records,
    );
    let bytes: Gauge = Gauge::default();
    bytes.set(totals.bytes);
    registry.register(
        "bytes_written",
        "Bytes the destinations durably wrote, over every run in the store",
        bytes,
    );
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &registry).map_err(|e| {
        tracing::error!("cannot encode metrics: {e}");
        ApiError::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (see the server log)",
        )
    })?;
    Ok(([(CONTENT_TYPE, OPENMETRICS)], body).into_response())
}
