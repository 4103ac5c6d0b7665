//! From the manifest as written to the manifest as the components see it, the way Airbyte's
//! CDK does it before it builds anything: `$ref`s are replaced by what they point at, every
//! component gets its default `type`, and `$parameters` flow down to the components below.
//!
//! Both steps follow the CDK's `ManifestReferenceResolver` and `ManifestComponentTransformer`:
//! a string starting with `#/` anywhere is a reference; a map with a `$ref` key is the value it
//! points at with the map's own keys on top; parameters are copied into each component's fields
//! where the field is missing (or empty), and a component's own `$parameters` are overridden by
//! its parent's.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::ManifestError;

/// Deepest nesting of references followed before the manifest is refused.
const MAX_REF_DEPTH: usize = 64;
/// Most values the resolved manifest may hold (references can multiply a small manifest).
pub const MAX_RESOLVED_NODES: usize = 500_000;
/// Most bytes of text the resolved manifest may hold, parameters copied down included: a few
/// values can each be a long string.
pub const MAX_RESOLVED_BYTES: usize = 32 << 20;
/// Deepest nesting of maps and lists in the resolved manifest (every later step walks it
/// recursively, on the sandbox's stack).
pub const MAX_NESTING: usize = 100;

/// What resolving has spent so far.
#[derive(Default)]
struct Budget {
    nodes: usize,
    bytes: usize,
}

