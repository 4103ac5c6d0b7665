//! `/v1/connectors`: the installed connectors; install (with the approved capabilities listed
//! explicitly in the request) and remove.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::access::Caller;
use super::body::JsonBody;
use super::error::ApiError;
use super::routes::{Endpoint, delete, get, post};
use super::{ApiState, MANAGERS};
use crate::marketplace::{IndexError, InstallError, Installer, Location, Request};
use crate::store::InstalledConnector;

/// The routes of `/v1/connectors`.
pub(super) fn routes() -> Vec<Endpoint> {
    use StatusCode as S;
    vec![
        get("/v1/connectors", MANAGERS, "The installed connectors", list)
            .answers_list::<InstalledConnector>(S::OK, "Every installed connector"),
        post(
            "/v1/connectors",
            MANAGERS,
            "Install or upgrade a connector from an index, approving its capabilities",
            install,
        )
        .takes::<InstallBody>()
        .answers::<Installed>(S::CREATED, "Installed")
        .answers::<Installed>(S::OK, "Upgraded, or already installed (`unchanged`)")
        .creates("/v1/connectors/{name}", "/connector/name"),
        get(
            "/v1/connectors/{name}",
            MANAGERS,
            "An installed connector: digests, signer, approved capabilities",
            show,
        )
        .answers::<InstalledConnector>(S::OK, "It"),
        delete(
            "/v1/connectors/{name}",
            MANAGERS,
            "Remove an installed connector",
            remove,
        )
        .answers::<Removed>(S::OK, "What was removed"),
    ]
}

/// What an install did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Installed {
    /// The connector as installed now.
    pub connector: InstalledConnector,
    /// `true` when that version was installed already and nothing changed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(default = false)]
    pub unchanged: bool,
}

/// What a removal removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    /// The connector that was installed.
    pub removed: InstalledConnector,
}

/// `POST /v1/connectors`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallBody {
    /// The connector's name.
    #[schema(example = "source-faker")]
    pub name: String,
    /// A pinned version; default the newest that is not yanked.
    #[serde(default)]
    pub version: Option<String>,
    /// The index (a directory on the server, or an https URL); default the server's.
    #[serde(default)]
    pub index: Option<String>,
    /// The capability lines (as `GET` on a refused install lists them) the caller approves.
    #[serde(default)]
    pub approved: Option<Vec<String>>,
    /// Accept a version below the installed one.
    #[serde(default)]
    pub allow_downgrade: bool,
}

fn installer<'a>(state: &'a ApiState, caller: &Caller) -> Installer<'a> {
    Installer {
        store: &state.server.store,
        runtime: &state.server.runtime,
        actor: caller.actor(),
    }
}

fn install_error(e: &InstallError) -> ApiError {
    let status = match e {
        InstallError::Index(IndexError::UnknownName { .. } | IndexError::UnknownVersion { .. })
        | InstallError::NotInstalled { .. } => StatusCode::NOT_FOUND,
        InstallError::Downgrade { .. } => StatusCode::CONFLICT,
        InstallError::Store(_) | InstallError::Write { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.to_string())
}

/// `GET /v1/connectors`.
pub async fn list(State(state): State<ApiState>) -> Result<Response, ApiError> {
    Ok(Json(state.server.store.installed_connectors().await?).into_response())
}

/// `GET /v1/connectors/{name}`.
pub async fn show(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    match state.server.store.installed_connector(&name).await? {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("`{name}` is not installed"),
        )),
    }
}

/// `POST /v1/connectors`: install or upgrade. Without `approved` covering every capability
/// the version adds, nothing is installed and the answer (422) lists what needs approval.
pub async fn install(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<InstallBody>,
) -> Result<Response, ApiError> {
    let index = match &body.index {
        Some(i) => Location::parse(i)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?,
        None => state.server.default_index.clone().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "name an `index`: this server has no default index (`sluice serve --index`)",
            )
        })?,
    };
    let req = Request {
        name: body.name.clone(),
        version: body.version.clone(),
        index,
        ca: None,
        allow_downgrade: body.allow_downgrade,
    };
    let inst = installer(&state, &caller);
    let plan = match inst.plan(&req).await {
        Ok(p) => p,
        Err(e) => {
            inst.audit_refusal(&body.name, &e).await?;
            return Err(install_error(&e));
        }
    };
    if plan.is_installed()
        && let Some(current) = state.server.store.installed_connector(&body.name).await?
    {
        return Ok((
            StatusCode::OK,
            Json(Installed {
                connector: current,
                unchanged: true,
            }),
        )
            .into_response());
    }
    let to_approve = plan.to_approve();
    let capabilities = plan.capabilities.clone();
    let upgrade = plan.previous.is_some();
    match inst.commit(plan, body.approved.as_deref()).await {
        Ok(c) => Ok((
            if upgrade {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            Json(Installed {
                connector: c,
                unchanged: false,
            }),
        )
            .into_response()),
        Err(e) => {
            inst.audit_refusal(&body.name, &e).await?;
            let mut err = install_error(&e);
            if let InstallError::NotApproved { missing, .. } = &e {
                err.details = Some(json!({
                    "to_approve": to_approve,
                    "missing": missing,
                    "capabilities": capabilities,
                }));
            }
            Err(err)
        }
    }
}

/// `DELETE /v1/connectors/{name}`.
pub async fn remove(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    match installer(&state, &caller).remove(&name).await {
        Ok(c) => Ok(Json(Removed { removed: c }).into_response()),
        Err(e) => Err(install_error(&e)),
    }
}
