//! `source-declarative`: Airbyte's declarative (low-code) manifests, run inside the sandbox.
//!
//! The config is `{"manifest": {…the manifest as JSON…}, "config": {…the manifest's own
//! config…}}`. The manifest is resolved (`$ref`, `$parameters`, default types), every component
//! in it is checked against the ones sluice runs (a `Custom*` component or an unknown one is
//! refused naming its place), and then its streams are read through the host's outbound HTTP:
//! secrets in the config are `{{secret:NAME}}` placeholders the host fills in, so the
//! component never holds them.
//!
//! State per incremental stream is the CDK's `{cursor_field: largest cursor value}`, committed
//! after each date window.

pub mod cache;
pub mod check;
pub mod error;
pub mod interp;
pub mod literal;
pub mod load;
pub mod model;
pub mod pages;
pub mod read;
pub mod records;
pub mod request;
pub mod resolve;
pub mod slices;
pub mod time;

use serde::Deserialize;
use sluice_sdk::{
    Catalog, ConfiguredCatalog, Emitter, Error, Reader, Result, Source, Spec, State, Stream,
    SyncMode, Value, json,
};

pub use error::ManifestError;
use model::{DeclarativeSource, DeclarativeStream, SchemaLoader};
use read::StreamRead;
use request::{HttpRequest, HttpResponse, Transport};

/// The connector's config: a manifest and the config it is run with.
///
/// A component made by `sluice connector import-airbyte` carries its manifest packed with it
/// (`manifest.json` in its bundle): its config is then the manifest's own config, as the
/// manifest's `spec` describes it. Otherwise the config names both.
#[derive(Debug, Clone)]
pub struct Config {
    /// The declarative manifest, as JSON.
    pub manifest: Value,
    /// The manifest's config (as its `spec` describes).
    pub config: Value,
}

/// The config of a component that carries no manifest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unbundled {
    manifest: Value,
    #[serde(default)]
    config: Value,
}

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match bundled_manifest().map_err(serde::de::Error::custom)? {
            Some(manifest) => Ok(Config {
                manifest: manifest.clone(),
                config: Value::deserialize(d)?,
            }),
            None => {
                let u = Unbundled::deserialize(d)?;
                Ok(Config {
                    manifest: u.manifest,
                    config: u.config,
                })
            }
        }
    }
}

/// The name of the packed manifest.
pub const BUNDLED_MANIFEST: &str = "manifest.json";

/// The manifest packed with this component, if it carries one.
pub fn bundled_manifest() -> std::result::Result<Option<&'static Value>, String> {
    static MANIFEST: std::sync::OnceLock<std::result::Result<Option<Value>, String>> =
        std::sync::OnceLock::new();
    MANIFEST
        .get_or_init(|| match sluice_sdk::bundle::read(BUNDLED_MANIFEST) {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("the packed `{BUNDLED_MANIFEST}` is not JSON: {e}")),
        })
        .as_ref()
        .map(Option::as_ref)
        .map_err(Clone::clone)
}

/// The config schema of a manifest's `spec`: its `connection_specification`, with every
/// `airbyte_secret: true` field also marked `"secret": true` (sluice's mark, so the host hides
/// and binds it).
pub fn config_schema(manifest: &Value) -> Value {
    fn mark(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.get("airbyte_secret") == Some(&Value::Bool(true)) {
                    m.insert("secret".into(), Value::Bool(true));
                }
                m.values_mut().for_each(mark);
            }
            Value::Array(a) => a.iter_mut().for_each(mark),
            _ => {}
        }
    }
    let mut schema = manifest
        .pointer("/spec/connection_specification")
        .filter(|s| s.is_object())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object"}));
    mark(&mut schema);
    schema
}

impl Config {
    fn load(&self) -> Result<DeclarativeSource> {
        Ok(load::manifest(&self.manifest)?)
    }
}

/// The sandbox's outbound HTTP.
pub struct HostHttp;

impl Transport for HostHttp {
    fn send(&mut self, req: &HttpRequest) -> Result<HttpResponse> {
        use sluice_sdk::http::{Method, Request};
        let method = match req.method.as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            other => {
                return Err(Error::config(format!(
                    "`http_method` `{other}` is not one sluice sends"
                )));
            }
        };
        let mut r = Request::new(method, req.url.clone());
        for (k, v) in &req.headers {
            r = r.header(k.clone(), v.clone());
        }
        if let Some(b) = &req.body {
            r = r.body(b.clone());
        }
        let resp = r.send()?;
        Ok(HttpResponse {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        })
    }
}

