//! Which components sluice runs, and the refusal of any other one before anything runs.
//!
//! The whole resolved manifest is walked (except JSON schemas and the unused `definitions`):
//! every map with a component `type` must name one of [`SUPPORTED`]. A `Custom*` component is
//! Python code from the connector's `components.py`; it cannot run in the sandbox.

use serde_json::Value;

use crate::ManifestError;

/// The component types sluice interprets.
pub const SUPPORTED: &[&str] = &[
    "AddFields",
    "AddedFieldDefinition",
    "ApiKeyAuthenticator",
    "BasicHttpAuthenticator",
    "BearerAuthenticator",
    "CheckStream",
    "CompositeErrorHandler",
    "ConstantBackoffStrategy",
    "CursorPagination",
    "DatetimeBasedCursor",
    "DeclarativeSource",
    "DeclarativeStream",
    "DefaultErrorHandler",
    "DefaultPaginator",
    "DpathExtractor",
    "ExponentialBackoffStrategy",
    "HttpRequester",
    "HttpResponseFilter",
    "InlineSchemaLoader",
    "JsonDecoder",
    "JsonFileSchemaLoader",
    "ListPartitionRouter",
    "MinMaxDatetime",
    "NoAuth",
    "NoPagination",
    "OffsetIncrement",
    "PageIncrement",
    "ParentStreamConfig",
    "RecordFilter",
    "RecordSelector",
    "RemoveFields",
    "RequestOption",
    "RequestPath",
    "SimpleRetriever",
    "Spec",
    "SubstreamPartitionRouter",
    "WaitTimeFromHeader",
    "WaitUntilTimeFromHeader",
];

/// Top-level keys that are not built (references into them were already resolved).
const NOT_BUILT: &[&str] = &["definitions", "schemas", "metadata", "dynamic_streams"];

/// Refuse the manifest if any component in it is one sluice does not run.
pub fn components(manifest: &Value) -> Result<(), ManifestError> {
    let Value::Object(root) = manifest else {
        return Err(ManifestError::at(&[], "it is not a map of components"));
    };
    match root.get("type").and_then(Value::as_str) {
        Some("DeclarativeSource") => {}
        Some(other) => {
            return Err(ManifestError::at(
                &["type".to_string()],
                format!("the root must be a `DeclarativeSource`, not `{other}`"),
            ));
        }
        None => {}
    }
    if !root.get("streams").is_some_and(Value::is_array) {
        return Err(ManifestError::at(
            &["streams".to_string()],
            "a declarative source needs a list of `streams` (dynamic streams are not supported)",
        ));
    }
    let mut path = Vec::new();
    for (k, v) in root {
        if NOT_BUILT.contains(&k.as_str()) {
            continue;
        }
        path.push(k.clone());
        walk(v, &mut path)?;
        path.pop();
    }
    Ok(())
}

fn walk(node: &Value, path: &mut Vec<String>) -> Result<(), ManifestError> {
    match node {
        Value::Object(map) => {
            // Schemas are skipped by their place only (below): a component's `type` decides
            // nothing but which component it is, so `type: object` hides nothing under it.
            let kind = match map.get("type") {
                None => None,
                Some(Value::String(kind)) => {
                    refuse_unsupported(kind, map, path)?;
                    Some(kind.as_str())
                }
                Some(other) => {
                    return Err(ManifestError::at(
                        path,
                        format!("`type` must name a component, not `{other}`"),
                    ));
                }
            };
            for (k, v) in map {
                // Schemas and config specifications are JSON schemas, not components.
                let schema = matches!(
                    (kind, k.as_str()),
                    (Some("InlineSchemaLoader"), "schema")
                        | (Some("Spec"), "connection_specification" | "advanced_auth")
                ) || k == "$parameters";
                if schema {
                    continue;
                }
                path.push(k.clone());
                walk(v, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(v, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn refuse_unsupported(
    kind: &str,
    map: &serde_json::Map<String, Value>,
    path: &[String],
) -> Result<(), ManifestError> {
    if SUPPORTED.contains(&kind) {
        return Ok(());
    }
    if kind.starts_with("Custom") {
        let class = map
            .get("class_name")
            .and_then(Value::as_str)
            .map(|c| format!(" (`{c}`)"))
            .unwrap_or_default();
        return Err(ManifestError::at(
            path,
            format!(
                "`{kind}`{class} is Python code from the connector's components.py, which cannot \
                 run in the sandbox; only manifests built from declarative components can"
            ),
        ));
    }
    Err(ManifestError::at(
        path,
        format!(
            "sluice does not run the component `{kind}`; it runs: {}",
            SUPPORTED.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(paginator: Value) -> Value {
        json!({
            "type": "DeclarativeSource",
            "definitions": {"unused": {"type": "CustomRequester"}},
            "streams": [{
                "type": "DeclarativeStream",
                "retriever": {
                    "type": "SimpleRetriever",
                    "requester": {"type": "HttpRequester", "url_base": "https://x"},
                    "record_selector": {"type": "RecordSelector", "extractor": {"type": "DpathExtractor", "field_path": []}},
                    "paginator": paginator
                },
                "schema_loader": {"type": "InlineSchemaLoader", "schema": {"type": "object", "properties": {"t": {"type": "Weird"}}}}
            }]
        })
    }

    #[test]
    fn supported_components_pass_and_schemas_and_definitions_are_not_components() {
        components(&source(json!({"type": "NoPagination"}))).unwrap();
    }

    #[test]
    fn a_schema_type_or_a_type_that_is_not_text_hides_nothing() {
        // Found by an outside attack: `type: object` on a stream made the walk skip it whole.
        let mut m = source(json!({"type": "NoPagination"}));
        m["streams"][0]["type"] = json!("object");
        m["streams"][0]["retriever"]["requester"]["type"] = json!("CustomRequester");
        let e = components(&m).unwrap_err();
        assert_eq!(e.path, "streams[0]");
        assert!(e.message.contains("`object`"), "{e}");
        for bad in [
            json!(["CustomRetriever"]),
            json!({"CustomRequester": 1}),
            json!(7),
        ] {
            let mut m = source(json!({"type": "NoPagination"}));
            m["streams"][0]["retriever"]["type"] = bad.clone();
            let e = components(&m).unwrap_err();
            assert_eq!(e.path, "streams[0].retriever", "{bad}");
            assert!(e.message.contains("must name a component"), "{e}");
        }
    }

    #[test]
    fn custom_and_unknown_components_are_refused_by_name_and_path() {
        let e = components(&source(json!({
            "type": "DefaultPaginator",
            "pagination_strategy": {"type": "CustomPaginationStrategy", "class_name": "source_x.components.Pager"}
        })))
        .unwrap_err();
        assert_eq!(e.path, "streams[0].retriever.paginator.pagination_strategy");
        assert!(e.message.contains("CustomPaginationStrategy"), "{e}");
        assert!(e.message.contains("source_x.components.Pager"), "{e}");
        assert!(e.message.contains("components.py"), "{e}");
        let e = components(&source(
            json!({"type": "StopConditionPaginationStrategyDecorator"}),
        ))
        .unwrap_err();
        assert!(
            e.message
                .contains("does not run the component `StopConditionPaginationStrategyDecorator`"),
            "{e}"
        );
    }
}
