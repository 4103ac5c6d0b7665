//! The route table's parts. Each resource module declares each of its routes once, in its
//! `routes()`: method, path, who may call it, the handler, and the bodies it takes and answers.
//! The router, the access layer ([`super::ROUTES`]) and `/openapi.json` are all built from
//! those declarations, so a route cannot be served without an access rule, nor documented
//! differently from how it is served.

use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter, on};
use http::{Method, StatusCode};
use utoipa::openapi::path::Parameter;
use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, ToSchema};

use super::{ApiState, RouteAccess};

/// The component schemas a document collects while it refers to them.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// A body's schema: registers what it needs in the components, returns a reference to it.
pub type SchemaFn = fn(&mut Schemas) -> RefOr<Schema>;

/// `T` by reference, with `T` and what it uses in the components.
pub fn schema_of<T: ToSchema>(out: &mut Schemas) -> RefOr<Schema> {
    register::<T>(out, T::name().to_string(), T::schema())
}

/// `T`'s schema under the name `name`, with `field` required: the `POST` form of a body whose
/// `PUT` form takes that field from the path.
pub fn requiring<T: ToSchema>(out: &mut Schemas, name: &str, field: &str) -> RefOr<Schema> {
    let mut schema = T::schema();
    if let RefOr::T(Schema::Object(o)) = &mut schema
        && !o.required.iter().any(|r| r == field)
    {
        o.required.push(field.to_string());
    }
    register::<T>(out, name.to_string(), schema)
}

fn register<T: ToSchema>(out: &mut Schemas, name: String, schema: RefOr<Schema>) -> RefOr<Schema> {
    let mut found = vec![(name.clone(), schema)];
    T::schemas(&mut found);
    for (n, schema) in found {
        match out.iter().find(|(known, _)| *known == n) {
            // Two types under one name would document one of them wrongly.
            Some((_, known)) => assert!(*known == schema, "two schemas are named `{n}`"),
            None => out.push((n, schema)),
        }
    }
    Ref::from_schema_name(name).into()
}

/// An array of `T`.
pub fn list_of<T: ToSchema>(out: &mut Schemas) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(schema_of::<T>(out))
        .build()
        .into()
}

/// Any JSON object.
pub fn object(_: &mut Schemas) -> RefOr<Schema> {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .build()
        .into()
}

/// A body as one media type, with its schema (none: any text).
#[derive(Clone, Copy)]
pub struct Body {
    /// `application/json`, `text/plain; charset=utf-8`…
    pub content_type: &'static str,
    /// Its schema.
    pub schema: Option<SchemaFn>,
}

/// One documented answer of a route.
#[derive(Clone)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// What it means.
    pub description: &'static str,
    /// Its body in each media type it may come as (none: no body).
    pub bodies: Vec<Body>,
    /// Response headers it carries, by name, with what they say.
    pub headers: Vec<(&'static str, &'static str)>,
}

/// Where the resource a route creates is found next: the path it lives under (`…/runs/{id}`)
/// and the JSON pointer of its id in the answer (`/run/id`). `/openapi.json` links the answer
/// to every route under that path, so clients (and schemathesis) can follow them.
#[derive(Clone, Copy)]
pub struct Creates {
    /// The created resource's path, ending in its parameter.
    pub path: &'static str,
    /// Where its id is in the answer.
    pub pointer: &'static str,
}

/// A route and who may call it, as the access layer and the document read it.
#[derive(Clone)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path as routed (`{name}` for a parameter).
    pub path: &'static str,
    /// Who may call it.
    pub access: RouteAccess,
    /// What it does, in a line.
    pub summary: &'static str,
    /// The JSON body it takes, and whether one must be sent.
    pub request: Option<(SchemaFn, bool)>,
    /// Its query parameters.
    pub query: Option<fn() -> Vec<Parameter>>,
    /// Its successful answers (errors are documented for every route alike).
    pub answers: Vec<Answer>,
    /// What it creates, for links.
    pub creates: Option<Creates>,
}

/// A route with its handler: what each resource module declares.
pub struct Endpoint {
    /// What it is.
    pub route: Route,
    /// What serves it.
    pub handler: MethodRouter<ApiState>,
}

fn endpoint<H, T>(
    method: Method,
    path: &'static str,
    access: RouteAccess,
    summary: &'static str,
    handler: H,
) -> Endpoint
where
    H: Handler<T, ApiState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
    Endpoint {
        route: Route {
            method,
            path,
            access,
            summary,
            request: None,
            query: None,
            answers: Vec::new(),
            creates: None,
        },
        handler: on(filter, handler),
    }
}