/// The connector.
pub struct DeclarativeSourceConnector;

/// A stream's descriptor from the manifest.
pub fn describe(s: &DeclarativeStream, config: &Value) -> Result<Stream> {
    let schema = match &s.schema_loader {
        Some(SchemaLoader::InlineSchemaLoader { schema }) if schema.is_object() => schema.clone(),
        Some(SchemaLoader::JsonFileSchemaLoader {
            file_path,
            parameters,
        }) if bundled_manifest().is_ok_and(|m| m.is_some()) => {
            schema_file(&s.name, file_path.as_deref(), parameters, config)?
        }
        _ => json!({"type": "object"}),
    };
    let mut d = Stream::new(&s.name, schema);
    if let Some(c) = &s.incremental_sync {
        let ctx = interp::Context::new(config, &c.parameters);
        let field = interp::text(&c.cursor_field, &ctx)?.unwrap_or_default();
        d = d.incremental_on(&field);
    }
    d.primary_key = match &s.primary_key {
        Value::String(k) if !k.is_empty() => vec![vec![k.clone()]],
        Value::Array(keys) => keys
            .iter()
            .filter_map(|k| match k {
                Value::String(k) => Some(vec![k.clone()]),
                Value::Array(path) => Some(
                    path.iter()
                        .filter_map(|p| p.as_str().map(String::from))
                        .collect(),
                ),
                _ => None,
            })
            .collect(),
        _ => vec![],
    };
    Ok(d)
}

/// A `JsonFileSchemaLoader`'s schema, from the files packed with the manifest: its path
/// (`./source_x/schemas/NAME.json` by default) from its last `schemas/` on.
fn schema_file(
    stream: &str,
    file_path: Option<&str>,
    parameters: &model::Parameters,
    config: &Value,
) -> Result<Value> {
    let path = match file_path {
        Some(p) => {
            let ctx = interp::Context::new(config, parameters);
            interp::text(p, &ctx)?.unwrap_or_default()
        }
        None => format!("schemas/{stream}.json"),
    };
    let name = match path.rfind("schemas/") {
        Some(i) => path[i..].to_string(),
        None => format!("schemas/{}", path.rsplit('/').next().unwrap_or_default()),
    };
    let bytes = sluice_sdk::bundle::read(&name).ok_or_else(|| {
        Error::config(format!(
            "stream `{stream}`'s schema file `{path}` was not packed with the manifest (looked for `{name}`)"
        ))
    })?;
    let schema: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::config(format!(
            "stream `{stream}`'s schema `{name}` is not JSON: {e}"
        ))
    })?;
    if !schema.is_object() {
        return Err(Error::config(format!(
            "stream `{stream}`'s schema `{name}` is not a JSON object"
        )));
    }
    Ok(schema)
}

impl Source for DeclarativeSourceConnector {
    type Config = Config;
    type Reader = ManifestReader<cache::Cached<HostHttp>>;

    fn spec() -> Spec {
        if let Ok(Some(manifest)) = bundled_manifest() {
            return Spec::new(config_schema(manifest));
        }
        Spec::new(json!({
            "type": "object",
            "required": ["manifest"],
            "additionalProperties": false,
            "properties": {
                "manifest": {"type": "object", "description": "An Airbyte declarative manifest (`type: DeclarativeSource`), as JSON."},
                "config": {"type": "object", "description": "The manifest's config, as its `spec` describes; secrets as `{{secret:NAME}}` placeholders."}
            }
        }))
    }

    fn check(config: &Config) -> Result<()> {
        check_with(config, &mut HostHttp)
    }

    fn discover(config: &Config) -> Result<Catalog> {
        let source = config.load()?;
        let streams = source
            .streams
            .iter()
            .map(|s| describe(s, &config.config))
            .collect::<Result<_>>()?;
        Ok(Catalog { streams })
    }

    fn read(config: Config, catalog: ConfiguredCatalog, state: State) -> Result<Self::Reader> {
        ManifestReader::new(config, catalog, state, cache::Cached::new(HostHttp))
    }
}

