//! Importing Airbyte declarative sources (`sluice connector import-airbyte`): a `manifest.yaml`,
//! or an Airbyte source wheel (`airbyte-source-*` on PyPI) that ships one, becomes the
//! `source-declarative` component with the manifest and its stream schemas packed into it
//! ([`crate::capability::bundle`]), under a manifest of its own: the name `airbyte-source-NAME`
//! and the network its `url_base` values can reach ([`network`]).
//!
//! Nothing here runs the manifest: the component checks it (and refuses `Custom*` components)
//! when the import calls its `discover`, in the sandbox.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::capability::allow::AllowRule;
use crate::capability::bundle::{self, Bundle, BundleError};
use crate::capability::manifest::{Manifest, ManifestError};
use crate::capability::request::Requests;
use crate::protocol::ConnectorKind;

/// The largest manifest (YAML or JSON text) an import reads.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The largest wheel an import opens.
pub const MAX_WHEEL: u64 = 64 << 20;
/// The most entries a wheel may list.
pub const MAX_WHEEL_ENTRIES: usize = 20_000;
/// The name of the packed manifest, as `source-declarative` reads it.
pub const PACKED_MANIFEST: &str = "manifest.json";
/// The component an import packs into.
pub const INTERPRETER: &str = "source-declarative";

/// Why a manifest cannot be imported. Names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read.
    #[error("cannot read {what}: {source}")]
    Io {
        /// The file.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a declarative manifest.
    #[error("{what}: {reason}")]
    NotAManifest {
        /// The file.
        what: String,
        /// Why.
        reason: String,
    },
    /// The wheel is unusable.
    #[error("{what} is not a usable Airbyte source wheel: {reason}")]
    Wheel {
        /// The file.
        what: String,
        /// Why.
        reason: String,
    },
    /// A `url_base` from which no network rule can be derived.
    #[error(
        "the manifest's url `{url}` names no reachable host ({reason}); fix it in the manifest"
    )]
    Url {
        /// The url.
        url: String,
        /// Why.
        reason: String,
    },
    /// The packed files pass a limit.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The derived manifest is invalid (a bad name or version).
    #[error("the package manifest would be invalid: {0}")]
    Manifest(#[from] ManifestError),
}

/// A manifest read for import, with what came with it.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The manifest, as JSON.
    pub manifest: Value,
    /// Stream schema files shipped beside it, as `schemas/…` names.
    pub schemas: BTreeMap<String, Vec<u8>>,
    /// A name for the package (`airbyte-source-NAME`), from the wheel or the file's place.
    pub name: String,
    /// The wheel's version, if it came from one.
    pub version: Option<String>,
    /// Whether a `components.py` (Python code) came with it. The manifest is refused only if
    /// it uses a component from there (`Custom*`).
    pub python_components: bool,
}

