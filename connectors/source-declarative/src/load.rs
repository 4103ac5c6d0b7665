//! A manifest from JSON to components: references, parameters, the supported-components check,
//! then the typed model (a shape error names where in the manifest it is).

use serde_json::Value;

use crate::model::{DeclarativeSource, DeclarativeStream, PartitionRouter};
use crate::{ManifestError, check, resolve};

/// The largest manifest accepted, in bytes of JSON.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Load a manifest (already JSON: `sluice connector import-airbyte` converts the YAML).
pub fn manifest(manifest: &Value) -> Result<DeclarativeSource, ManifestError> {
    let size = serde_json::to_vec(manifest).map(|v| v.len()).unwrap_or(0);
    if size > MAX_MANIFEST_BYTES {
        return Err(ManifestError::at(
            &[],
            format!("it is {size} bytes of JSON; at most {MAX_MANIFEST_BYTES} are read"),
        ));
    }
    let resolved = resolve::references(manifest)?;
    let mut propagated = resolve::parameters(resolved)?;
    crate::cache::mark_parents(&mut propagated);
    check::components(&propagated)?;
    let source: DeclarativeSource = serde_path_to_error::deserialize(&propagated).map_err(|e| {
        let path = e.path().to_string();
        ManifestError {
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })?;
    if source.streams.is_empty() {
        return Err(ManifestError::at(&["streams".into()], "it has no streams"));
    }
    for (i, s) in source.streams.iter().enumerate() {
        routers(s, &format!("streams[{i}]"))?;
        if s.name.is_empty() {
            return Err(ManifestError::at(
                &["streams".into(), i.to_string(), "name".into()],
                "a stream needs a name (in `name` or `$parameters.name`)",
            ));
        }
    }
    Ok(source)
}

/// A stream's partition routers (kept as JSON in the model, read when the stream is) decoded
/// now, parents' too, so a bad one is refused before anything is sent.
fn routers(s: &DeclarativeStream, at: &str) -> Result<(), ManifestError> {
    let Some(written) = &s.retriever.partition_router else {
        return Ok(());
    };
    let list: Vec<(String, &Value)> = match written {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(j, r)| (format!("{at}.retriever.partition_router[{j}]"), r))
            .collect(),
        Value::Null => vec![],
        one => vec![(format!("{at}.retriever.partition_router"), one)],
    };
    for (path, r) in list {
        let router: PartitionRouter = serde_path_to_error::deserialize(r).map_err(|e| {
            let inner = e.path().to_string();
            ManifestError {
                path: if inner == "." {
                    path.clone()
                } else {
                    format!("{path}.{inner}")
                },
                message: e.into_inner().to_string(),
            }
        })?;
        if let PartitionRouter::SubstreamPartitionRouter {
            parent_stream_configs,
        } = &router
        {
            for (k, p) in parent_stream_configs.iter().enumerate() {
                // Nesting is bounded by the resolved manifest's.
                routers(
                    &p.stream,
                    &format!("{path}.parent_stream_configs[{k}].stream"),
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_shape_error_names_its_place() {
        let m = json!({
            "streams": [{"name": "a", "retriever": {
                "requester": {"url_base": "https://x"},
                "record_selector": {"extractor": {"field_path": "data"}}
            }}]
        });
        let e = manifest(&m).unwrap_err();
        assert_eq!(
            e.path, "streams[0].retriever.record_selector.extractor.field_path",
            "{e}"
        );
    }

    #[test]
    fn defaults_and_parameters_make_a_runnable_stream() {
        let m = json!({
            "definitions": {"req": {"url_base": "https://api.example.com/v1", "http_method": "GET"}},
            "streams": [{"$parameters": {"name": "users", "path": "/users"}, "retriever": {
                "requester": {"$ref": "#/definitions/req"},
                "record_selector": {"extractor": {"field_path": ["data"]}}
            }}],
            "check": {"stream_names": ["users"]}
        });
        let s = manifest(&m).unwrap();
        assert_eq!(s.streams[0].name, "users");
        assert_eq!(
            s.streams[0].retriever.requester.path.as_deref(),
            Some("/users")
        );
        assert_eq!(s.streams[0].retriever.requester.http_method, "GET");
    }
}