/// `check`: the manifest loads, and the check streams' first page reads.
pub fn check_with(config: &Config, transport: &mut dyn Transport) -> Result<()> {
    let source = config.load()?;
    let names: Vec<String> = match &source.check {
        Some(c) if !c.stream_names.is_empty() => c.stream_names.clone(),
        _ => vec![source.streams[0].name.clone()],
    };
    for name in names {
        let s = source
            .streams
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                Error::config(format!(
                    "`check` names stream `{name}`, which the manifest does not have"
                ))
            })?;
        let mut read = StreamRead::new(s, &config.config, Value::Null, false, transport)?;
        let mut done = false;
        read.next_page(transport, &mut done)?;
    }
    Ok(())
}

/// The read of a configured catalog, stream after stream.
pub struct ManifestReader<T: Transport> {
    transport: T,
    pending: Vec<(StreamRead, bool)>,
}

impl<T: Transport> ManifestReader<T> {
    /// Prepare reading `catalog` from `state` through `transport`.
    pub fn new(
        config: Config,
        catalog: ConfiguredCatalog,
        state: State,
        mut transport: T,
    ) -> Result<Self> {
        let source = config.load()?;
        let mut pending = Vec::new();
        for configured in &catalog.streams {
            let name = &configured.stream.name;
            let s = source
                .streams
                .iter()
                .find(|s| &s.name == name)
                .ok_or_else(|| Error::config(format!("stream `{name}` is not in the manifest")))?;
            let incremental = configured.sync_mode == SyncMode::Incremental;
            if incremental && s.incremental_sync.is_none() {
                return Err(Error::config(format!(
                    "stream `{name}` is read incrementally but the manifest gives it no `incremental_sync`"
                )));
            }
            let saved = state.get(name).cloned().unwrap_or(Value::Null);
            let read = StreamRead::new(s, &config.config, saved, incremental, &mut transport)?;
            pending.push((read, incremental));
        }
        pending.reverse();
        Ok(ManifestReader { transport, pending })
    }
}

impl<T: Transport> Reader for ManifestReader<T> {
    fn read(&mut self, out: &mut Emitter) -> Result<bool> {
        while out.wants_more() {
            let Some((s, incremental)) = self.pending.last_mut() else {
                return Ok(false);
            };
            let mut window_done = false;
            match s.next_page(&mut self.transport, &mut window_done)? {
                Some(page) => {
                    for mut r in page.records {
                        records::drop_top_level_nulls(&mut r);
                        out.record(&s.stream.name, &r)?;
                    }
                    if window_done
                        && *incremental
                        && let Some(state) = s.checkpoint()
                    {
                        out.checkpoint(&s.stream.name, &state)?;
                    }
                }
                None => {
                    if *incremental && let Some(state) = s.checkpoint() {
                        out.checkpoint(&s.stream.name, &state)?;
                    }
                    self.pending.pop();
                }
            }
        }
        Ok(!self.pending.is_empty())
    }
}

sluice_sdk::export_source!(DeclarativeSourceConnector);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_becomes_the_config_schema_with_secrets_marked() {
        let manifest = json!({"spec": {"type": "Spec", "connection_specification": {
            "type": "object",
            "required": ["api_key"],
            "properties": {
                "api_key": {"type": "string", "airbyte_secret": true},
                "nested": {"oneOf": [{"properties": {"password": {"type": "string", "airbyte_secret": true}}}]},
                "site": {"type": "string", "airbyte_secret": false}
            }
        }}});
        let s = config_schema(&manifest);
        assert_eq!(s["properties"]["api_key"]["secret"], true);
        assert_eq!(
            s["properties"]["nested"]["oneOf"][0]["properties"]["password"]["secret"],
            true
        );
        assert!(s["properties"]["site"].get("secret").is_none());
        assert_eq!(s["required"], json!(["api_key"]));
        assert_eq!(config_schema(&json!({})), json!({"type": "object"}));
    }

    #[test]
    fn without_a_packed_manifest_the_config_names_both() {
        let c: Config =
            serde_json::from_value(json!({"manifest": {"a": 1}, "config": {"b": 2}})).unwrap();
        assert_eq!(c.manifest, json!({"a": 1}));
        assert_eq!(c.config, json!({"b": 2}));
        let e = serde_json::from_value::<Config>(json!({"manifest": {}, "extra": 1})).unwrap_err();
        assert!(e.to_string().contains("extra"), "{e}");
    }
}