/// Read a `manifest.yaml` (or `.json`), or a wheel (`.whl`) that ships one.
pub fn read(path: &Path) -> Result<Imported, ImportError> {
    let what = path.display().to_string();
    let io = |source| ImportError::Io {
        what: what.clone(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if path.extension().is_some_and(|e| e == "whl") {
        if len > MAX_WHEEL {
            return Err(ImportError::Wheel {
                what,
                reason: format!("it is over {} MiB", MAX_WHEEL >> 20),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        return from_wheel(&bytes, &what);
    }
    if len > MAX_MANIFEST {
        return Err(not_a_manifest(
            &what,
            format!("it is over {} MiB", MAX_MANIFEST >> 20),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let manifest = from_yaml(&text, &what)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let base = if stem == "manifest" {
        dir.and_then(|d| std::fs::canonicalize(d).ok())
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default()
    } else {
        stem.to_string()
    };
    let dir = dir.unwrap_or(Path::new("."));
    let mut schemas = BTreeMap::new();
    read_schema_dir(&dir.join("schemas"), "schemas", &mut schemas, 0)?;
    let python_components = dir.join("components.py").exists();
    Ok(Imported {
        manifest,
        schemas,
        name: package_name(&base),
        version: None,
        python_components,
    })
}

fn not_a_manifest(what: &str, reason: String) -> ImportError {
    ImportError::NotAManifest {
        what: what.to_string(),
        reason,
    }
}

/// Schema files under `dir` (JSON files, two levels at most, within the bundle's limits).
fn read_schema_dir(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, Vec<u8>>,
    depth: usize,
) -> Result<(), ImportError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        let inner = format!("{prefix}/{name}");
        if kind.is_dir() && depth < 2 {
            read_schema_dir(&path, &inner, out, depth + 1)?;
        } else if kind.is_file() && name.ends_with(".json") {
            bundle::check_name(&inner)?;
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if len > MAX_MANIFEST {
                return Err(BundleError::Limit(format!("`{inner}` is over 4 MiB")).into());
            }
            let data = std::fs::read(&path).map_err(|source| ImportError::Io {
                what: path.display().to_string(),
                source,
            })?;
            out.insert(inner, data);
        }
    }
    Ok(())
}

/// `airbyte-source-NAME` from a wheel's, a directory's or a file's name.
pub fn package_name(base: &str) -> String {
    let base = base.trim().to_ascii_lowercase().replace('_', "-");
    let base = base.strip_prefix("airbyte-").unwrap_or(&base);
    let base = base.strip_prefix("source-").unwrap_or(base);
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-');
    if clean.is_empty() {
        "airbyte-source-declarative".into()
    } else {
        format!("airbyte-source-{clean}")
    }
}

/// A YAML manifest as JSON. YAML 1.2's core schema: `yes`/`no`/`on`/`off` stay text (PyYAML,
/// which the CDK uses, reads them as booleans: write `true`/`false`). Aliases are expanded
/// within serde_norway's repetition limit; the JSON is held to the same 4 MiB as the text.
pub fn from_yaml(text: &str, what: &str) -> Result<Value, ImportError> {
    let value: Value = serde_norway::from_str(text).map_err(|e| {
        not_a_manifest(
            what,
            format!("it is not YAML a manifest can be read from: {e}"),
        )
    })?;
    let len = serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(0) as u64;
    if len > MAX_MANIFEST {
        return Err(not_a_manifest(
            what,
            format!(
                "it expands to over {} MiB of JSON (aliases?)",
                MAX_MANIFEST >> 20
            ),
        ));
    }
    // Older manifests leave the root's type out; the CDK gives it.
    let declarative = match value.get("type") {
        None => value.get("streams").is_some_and(Value::is_array),
        Some(t) => t.as_str() == Some("DeclarativeSource"),
    };
    if !declarative {
        return Err(not_a_manifest(
            what,
            "it is not an Airbyte declarative manifest (`type: DeclarativeSource` and `streams` \
             at its top)"
                .into(),
        ));
    }
    Ok(value)
}

/// The manifest, schemas and name a wheel ships: its one `PACKAGE/manifest.yaml`, the JSON
/// files under `PACKAGE/schemas/`, and the distribution's name and version.
pub fn from_wheel(bytes: &[u8], what: &str) -> Result<Imported, ImportError> {
    let wheel = |reason: String| ImportError::Wheel {
        what: what.to_string(),
        reason,
    };
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| wheel(format!("not a zip file ({e})")))?;
    if zip.len() > MAX_WHEEL_ENTRIES {
        return Err(wheel(format!("it lists over {MAX_WHEEL_ENTRIES} files")));
    }
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| wheel(format!("a file name cannot be read ({e})")))?;
    let manifests: Vec<&String> = names
        .iter()
        .filter(|n| {
            let parts: Vec<&str> = n.split('/').collect();
            parts.len() == 2 && parts[1] == "manifest.yaml"
        })
        .collect();
    let manifest_name = match manifests.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(wheel(
                "it ships no declarative manifest (`PACKAGE/manifest.yaml`): it is a Python \
                 connector, which cannot run in the sandbox"
                    .into(),
            ));
        }
        many => {
            return Err(wheel(format!(
                "it ships {} manifests ({}); import one as a file",
                many.len(),
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let package = manifest_name
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut read_entry = |name: &str| -> Result<Vec<u8>, ImportError> {
        let mut f = zip
            .by_name(name)
            .map_err(|e| wheel(format!("`{name}`: {e}")))?;
        let mut data = Vec::new();
        f.by_ref()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut data)
            .map_err(|e| wheel(format!("`{name}`: {e}")))?;
        if data.len() as u64 > MAX_MANIFEST {
            return Err(wheel(format!(
                "`{name}` unpacks to over {} MiB",
                MAX_MANIFEST >> 20
            )));
        }
        Ok(data)
    };
    let text = String::from_utf8(read_entry(&manifest_name)?)
        .map_err(|_| wheel(format!("`{manifest_name}` is not UTF-8")))?;
    let manifest = from_yaml(&text, &format!("{what}: {manifest_name}"))?;
    let schema_prefix = format!("{package}/schemas/");
    let mut schemas = BTreeMap::new();
    let mut total = 0usize;
    for n in &names {
        if let Some(rest) = n.strip_prefix(&schema_prefix)
            && rest.ends_with(".json")
        {
            let inner = format!("schemas/{rest}");
            bundle::check_name(&inner)?;
            let data = read_entry(n)?;
            total += data.len();
            if total > bundle::MAX_BYTES {
                return Err(BundleError::Limit(format!(
                    "the schemas are over {} MiB together",
                    bundle::MAX_BYTES >> 20
                ))
                .into());
            }
            schemas.insert(inner, data);
        }
    }
    let python_components = names
        .iter()
        .any(|n| n == &format!("{package}/components.py"));
    let (dist, version) = wheel_dist(what, &names, &mut read_entry)?;
    Ok(Imported {
        manifest,
        schemas,
        name: package_name(&dist),
        version: Some(version),
        python_components,
    })
}

/// The distribution name and version from the wheel's `*.dist-info/METADATA`.
fn wheel_dist(
    what: &str,
    names: &[String],
    read_entry: &mut dyn FnMut(&str) -> Result<Vec<u8>, ImportError>,
) -> Result<(String, String), ImportError> {
    let metadata = names
        .iter()
        .find(|n| {
            let parts: Vec<&str> = n.split('/').collect();
            parts.len() == 2 && parts[0].ends_with(".dist-info") && parts[1] == "METADATA"
        })
        .ok_or_else(|| ImportError::Wheel {
            what: what.to_string(),
            reason: "it has no `*.dist-info/METADATA`".into(),
        })?;
    let text = String::from_utf8_lossy(&read_entry(metadata)?).into_owned();
    let field = |key: &str| {
        text.lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
    };
    match (field("Name:"), field("Version:")) {
        (Some(n), Some(v)) => Ok((n, v)),
        _ => Err(ImportError::Wheel {
            what: what.to_string(),
            reason: format!("`{metadata}` names no `Name:` and `Version:`"),
        }),
    }
}

/// The network a manifest can reach, as the package's requested allowlist: one rule per
/// `url_base` (and `HttpRequester.url`). A literal URL gives its scheme, host and port; a
/// templated host gives a wildcard from its literal tail (`https://{{ config.site }}.example.com`
/// → `https://*.example.com`), or any host when nothing of it is literal; a templated scheme
/// gives both `https` and `http`; a templated port any port. The operator's grant narrows it.
pub fn network(manifest: &Value) -> Result<Vec<AllowRule>, ImportError> {
    let mut urls = BTreeSet::new();
    collect_urls(manifest, &mut urls, 0);
    let mut rules = BTreeSet::new();
    for url in urls.iter().filter(|u| !u.trim().is_empty()) {
        let templated = url.contains("{{") || url.contains("{%");
        match url_rules(url) {
            Ok(found) => rules.extend(found),
            // A URL chosen by template logic (`{{ 'https://a' if … else 'https://b' }}`):
            // any host; the grant names the one it uses.
            Err(_) if templated => {
                rules.insert("https://*:*".to_string());
                rules.insert("http://*:*".to_string());
            }
            Err(e) => return Err(e),
        }
    }
    rules
        .into_iter()
        .map(|r| {
            r.parse::<AllowRule>().map_err(|e| ImportError::Url {
                url: r.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

fn collect_urls(v: &Value, out: &mut BTreeSet<String>, depth: usize) {
    if depth > 256 {
        return;
    }
    match v {
        Value::Object(m) => {
            // `url` is a requester's whole URL (CDK 6); typed, or untyped beside requester fields.
            let requester = match m.get("type").and_then(Value::as_str) {
                Some(t) => t == "HttpRequester",
                None => ["http_method", "authenticator", "request_parameters"]
                    .iter()
                    .any(|k| m.contains_key(*k)),
            };
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("url_base", Value::String(s)) => {
                        out.insert(s.clone());
                    }
                    ("url", Value::String(s)) if requester => {
                        out.insert(s.clone());
                    }
                    _ => collect_urls(v, out, depth + 1),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_urls(v, out, depth + 1)),
        _ => {}
    }
}

/// The allowlist rules (as text) one url admits.
pub fn url_rules(url: &str) -> Result<Vec<String>, ImportError> {
    let bad = |reason: &str| ImportError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let url = url.trim();
    let (schemes, rest): (Vec<&str>, &str) = match url.split_once("://") {
        Some((s, rest)) if !s.contains("{{") && !s.contains("{%") => {
            match s.to_ascii_lowercase().as_str() {
                "https" => (vec!["https"], rest),
                "http" => (vec!["http"], rest),
                _ => return Err(bad("only http and https leave the sandbox")),
            }
        }
        Some((_, rest)) => (vec!["https", "http"], rest),
        None if url.starts_with("{{") || url.starts_with("{%") => {
            // The whole URL, scheme included, comes from the config.
            return Ok(vec!["https://*:*".into(), "http://*:*".into()]);
        }
        None => return Err(bad("it has no scheme")),
    };
    // The authority ends at the first `/`, `?` or `#` outside a template.
    let mut authority = String::new();
    let mut depth = 0usize;
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let two = &rest[i..rest.len().min(i + 2)];
        if two == "{{" || two == "{%" {
            depth += 1;
            authority.push_str(two);
            i += 2;
            continue;
        }
        if (two == "}}" || two == "%}") && depth > 0 {
            depth -= 1;
            authority.push_str(two);
            i += 2;
            continue;
        }
        let c = bytes[i] as char;
        if depth == 0 && matches!(c, '/' | '?' | '#') {
            break;
        }
        authority.push(c);
        i += 1;
    }
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let templated = |s: &str| s.contains("{{") || s.contains("{%");
    // Split host and port at the last `:` outside a template and brackets.
    let (host, port) = match authority.rfind(':') {
        Some(i) if !templated(&authority[i..]) || authority[i + 1..].starts_with("{{") => {
            (&authority[..i], Some(&authority[i + 1..]))
        }
        _ => (authority, None),
    };
    let port = match port {
        None => String::new(),
        Some(p) if templated(p) => ":*".into(),
        Some(p) if p.parse::<u16>().is_ok() => format!(":{p}"),
        Some(_) => return Err(bad("its port is not a number")),
    };
    let host = if templated(host) {
        // The literal tail after the last template, if it is a domain suffix.
        let tail_at = host.rfind("}}").or_else(|| host.rfind("%}")).map(|i| i + 2);
        let tail = tail_at.map_or("", |i| &host[i..]).to_ascii_lowercase();
        match tail.strip_prefix('.') {
            Some(suffix) if suffix.contains('.') && !templated(suffix) => format!("*.{suffix}"),
            _ => "*".into(),
        }
    } else if host.is_empty() {
        return Err(bad("it names no host"));
    } else {
        host.to_ascii_lowercase()
    };
    // Any host with the scheme's default port would refuse a config naming another port.
    let port = if host == "*" && port.is_empty() {
        ":*".to_string()
    } else {
        port
    };
    Ok(schemes
        .into_iter()
        .map(|s| format!("{s}://{host}{port}"))
        .collect())
}

/// The package's own manifest (`sluice.toml` text): its name, version and description, a
/// source requesting the network its urls reach.
pub fn package_manifest(
    name: &str,
    version: &str,
    description: &str,
    network: Vec<AllowRule>,
) -> Result<String, ImportError> {
    let m = Manifest {
        name: name.to_string(),
        version: version.to_string(),
        kind: ConnectorKind::Source,
        description: description.to_string(),
        capabilities: Requests {
            network,
            ..Requests::default()
        },
    };
    let text = toml::to_string(&m).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    // Parsed back as the host will read it: a bad name or version is refused now.
    Manifest::parse(&text)?;
    Ok(text)
}

/// The component of the package: `interpreter` (the `source-declarative` component) under
/// `manifest_text`, with the manifest and its schemas packed in.
pub fn component(
    interpreter: &[u8],
    imported: &Imported,
    manifest_text: &str,
) -> Result<Vec<u8>, ImportError> {
    let mut files = Bundle::new();
    files.insert(
        PACKED_MANIFEST,
        serde_json::to_vec(&imported.manifest).expect("JSON values serialize"),
    )?;
    for (name, data) in &imported.schemas {
        files.insert(name, data.clone())?;
    }
    Ok(bundle::repack(interpreter, manifest_text, &files)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(url: &str) -> Vec<String> {
        url_rules(url).unwrap()
    }

    #[test]
    fn literal_urls_give_their_scheme_host_and_port() {
        assert_eq!(rules("https://pokeapi.co/api/v2/"), ["https://pokeapi.co"]);
        assert_eq!(
            rules("https://API.Example.com"),
            ["https://api.example.com"]
        );
        assert_eq!(
            rules("http://localhost:8080/v1?x=1"),
            ["http://localhost:8080"]
        );
        assert_eq!(
            rules("https://user:pw@api.example.com/x"),
            ["https://api.example.com"]
        );
    }

    #[test]
    fn templated_parts_become_wildcards() {
        assert_eq!(
            rules("https://{{ config['subdomain'] }}.zendesk.com/api/v2"),
            ["https://*.zendesk.com"]
        );
        assert_eq!(
            rules("https://api.{{ config.region }}.example.com/"),
            ["https://*.example.com"]
        );
        assert_eq!(rules("https://{{ config.host }}/api"), ["https://*:*"]);
        assert_eq!(
            rules("https://{{ config.domain }}.com"),
            ["https://*:*"],
            "a bare TLD is no suffix"
        );
        assert_eq!(
            rules("{{ config.base_url }}/api"),
            ["https://*:*", "http://*:*"]
        );
        assert_eq!(
            rules("{{ 'https' if config.tls else 'http' }}://api.example.com:{{ config.port }}"),
            ["https://api.example.com:*", "http://api.example.com:*"]
        );
        assert_eq!(
            rules("https://example.com/{{ config.path }}"),
            ["https://example.com"],
            "a template in the path does not widen the host"
        );
        assert_eq!(
            rules("https://{{ config.a }}/x.evil.com"),
            ["https://*:*"],
            "a suffix after the authority is no suffix"
        );
    }

    #[test]
    fn urls_that_reach_nothing_are_refused() {
        for bad in [
            "ftp://x.example.com",
            "api.example.com/x",
            "https:///x",
            "https://h:99999",
        ] {
            assert!(url_rules(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_url_base_in_the_manifest_is_collected() {
        let m = serde_json::json!({
            "type": "DeclarativeSource",
            "definitions": {"requester": {"type": "HttpRequester", "url_base": "https://a.example.com/v1"}},
            "streams": [{"retriever": {"requester": {"url_base": "https://{{ config.site }}.b.example.com", "path": "/x"}}},
                        {"retriever": {"requester": {"type": "HttpRequester", "url": "https://c.example.com/y"}}}]
        });
        let n: Vec<String> = network(&m).unwrap().iter().map(|r| r.to_string()).collect();
        assert_eq!(
            n,
            [
                "https://*.b.example.com",
                "https://a.example.com",
                "https://c.example.com"
            ]
        );
        // Template logic choosing the URL asks for any host; an empty url_base asks nothing.
        let m = serde_json::json!({"a": {"url_base": "{{ 'https://x.example.com' if config.live else 'https://y.example.com' }}"}, "b": {"url_base": ""}});
        let n: Vec<String> = network(&m).unwrap().iter().map(|r| r.to_string()).collect();
        assert_eq!(n, ["http://*:*", "https://*:*"]);
    }

    #[test]
    fn names_become_airbyte_source_names() {
        assert_eq!(
            package_name("airbyte-source-pokeapi"),
            "airbyte-source-pokeapi"
        );
        assert_eq!(
            package_name("airbyte_source_exchange_rates"),
            "airbyte-source-exchange-rates"
        );
        assert_eq!(package_name("source-faker"), "airbyte-source-faker");
        assert_eq!(package_name("Acme API"), "airbyte-source-acme-api");
        assert_eq!(package_name(""), "airbyte-source-declarative");
    }

    #[test]
    fn yaml_must_be_a_declarative_source_within_the_limit() {
        let v = from_yaml(
            "type: DeclarativeSource\nversion: 6.0.0\nstreams: []\n",
            "m",
        )
        .unwrap();
        assert_eq!(v["version"], "6.0.0");
        let v = from_yaml("version: 0.29.0\nstreams: []\n", "m").unwrap();
        assert!(
            v.get("type").is_none(),
            "an older manifest without the root's type"
        );
        let e = from_yaml("type: Other\n", "m.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("DeclarativeSource"), "{e}");
        let e = from_yaml("a: [unclosed\n", "m.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not YAML"), "{e}");
        // A billion laughs: aliases expanding far past the limit are refused, not expanded.
        let mut bomb =
            String::from("type: DeclarativeSource\na0: &a0 [\"xxxxxxxxxxxxxxxxxxxxxxxx\"]\n");
        for i in 1..30 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(from_yaml(&bomb, "bomb.yaml").is_err());
    }

    #[test]
    fn the_package_manifest_requests_the_derived_network() {
        let net = network(&serde_json::json!({"url_base": "https://api.example.com"})).unwrap();
        let text = package_manifest("airbyte-source-x", "1.2.3", "X", net).unwrap();
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.name, "airbyte-source-x");
        assert_eq!(m.kind, ConnectorKind::Source);
        assert_eq!(
            m.capabilities.network[0].to_string(),
            "https://api.example.com"
        );
    }
}
