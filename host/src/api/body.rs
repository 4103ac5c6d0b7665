//! [`JsonBody`]: a request body that must be a JSON object, read into `T`. axum's `Json` lets
//! serde read a struct from an array as well (`[null, null]` as the struct's fields in order),
//! which no schema of the API allows; this reads an object or refuses the body by name.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

/// A JSON object body, read into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let Json(value) = <Json<Value> as FromRequest<S>>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        read(value)
            .map(JsonBody)
            .map_err(IntoResponse::into_response)
    }
}

/// No body (none sent, or an empty one) is `None`; a body is read as for [`FromRequest`]. A
/// body sent without `Content-Type` is refused (415), not ignored: `{"grace_hours": 0}` left
/// unread would keep a rotated-out key working for the default day.
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Response> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default().to_ascii_lowercase());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let json = content_type.as_deref().is_some_and(|t| {
            let essence = t.split(';').next().unwrap_or_default().trim();
            essence == "application/json" || essence.ends_with("+json")
        });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected request with `Content-Type: application/json` (or send no body for \
                 the defaults)",
            )
            .into_response());
        }
        let Json(value) = Json::<Value>::from_bytes(&bytes).map_err(IntoResponse::into_response)?;
        read(value)
            .map(|t| Some(JsonBody(t)))
            .map_err(IntoResponse::into_response)
    }
}

/// `message` with every quoted string taken out: serde names a wrongly typed value by its text
/// (`invalid type: string "ghp_…", expected a map`), and a request's values may be secrets.
pub fn without_values(message: &str) -> String {
    static QUOTED: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r#""(?:[^"\\]|\\.)*""#).expect("valid"));
    QUOTED.replace_all(message, "\"…\"").into_owned()
}

fn read<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    let unprocessable = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    if !value.is_object() {
        return Err(unprocessable(format!(
            "the body must be a JSON object (`{{…}}`), not {}",
            match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            }
        )));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        unprocessable(format!(
            "Failed to deserialize the JSON body into the target type: {}",
            without_values(&e.to_string())
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        #[serde(default)]
        a: Option<u32>,
        #[serde(default)]
        b: Option<String>,
    }

    #[test]
    fn only_an_object_is_read_into_a_struct() {
        assert!(read::<Body>(serde_json::json!({ "a": 1 })).is_ok());
        for not_an_object in [
            serde_json::json!([1, "x"]),
            serde_json::json!([]),
            serde_json::json!(null),
            serde_json::json!("a"),
        ] {
            let e = read::<Body>(not_an_object.clone()).unwrap_err();
            assert_eq!(
                e.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{not_an_object}"
            );
            assert!(e.message.contains("must be a JSON object"), "{}", e.message);
        }
        // Serde alone reads the array as the struct's fields in order.
        assert!(serde_json::from_value::<Body>(serde_json::json!([1, "x"])).is_ok());
        let e = read::<Body>(serde_json::json!({ "a": "x" })).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.contains("a: invalid type"), "{}", e.message);
        // A wrongly typed value is named by its type, never by its text (it may be a secret).
        let e = read::<Body>(serde_json::json!({ "a": "ghp_secret\"value" })).unwrap_err();
        assert!(!e.message.contains("ghp_secret"), "{}", e.message);
        assert!(
            e.message.contains("a: invalid type: string"),
            "{}",
            e.message
        );
    }
}
