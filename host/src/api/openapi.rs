//! `GET /openapi.json`: the OpenAPI 3.1 document of the API, generated from [`ROUTES`] (the same
//! table the router and the access layer are built from), so every route served is documented
//! with who may call it, the bodies it takes and answers, and links to what it creates.

use axum::Json;
use axum::response::IntoResponse;
use http::Method;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::{Link, LinkBuilder};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, Content, InfoBuilder, OpenApi, OpenApiBuilder, Required, Response,
    ResponseBuilder,
};

use super::error::ErrorBody;
use super::names::NAME_PATTERN;
use super::routes::{Answer, JSON, Schemas, schema_of};
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

/// A path parameter's schema, as the handlers check it.
fn path_parameter(name: &str, path: &str) -> Schema {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    match name {
        "id" if path.contains("/runs/") => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(i64::MAX))
            .into(),
        "id" if path.contains("/webhooks/") => string().pattern(Some("^wh_[0-9a-f]{16}$")).into(),
        "id" | "key_id" => string().pattern(Some("^[0-9a-f]{16}$")).into(),
        "name" if path.starts_with("/v1/connectors/") => string().min_length(Some(1)).into(),
        _ => string().pattern(Some(NAME_PATTERN)).into(),
    }
}

/// The parameters of `path`, in order.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// Links from `from`'s answer to every route under the resource it creates, so a client
/// (schemathesis' stateful phase, for one) can follow what it made.
fn links(from: &Route) -> Vec<(String, Link)> {
    let Some(creates) = from.creates else {
        return Vec::new();
    };
    let created = path_parameters(creates.path).last().unwrap_or_default();
    let known: Vec<&str> = path_parameters(from.path).collect();
    let mut out = Vec::new();
    'route: for to in ROUTES.iter() {
        let under = to.path == creates.path || to.path.starts_with(&format!("{}/", creates.path));
        if !under {
            continue;
        }
        let mut link = LinkBuilder::new().operation_id(operation_id(to));
        for p in path_parameters(to.path) {
            let value = if p == created {
                format!("$response.body#{}", creates.pointer)
            } else if known.contains(&p) {
                format!("$request.path.{p}")
            } else {
                continue 'route;
            };
            link = link.parameter(p, value);
        }
        out.push((operation_id(to), link.build()));
    }
    out
}

fn error_answer(description: &str, schemas: &mut Schemas) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content(JSON, Content::new(Some(schema_of::<ErrorBody>(schemas))))
}

fn answer(a: &Answer, links: &[(String, Link)], schemas: &mut Schemas) -> Response {
    let mut resp = ResponseBuilder::new().description(a.description);
    for b in &a.bodies {
        let content = match b.schema {
            Some(schema) => Content::new(Some(schema(schemas))),
            None => Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
        };
        resp = resp.content(b.content_type, content);
    }
    for (name, description) in &a.headers {
        resp = resp.header(
            *name,
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                .description(Some(*description))
                .build(),
        );
    }
    if a.status.is_success() {
        for (name, link) in links {
            resp = resp.link(name.clone(), link.clone());
        }
    }
    resp.build()
}

/// The document.
pub fn document() -> OpenApi {
    let mut schemas = Schemas::new();
    let mut paths = Paths::new();
    for r in ROUTES.iter() {
        let links = links(r);
        let mut op = OperationBuilder::new()
            .operation_id(Some(operation_id(r)))
            .tag(tag(r.path))
            .summary(Some(r.summary))
            .description(Some(format!(
                "Who may call it: {} See docs/api.md.",
                who(r.access)
            )));
        for a in &r.answers {
            op = op.response(a.status.as_str(), answer(a, &links, &mut schemas));
        }
        op = op
            .response(
                "4XX",
                error_answer("Refused: what went wrong and what to do", &mut schemas).build(),
            )
            .response(
                "5XX",
                error_answer(
                    "The server failed (the store, a file it keeps): the server log has more",
                    &mut schemas,
                )
                .build(),
            );
        for name in path_parameters(r.path) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(path_parameter(name, r.path))),
            );
        }
        if let Some(query) = r.query {
            for p in query() {
                op = op.parameter(p);
            }
        }
        if r.access != RouteAccess::Public {
            op = op
                .security(SecurityRequirement::new(BEARER, Vec::<String>::new()))
                .response(
                    "401",
                    error_answer(
                        "No valid API key, or a bad signature from a signing key",
                        &mut schemas,
                    )
                    .build(),
                )
                .response(
                    "403",
                    error_answer(
                        "The key's role, workspace role or allowlist does not allow this",
                        &mut schemas,
                    )
                    .build(),
                )
                .response(
                    "429",
                    error_answer("Over the key's request rate", &mut schemas)
                        .header(
                            "Retry-After",
                            HeaderBuilder::new()
                                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                                .description(Some("Seconds to wait before trying again"))
                                .build(),
                        )
                        .build(),
                );
        }
        if let Some((schema, required)) = r.request {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(JSON, Content::new(Some(schema(&mut schemas))))
                    .required(Some(if required {
                        Required::True
                    } else {
                        Required::False
                    }))
                    .build(),
            ));
        }
        paths.add_path_operation(r.path, vec![http_method(&r.method)], op.build());
    }
    let mut components = ComponentsBuilder::new().security_scheme(
        BEARER,
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    for (name, schema) in schemas {
        components = components.schema(name, schema);
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
        .components(Some(components.build()))
        .build()
}

/// `GET /openapi.json`.
pub async fn serve() -> axum::response::Response {
    Json(document()).into_response()
}