impl Budget {
    fn spend(&mut self, nodes: usize, bytes: usize, path: &[String]) -> Result<(), ManifestError> {
        self.nodes += nodes;
        self.bytes += bytes;
        if self.nodes > MAX_RESOLVED_NODES {
            return Err(ManifestError::at(
                path,
                format!("its references expand to more than {MAX_RESOLVED_NODES} values"),
            ));
        }
        if self.bytes > MAX_RESOLVED_BYTES {
            return Err(ManifestError::at(
                path,
                format!(
                    "its references and parameters expand to more than {} MiB",
                    MAX_RESOLVED_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }
}

/// Values and bytes of text in `v` (its nesting is already bounded).
fn weight(v: &Value) -> (usize, usize) {
    match v {
        Value::String(s) => (1, s.len()),
        Value::Array(a) => a.iter().fold((1, 0), |(n, b), v| {
            let (vn, vb) = weight(v);
            (n + vn, b + vb)
        }),
        Value::Object(m) => m.iter().fold((1, 0), |(n, b), (k, v)| {
            let (vn, vb) = weight(v);
            (n + vn, b + vb + k.len())
        }),
        _ => (1, 8),
    }
}

/// Resolve every reference in `manifest`.
pub fn references(manifest: &Value) -> Result<Value, ManifestError> {
    let mut visiting = BTreeSet::new();
    let mut budget = Budget::default();
    evaluate(
        manifest,
        manifest,
        &mut visiting,
        &mut Vec::new(),
        &mut budget,
    )
}

fn evaluate(
    node: &Value,
    root: &Value,
    visiting: &mut BTreeSet<String>,
    path: &mut Vec<String>,
    nodes: &mut Budget,
) -> Result<Value, ManifestError> {
    let text = match node {
        Value::String(s) => s.len(),
        Value::Object(m) => m.keys().map(String::len).sum(),
        _ => 8,
    };
    nodes.spend(1, text, path)?;
    if path.len() > MAX_NESTING {
        return Err(ManifestError::at(
            path,
            format!("it nests deeper than {MAX_NESTING} levels (with its references followed)"),
        ));
    }
    match node {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if k == "$ref" {
                    continue;
                }
                path.push(k.clone());
                let value = evaluate(v, root, visiting, path, nodes)?;
                path.pop();
                out.insert(k.clone(), value);
            }
            match map.get("$ref") {
                None => Ok(Value::Object(out)),
                Some(r) => {
                    path.push("$ref".into());
                    let referenced = evaluate(r, root, visiting, path, nodes)?;
                    path.pop();
                    match referenced {
                        // The component's own keys win over the referenced ones.
                        Value::Object(mut base) => {
                            for (k, v) in out {
                                base.insert(k, v);
                            }
                            Ok(Value::Object(base))
                        }
                        other => Ok(other),
                    }
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                path.push(i.to_string());
                let r = evaluate(v, root, visiting, path, nodes);
                path.pop();
                r
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::String(s) if s.starts_with("#/") => {
            if visiting.contains(s) {
                return Err(ManifestError::at(path, format!("`{s}` refers to itself")));
            }
            if visiting.len() >= MAX_REF_DEPTH {
                return Err(ManifestError::at(
                    path,
                    format!("references nest deeper than {MAX_REF_DEPTH}"),
                ));
            }
            let target = lookup(root, &s[2..])
                .ok_or_else(|| ManifestError::at(path, format!("`{s}` points at nothing")))?;
            visiting.insert(s.clone());
            let r = evaluate(target, root, visiting, path, nodes);
            visiting.remove(s);
            r
        }
        other => Ok(other.clone()),
    }
}

/// The value at `a/b/0/c` under `root`.
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').try_fold(root, |node, part| match node {
        Value::Object(m) => m.get(part),
        Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// The `type` a component gets when its parent's field (`Parent.field`) says what it must be.
fn default_type(parent_field: &str) -> Option<&'static str> {
    Some(match parent_field {
        "AddFields.fields" => "AddedFieldDefinition",
        "CompositeErrorHandler.error_handlers" => "DefaultErrorHandler",
        "CursorPagination.decoder" => "JsonDecoder",
        "DatetimeBasedCursor.end_datetime" => "MinMaxDatetime",
        "DatetimeBasedCursor.end_time_option" => "RequestOption",
        "DatetimeBasedCursor.start_datetime" => "MinMaxDatetime",
        "DatetimeBasedCursor.start_time_option" => "RequestOption",
        "DeclarativeSource.check" => "CheckStream",
        "DeclarativeSource.spec" => "Spec",
        "DeclarativeSource.streams" => "DeclarativeStream",
        "DeclarativeStream.retriever" => "SimpleRetriever",
        "DeclarativeStream.schema_loader" => "JsonFileSchemaLoader",
        "DefaultErrorHandler.response_filters" => "HttpResponseFilter",
        "DefaultPaginator.decoder" => "JsonDecoder",
        "DefaultPaginator.page_size_option" => "RequestOption",
        "DpathExtractor.decoder" => "JsonDecoder",
        "HttpRequester.error_handler" => "DefaultErrorHandler",
        "ListPartitionRouter.request_option" => "RequestOption",
        "ParentStreamConfig.request_option" => "RequestOption",
        "ParentStreamConfig.stream" => "DeclarativeStream",
        "RecordSelector.extractor" => "DpathExtractor",
        "RecordSelector.record_filter" => "RecordFilter",
        "SimpleRetriever.paginator" => "NoPagination",
        "SimpleRetriever.record_selector" => "RecordSelector",
        "SimpleRetriever.requester" => "HttpRequester",
        "SubstreamPartitionRouter.parent_stream_configs" => "ParentStreamConfig",
        "SessionTokenAuthenticator.login_requester" => "HttpRequester",
        _ => return None,
    })
}

/// A map that is a JSON schema, not a component: left exactly as it is.
fn is_json_schema(map: &Map<String, Value>) -> bool {
    match map.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(a)) => a.iter().any(|t| t == "object"),
        _ => false,
    }
}

/// Give every component its default type and push `$parameters` down the tree (each copy
/// counted against [`MAX_RESOLVED_BYTES`]: one long parameter over many components multiplies).
pub fn parameters(manifest: Value) -> Result<Value, ManifestError> {
    let mut root = manifest;
    if let Value::Object(m) = &mut root {
        m.entry("type")
            .or_insert_with(|| Value::String("DeclarativeSource".into()));
    }
    let (nodes, bytes) = weight(&root);
    let mut budget = Budget::default();
    budget.spend(nodes, bytes, &[])?;
    propagate("", root, &Map::new(), &mut budget, &mut Vec::new())
}

fn propagate(
    parent_field: &str,
    node: Value,
    parent_params: &Map<String, Value>,
    budget: &mut Budget,
    path: &mut Vec<String>,
) -> Result<Value, ManifestError> {
    let Value::Object(mut component) = node else {
        return Ok(node);
    };
    if !component.contains_key("type")
        && let Some(t) = default_type(parent_field)
    {
        component.insert("type".into(), Value::String(t.into()));
    }
    if !component.contains_key("type") || is_json_schema(&component) {
        return Ok(Value::Object(component));
    }
    let kind = component
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // The component's own parameters override its parent's (the CDK's rule for the streams
    // of a manifest: `{**parent, **own}`), so a parent stream nested in a substream keeps its
    // own `name` and `path`.
    let mut current = parent_params.clone();
    if let Some(Value::Object(own)) = component.remove("$parameters") {
        current.extend(own);
    }
    for (k, v) in &current {
        let empty = component.get(k).is_none_or(is_falsy);
        if empty {
            let (n, b) = weight(v);
            budget.spend(n, b, path)?;
            component.insert(k.clone(), v.clone());
        }
    }
    let keys: Vec<String> = component.keys().cloned().collect();
    for key in keys {
        let is_container = matches!(
            component.get(&key),
            Some(Value::Object(_) | Value::Array(_))
        );
        if !is_container {
            continue;
        }
        // A parameter named like the field is not passed into it (it would loop).
        let excluded = current.remove(&key);
        let child_field = format!("{kind}.{key}");
        let value = component.remove(&key).unwrap_or(Value::Null);
        path.push(key.clone());
        let value = match value {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        if item.is_object() {
                            path.push(i.to_string());
                            let r = propagate(&child_field, item, &current, budget, path);
                            path.pop();
                            r
                        } else {
                            Ok(item)
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => propagate(&child_field, other, &current, budget, path)?,
        };
        path.pop();
        component.insert(key.clone(), value);
        if let Some(v) = excluded {
            current.insert(key, v);
        }
    }
    if !current.is_empty() {
        let (n, b) = weight(&Value::Object(current.clone()));
        budget.spend(n, b, path)?;
        component.insert("$parameters".into(), Value::Object(current));
    }
    Ok(Value::Object(component))
}

/// Python's truthiness of a JSON value.
pub fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_replaced_and_own_keys_win() {
        let m = json!({
            "definitions": {
                "base": {"type": "HttpRequester", "url_base": "https://api.example.com", "http_method": "GET"},
                "path": "/users"
            },
            "streams": [{"retriever": {"requester": {"$ref": "#/definitions/base", "http_method": "POST", "path": "#/definitions/path"}}}]
        });
        let r = references(&m).unwrap();
        assert_eq!(
            r["streams"][0]["retriever"]["requester"],
            json!({"type": "HttpRequester", "url_base": "https://api.example.com", "http_method": "POST", "path": "/users"})
        );
    }

    #[test]
    fn bad_references_name_where_they_are() {
        let loop_ = json!({"definitions": {"a": "#/definitions/b", "b": "#/definitions/a"}, "x": "#/definitions/a"});
        let e = references(&loop_).unwrap_err().to_string();
        assert!(e.contains("refers to itself"), "{e}");
        let missing = json!({"streams": [{"$ref": "#/definitions/nope"}]});
        let e = references(&missing).unwrap_err().to_string();
        assert!(
            e.contains("streams[0].$ref") && e.contains("points at nothing"),
            "{e}"
        );
    }

    #[test]
    fn references_that_multiply_are_bounded() {
        let mut defs = serde_json::Map::new();
        defs.insert("d0".into(), json!("x"));
        for i in 1..40 {
            let prev = format!("#/definitions/d{}", i - 1);
            defs.insert(format!("d{i}"), json!([prev.clone(), prev]));
        }
        let m = json!({"definitions": defs, "streams": "#/definitions/d39"});
        let e = references(&m).unwrap_err().to_string();
        assert!(e.contains("expand to more than"), "{e}");
    }

    #[test]
    fn parameters_flow_down_and_fill_missing_fields_only() {
        let m = json!({
            "streams": [{
                "$parameters": {"name": "users", "path": "/users", "primary_key": "id"},
                "retriever": {
                    "requester": {"url_base": "https://x", "path": "/own", "$parameters": {"path": "/mine", "extra": 1}},
                    "record_selector": {"extractor": {"field_path": ["data"]}}
                },
                "schema_loader": {"type": "InlineSchemaLoader", "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}
            }]
        });
        let p = parameters(m).unwrap();
        let s = &p["streams"][0];
        assert_eq!(s["type"], "DeclarativeStream");
        assert_eq!(s["name"], "users");
        let req = &s["retriever"]["requester"];
        assert_eq!(req["type"], "HttpRequester");
        assert_eq!(req["path"], "/own", "a field the component sets wins");
        // The component's own parameters override its parent's, as in the CDK.
        assert_eq!(req["$parameters"]["path"], "/mine");
        assert_eq!(req["$parameters"]["name"], "users");
        assert_eq!(req["$parameters"]["extra"], 1);
        assert_eq!(
            s["retriever"]["record_selector"]["extractor"]["type"],
            "DpathExtractor"
        );
        assert_eq!(
            s["retriever"]["record_selector"]["extractor"]["name"],
            "users"
        );
        // A JSON schema is not a component: nothing is added to it.
        assert!(s["schema_loader"]["schema"].get("name").is_none());
        assert_eq!(
            s["retriever"]["paginator"],
            Value::Null,
            "no paginator invented"
        );
    }
}
