//! `GET /openapi.json`: the OpenAPI 3.1 document of the API, generated from [`ROUTES`] (the same
//! table the access layer enforces), so every route served is documented with who may call it.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::Method;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, Content, InfoBuilder, OpenApi, OpenApiBuilder, Required, ResponseBuilder,
};

use super::{Need, ROUTES, Route, RouteAccess};

/// The security scheme's name in the document.
const BEARER: &str = "api_key";

fn http_method(m: &Method) -> HttpMethod {
    match *m {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// `get_v1_workspaces_workspace_runs_id`: unique per route.
fn operation_id(r: &Route) -> String {
    let path: String = r
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path = path
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    format!("{}_{path}", r.method.as_str().to_ascii_lowercase())
}

/// The resource a route is about: `runs` for `/v1/workspaces/{workspace}/runs/{id}/cancel`.
fn tag(path: &str) -> &str {
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && !s.starts_with('{') && *s != "v1")
        .collect();
    match segments.as_slice() {
        ["workspaces", resource, ..] => resource,
        [first, ..] => first,
        [] => "api",
    }
}

fn who(access: RouteAccess) -> String {
    match access {
        RouteAccess::Public => "Anyone, without a key.".to_string(),
        RouteAccess::Org(roles) => format!(
            "Keys with the organization role {}.",
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        RouteAccess::Workspace(Need::Read) => {
            "Owners and admins; members who are editors or viewers of the workspace.".to_string()
        }
        RouteAccess::Workspace(Need::Write) => {
            "Owners and admins; members who are editors of the workspace.".to_string()
        }
    }
}

fn string_schema(integer: bool) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(if integer { Type::Integer } else { Type::String })
}

/// The document.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for r in ROUTES {
        let mut op = OperationBuilder::new()
            .operation_id(Some(operation_id(r)))
            .tag(tag(r.path))
            .description(Some(format!(
                "Who may call it: {} See docs/api.md.",
                who(r.access)
            )))
            .response(
                "2XX",
                ResponseBuilder::new()
                    .description("Done")
                    .content("application/json", Content::new(Some(ObjectBuilder::new())))
                    .build(),
            )
            .response(
                "4XX",
                ResponseBuilder::new()
                    .description("Refused: `{\"error\": \"what went wrong and what to do\"}`")
                    .build(),
            );
        for segment in r.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(string_schema(
                            name == "id" && r.path.contains("/runs/"),
                        ))),
                );
            }
        }
        if r.access != RouteAccess::Public {
            op = op
                .security(SecurityRequirement::new(BEARER, Vec::<String>::new()))
                .response(
                    "401",
                    ResponseBuilder::new()
                        .description("No valid API key, or a bad signature from a signing key")
                        .build(),
                )
                .response(
                    "403",
                    ResponseBuilder::new()
                        .description(
                            "The key's role, workspace role or allowlist does not allow this",
                        )
                        .build(),
                )
                .response(
                    "429",
                    ResponseBuilder::new()
                        .description("Over the key's request rate: see Retry-After")
                        .build(),
                );
        }
        if matches!(r.method, Method::POST | Method::PUT | Method::PATCH) {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", Content::new(Some(ObjectBuilder::new())))
                    .build(),
            ));
        }
        paths.add_path_operation(r.path, vec![http_method(&r.method)], op.build());
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("sluice control API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Operate sluice: connectors, workspaces, sources, destinations, \
                     connections, runs, keys and the audit log. Send `Authorization: Bearer \
                     <key>`.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    BEARER,
                    SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
                )
                .build(),
        ))
        .build()
}

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    Json(document()).into_response()
}
