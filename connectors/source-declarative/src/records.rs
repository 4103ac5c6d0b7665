//! From a response to records: the extractor's path, the filter, the transformations.

use serde_json::{Map, Value};
use sluice_sdk::{Error, Result};

use crate::interp::{self, Context};
use crate::model::{AddedField, RecordSelector, Transformation};

/// The most records one response may hold.
pub const MAX_RECORDS_PER_PAGE: usize = 1_000_000;

/// The records at the selector's path in `body` (`*` matches every key or item).
pub fn extract(selector: &RecordSelector, body: &Value, ctx: &Context) -> Result<Vec<Value>> {
    let ex = &selector.extractor;
    let ctx = ctx.with("parameters", &Value::Object(ex.parameters.clone()));
    let path: Vec<String> = ex
        .field_path
        .iter()
        .map(|p| interp::text(p, &ctx).map(Option::unwrap_or_default))
        .collect::<std::result::Result<_, _>>()?;
    let found = if path.is_empty() {
        body.clone()
    } else if path.iter().any(|p| p.contains('*')) {
        let mut out = Vec::new();
        glob(body, &path, &mut out);
        Value::Array(out)
    } else {
        let mut node = body;
        let mut missing = false;
        for p in &path {
            match step(node, p) {
                Some(n) => node = n,
                None => {
                    missing = true;
                    break;
                }
            }
        }
        if missing {
            Value::Array(vec![])
        } else {
            node.clone()
        }
    };
    let records = match found {
        Value::Array(items) => items,
        Value::Null => vec![],
        v if crate::resolve::is_falsy(&v) => vec![],
        v => vec![v],
    };
    if records.len() > MAX_RECORDS_PER_PAGE {
        return Err(Error::fatal(format!(
            "a response holds {} records; at most {MAX_RECORDS_PER_PAGE} are read from one",
            records.len()
        )));
    }
    Ok(records)
}

fn step<'a>(node: &'a Value, key: &str) -> Option<&'a Value> {
    match node {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    }
}

/// dpath's glob: every value matching `path`, `*` for any one key or index.
fn glob(node: &Value, path: &[String], out: &mut Vec<Value>) {
    let Some((head, rest)) = path.split_first() else {
        out.push(node.clone());
        return;
    };
    if head == "*" {
        match node {
            Value::Object(m) => m.values().for_each(|v| glob(v, rest, out)),
            Value::Array(a) => a.iter().for_each(|v| glob(v, rest, out)),
            _ => {}
        }
    } else if let Some(n) = step(node, head) {
        glob(n, rest, out);
    }
}

/// Whether `record` passes the selector's filter.
pub fn keep(selector: &RecordSelector, record: &Value, ctx: &Context) -> Result<bool> {
    let Some(f) = &selector.record_filter else {
        return Ok(true);
    };
    if f.condition.is_empty() {
        return Ok(true);
    }
    let ctx = ctx
        .with("parameters", &Value::Object(f.parameters.clone()))
        .with("record", record);
    Ok(interp::boolean(&f.condition, &ctx)?)
}

/// Drop a record's top-level fields that are null, as Airbyte's message serializer does
/// (`omit_none`): a destination fed by the CDK never sees them, so neither does sluice's.
/// Nulls deeper in the record stay, as they do there.
pub fn drop_top_level_nulls(record: &mut Value) {
    if let Value::Object(m) = record {
        m.retain(|_, v| !v.is_null());
    }
}

/// Apply the stream's transformations to `record`, in order.
pub fn transform(ts: &[Transformation], record: &mut Value, ctx: &Context) -> Result<()> {
    for t in ts {
        match t {
            Transformation::AddFields { fields, parameters } => {
                let ctx = ctx.with("parameters", &Value::Object(parameters.clone()));
                for f in fields {
                    add(f, record, &ctx)?;
                }
            }
            Transformation::RemoveFields {
                field_pointers,
                condition,
                parameters,
            } => {
                let ctx = ctx.with("parameters", &Value::Object(parameters.clone()));
                for p in field_pointers {
                    remove(record, p, condition.as_deref(), &ctx)?;
                }
            }
        }
    }
    Ok(())
}