/// `GET path`.
pub fn get<H: Handler<T, ApiState>, T: 'static>(
    path: &'static str,
    access: RouteAccess,
    summary: &'static str,
    handler: H,
) -> Endpoint {
    endpoint(Method::GET, path, access, summary, handler)
}

/// `POST path`.
pub fn post<H: Handler<T, ApiState>, T: 'static>(
    path: &'static str,
    access: RouteAccess,
    summary: &'static str,
    handler: H,
) -> Endpoint {
    endpoint(Method::POST, path, access, summary, handler)
}

/// `PUT path`.
pub fn put<H: Handler<T, ApiState>, T: 'static>(
    path: &'static str,
    access: RouteAccess,
    summary: &'static str,
    handler: H,
) -> Endpoint {
    endpoint(Method::PUT, path, access, summary, handler)
}

/// `PATCH path`.
pub fn patch<H: Handler<T, ApiState>, T: 'static>(
    path: &'static str,
    access: RouteAccess,
    summary: &'static str,
    handler: H,
) -> Endpoint {
    endpoint(Method::PATCH, path, access, summary, handler)
}

/// `DELETE path`.
pub fn delete<H: Handler<T, ApiState>, T: 'static>(
    path: &'static str,
    access: RouteAccess,
    summary: &'static str,
    handler: H,
) -> Endpoint {
    endpoint(Method::DELETE, path, access, summary, handler)
}

/// The media type of JSON bodies.
pub const JSON: &str = "application/json";

impl Endpoint {
    /// It takes a JSON body of type `B`, always.
    pub fn takes<B: ToSchema>(mut self) -> Self {
        self.route.request = Some((schema_of::<B>, true));
        self
    }

    /// It takes a JSON body of the schema `schema` gives, always.
    pub fn takes_as(mut self, schema: SchemaFn) -> Self {
        self.route.request = Some((schema, true));
        self
    }

    /// It may take a JSON body of type `B` (without one, `B`'s defaults).
    pub fn may_take<B: ToSchema>(mut self) -> Self {
        self.route.request = Some((schema_of::<B>, false));
        self
    }

    /// It reads the query parameters of `Q`.
    pub fn query<Q: IntoParams>(mut self) -> Self {
        self.route.query =
            Some(|| Q::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query)));
        self
    }

    /// It answers `status` with a JSON body of type `R`.
    pub fn answers<R: ToSchema>(self, status: StatusCode, description: &'static str) -> Self {
        self.answers_as(status, description, schema_of::<R>)
    }

    /// It answers `status` with a JSON array of `R`.
    pub fn answers_list<R: ToSchema>(self, status: StatusCode, description: &'static str) -> Self {
        self.answers_as(status, description, list_of::<R>)
    }

    /// It answers `status` with a JSON body of the schema `schema` gives.
    pub fn answers_as(
        mut self,
        status: StatusCode,
        description: &'static str,
        schema: SchemaFn,
    ) -> Self {
        self.route.answers.push(Answer {
            status,
            description,
            bodies: vec![Body {
                content_type: JSON,
                schema: Some(schema),
            }],
            headers: Vec::new(),
        });
        self
    }

    /// The last answer may also come as `content_type` text (`schema`: none for any text).
    pub fn or_as(mut self, content_type: &'static str) -> Self {
        if let Some(a) = self.route.answers.last_mut() {
            a.bodies.push(Body {
                content_type,
                schema: None,
            });
        }
        self
    }

    /// It answers `status` with text of `content_type`.
    pub fn answers_text(
        mut self,
        status: StatusCode,
        content_type: &'static str,
        description: &'static str,
    ) -> Self {
        self.route.answers.push(Answer {
            status,
            description,
            bodies: vec![Body {
                content_type,
                schema: None,
            }],
            headers: Vec::new(),
        });
        self
    }

    /// It answers `status` with no body.
    pub fn answers_empty(mut self, status: StatusCode, description: &'static str) -> Self {
        self.route.answers.push(Answer {
            status,
            description,
            bodies: Vec::new(),
            headers: Vec::new(),
        });
        self
    }

    /// The last answer carries the header `name`.
    pub fn with_header(mut self, name: &'static str, description: &'static str) -> Self {
        if let Some(a) = self.route.answers.last_mut() {
            a.headers.push((name, description));
        }
        self
    }

    /// Its answer creates the resource at `path`, whose id is at `pointer` in the answer.
    pub fn creates(mut self, path: &'static str, pointer: &'static str) -> Self {
        self.route.creates = Some(Creates { path, pointer });
        self
    }
}
