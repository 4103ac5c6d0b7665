//! The layers of the host library, as docs/architecture.md states them: a module uses only
//! modules of lower layers. This test reads the sources and fails on the first `crate::` path
//! that runs the other way, naming the file, so the order in the docs stays the order of the
//! code.

use std::collections::BTreeMap;
use std::path::Path;

/// Each top-level module and its layer; modules of one layer do not use each other.
const LAYERS: &[(&str, u8)] = &[
    ("protocol", 0),
    ("boundary", 0),
    ("store", 1),
    ("capability", 1),
    ("runtime", 2),
    ("connection", 3),
    ("marketplace", 4),
    ("sync", 4),
    ("server", 5),
    ("api", 6),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// The code of a file without comments and without its test module (which may use anything).
fn code(text: &str) -> String {
    let text = text.split("\n#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::X` a text names, with X's first path segment.
fn uses(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .filter(|(i, _)| {
            // `crate::` itself, not `some_crate::`.
            *i == 0
                || !code.as_bytes()[i - 1].is_ascii_alphanumeric() && code.as_bytes()[i - 1] != b'_'
        })
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_import_runs_down_the_documented_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(top.as_str(), "lib" | "main" | "cli") {
            continue; // the binary and the crate root sit above everything
        }
        let mine = layer(&top).unwrap_or_else(|| {
            panic!(
                "`{top}` ({}) has no layer: add it to LAYERS and to docs/architecture.md",
                rel.display()
            )
        });
        for used in uses(&code(&std::fs::read_to_string(file).unwrap())) {
            if used == top {
                continue;
            }
            let Some(theirs) = layer(&used) else { continue };
            seen += 1;
            if theirs >= mine {
                wrong
                    .entry(format!("{top} (layer {mine}) uses {used} (layer {theirs})"))
                    .or_default()
                    .push(rel.display().to_string());
            }
        }
    }
    assert!(
        seen > 100,
        "only {seen} imports found: is the parser still right?"
    );
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

#[test]
fn the_parser_sees_what_it_must() {
    let text = "use crate::store::Store;\n// crate::api in a comment\nlet x = other_crate::y;\n\
                fn f() { crate::runtime::f() }\n#[cfg(test)]\nmod tests { use crate::api; }";
    assert_eq!(uses(&code(text)), ["store", "runtime"]);
}

#[test]
fn the_docs_state_the_same_order() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/architecture.md"),
    )
    .unwrap();
    let mut by_layer: BTreeMap<u8, Vec<&str>> = BTreeMap::new();
    for (m, l) in LAYERS {
        by_layer.entry(*l).or_default().push(m);
    }
    let line = by_layer
        .values()
        .rev()
        .map(|ms| ms.join(", "))
        .collect::<Vec<_>>()
        .join(" → ");
    assert!(
        doc.contains(&line),
        "docs/architecture.md should state the layers as `{line}`"
    );
}

/// The pump and its stages are generic: the benchmarks drive them between native connectors
/// with no store and no run. They know neither the store nor a run's error.
#[test]
fn the_pump_knows_neither_the_store_nor_a_run() {
    let sync = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sync");
    for file in ["engine.rs", "gate.rs", "spill.rs", "validate.rs"] {
        let text = code(&std::fs::read_to_string(sync.join(file)).unwrap());
        for needle in ["crate::store", "SyncError", "crate::server", "crate::api"] {
            assert!(!text.contains(needle), "sync/{file} names `{needle}`");
        }
    }
}

/// The modules one layer holds, and which of them each uses: through `crate::TOP::X` anywhere,
/// or a file's own top-level `use super::X` (a child file of `TOP`).
fn sibling_uses(top: &str) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(top);
    let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    if !dir.is_dir() {
        return out; // a single file has no modules of its own
    }
    let mut files = Vec::new();
    walk(&dir, &mut files);
    let prefix = format!("crate::{top}::");
    for file in files {
        let rel = file.strip_prefix(&dir).unwrap();
        let parts: Vec<String> = rel
            .components()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .collect();
        if parts[0] == "mod" {
            continue; // the layer's root composes its children
        }
        let me = parts[0].clone();
        // `super` in `x.rs` or `x/mod.rs` is the layer itself; in `x/y.rs` it is `x`.
        let super_is_layer = parts.len() == 1 || (parts.len() == 2 && parts[1] == "mod");
        let text = code(&std::fs::read_to_string(&file).unwrap());
        let mut used: Vec<String> = text
            .match_indices(&prefix)
            .map(|(i, m)| {
                text[i + m.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect();
        if super_is_layer {
            for line in text.lines().filter(|l| l.starts_with("use super::")) {
                let rest = &line["use super::".len()..];
                if rest.starts_with('{') {
                    used.extend(
                        rest.trim_matches(|c| c == '{' || c == '}' || c == ';')
                            .split(',')
                            .map(|s| s.trim().split("::").next().unwrap_or("").to_string()),
                    );
                } else {
                    used.push(
                        rest.split([':', ';'])
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_string(),
                    );
                }
            }
        }
        let entry = out.entry(me.clone()).or_default();
        entry.extend(used.into_iter().filter(|u| !u.is_empty() && *u != me));
    }
    out
}

/// Inside a layer, no two modules use each other: each one can be read knowing only the ones
/// below it.
#[test]
fn no_two_modules_of_a_layer_use_each_other() {
    let mut circles = Vec::new();
    for (top, _) in LAYERS {
        let uses = sibling_uses(top);
        for (a, theirs) in &uses {
            for b in theirs {
                if a < b && uses.get(b).is_some_and(|u| u.contains(a)) {
                    circles.push(format!("{top}::{a} ↔ {top}::{b}"));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules that use each other: {circles:#?}"
    );
}