fn add(field: &AddedField, record: &mut Value, ctx: &Context) -> Result<()> {
    let ctx = ctx.with("record", record);
    let value = match &field.value {
        Value::String(t) => match interp::eval(t, &ctx)? {
            Some(v) => v,
            None => Value::Null,
        },
        other => other.clone(),
    };
    let mut node = record;
    let Some((last, parents)) = field.path.split_last() else {
        return Err(Error::config("an AddedFieldDefinition needs a `path`"));
    };
    for p in parents {
        let Value::Object(m) = node else {
            return Ok(());
        };
        node = m
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Value::Object(m) = node {
        m.insert(last.clone(), value);
    }
    Ok(())
}

fn remove(
    record: &mut Value,
    path: &[String],
    condition: Option<&str>,
    ctx: &Context,
) -> Result<()> {
    let Some((head, rest)) = path.split_first() else {
        return Ok(());
    };
    let Value::Object(m) = record else {
        return Ok(());
    };
    let keys: Vec<String> = if head == "*" {
        m.keys().cloned().collect()
    } else {
        vec![head.clone()]
    };
    for k in keys {
        if rest.is_empty() {
            let drop = match (condition, m.get(&k)) {
                (None, _) => true,
                (Some(c), Some(v)) => interp::boolean(c, &ctx.with("property", v))?,
                (Some(_), None) => false,
            };
            if drop {
                m.remove(&k);
            }
        } else if let Some(child) = m.get_mut(&k) {
            remove(child, rest, condition, ctx)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_level_nulls_are_dropped_and_deeper_ones_kept() {
        let mut r = json!({"a": null, "b": {"c": null}, "d": [null], "e": 0});
        drop_top_level_nulls(&mut r);
        assert_eq!(r, json!({"b": {"c": null}, "d": [null], "e": 0}));
    }

    fn selector(v: Value) -> RecordSelector {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn paths_wildcards_and_filters() {
        let ctx = Context::new(&json!({"min": 2}), &Map::new());
        let body = json!({"data": {"items": [{"id": 1}, {"id": 2}, {"id": 3}]}, "groups": {"a": {"x": {"id": 4}}, "b": {"x": {"id": 5}}}});
        let s = selector(
            json!({"extractor": {"field_path": ["data", "items"]}, "record_filter": {"condition": "{{ record.id >= config.min }}"}}),
        );
        let recs = extract(&s, &body, &ctx).unwrap();
        assert_eq!(recs.len(), 3);
        let kept: Vec<_> = recs.iter().filter(|r| keep(&s, r, &ctx).unwrap()).collect();
        assert_eq!(kept, vec![&json!({"id": 2}), &json!({"id": 3})]);
        let s = selector(json!({"extractor": {"field_path": ["groups", "*", "x"]}}));
        assert_eq!(
            extract(&s, &body, &ctx).unwrap(),
            vec![json!({"id": 4}), json!({"id": 5})]
        );
        let s = selector(json!({"extractor": {"field_path": ["nope"]}}));
        assert!(extract(&s, &body, &ctx).unwrap().is_empty());
        let s = selector(json!({"extractor": {"field_path": []}}));
        assert_eq!(
            extract(&s, &json!({"one": 1}), &ctx).unwrap(),
            vec![json!({"one": 1})]
        );
    }

    #[test]
    fn fields_are_added_and_removed() {
        let mut ctx = Context::new(&json!({}), &Map::new());
        ctx.set("stream_slice", &json!({"parent_id": 9}));
        let ts: Vec<Transformation> = serde_json::from_value(json!([
            {"type": "AddFields", "fields": [
                {"path": ["parent_id"], "value": "{{ stream_slice.parent_id }}"},
                {"path": ["meta", "copy"], "value": "{{ record.name }}"}
            ]},
            {"type": "RemoveFields", "field_pointers": [["secret"], ["nested", "*", "drop"]]},
            {"type": "RemoveFields", "field_pointers": [["*"]], "condition": "{{ property is none }}"}
        ])).unwrap();
        let mut r = json!({"name": "n", "secret": "s", "nested": {"a": {"drop": 1, "keep": 2}}, "gone": null});
        transform(&ts, &mut r, &ctx).unwrap();
        assert_eq!(
            r,
            json!({"name": "n", "nested": {"a": {"keep": 2}}, "parent_id": 9, "meta": {"copy": "n"}})
        );
    }
}
