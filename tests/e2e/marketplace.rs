//! The index and installing from it: `sluice connector publish|yank|install|upgrade|list|info|
//! remove`, from a directory index and from an HTTP index on 127.0.0.1, a sync with an installed
//! connector, and every refusal leaving the installed connectors and the compiled cache exactly
//! as they were.

use std::collections::BTreeMap;
use std::path::Path;

use ::sluice::boundary::crypto::sha256_hex;
use ::sluice::marketplace::Package;
use serde_json::Value;
use sluice_tests::server::{Reply, TestServer};
use sluice_tests::sluice_cli as sluice;
use sluice_tests::{Scratch, connector, private_ca, read_jsonl, toml_path};

/// The source-faker component with its embedded manifest replaced by `edit(manifest)`. The new
/// text is padded with a TOML comment to the old length, so it can be written over the old one
/// in place (a custom section's bytes are not validated).
fn faker_with_manifest(edit: impl Fn(&str) -> String) -> Vec<u8> {
    let mut wasm = std::fs::read(connector("source-faker")).unwrap();
    let old = ::sluice::capability::manifest::Manifest::embedded_text(&wasm).unwrap();
    let mut new = edit(&old);
    assert!(
        new.len() + 2 <= old.len(),
        "the edited manifest must be shorter"
    );
    new.push_str("\n#");
    while new.len() < old.len() {
        new.push(' ');
    }
    // The custom section's bytes (the text may also appear elsewhere, in a data segment).
    let at = wasmparser::Parser::new(0)
        .parse_all(&wasm)
        .find_map(|p| match p.unwrap() {
            wasmparser::Payload::CustomSection(c) if c.name() == "sluice:manifest" => {
                Some(c.data_offset())
            }
            _ => None,
        })
        .expect("the manifest section is in the component");
    assert_eq!(&wasm[at..at + old.len()], old.as_bytes());
    wasm[at..at + old.len()].copy_from_slice(new.as_bytes());
    wasm
}

/// A shorter description, to make room for edits.
fn short(m: &str) -> String {
    let start = m.find("description = ").unwrap();
    let end = start + m[start..].find('\n').unwrap();
    format!("{}description = \"x\"{}", &m[..start], &m[end..])
}

/// Pack `wasm` (written to `name.wasm`), sign it with `key` and publish it into `index`.
fn publish(s: &Scratch, wasm: &[u8], name: &str, key: &str, index: &str) {
    std::fs::write(s.path(&format!("{name}.wasm")), wasm).unwrap();
    let pkg = format!("{name}.slpkg");
    for args in [
        vec!["connector", "pack", &format!("{name}.wasm"), "--out", &pkg],
        vec!["connector", "sign", &pkg, "--key", &format!("{key}.key")],
        vec!["connector", "publish", &pkg, "--index", index],
    ] {
        let (code, _, err) = sluice(s, &args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
}

/// A scratch with publisher `acme` (trusted) and an index `index/` holding source-faker 0.1.0
/// (as built, no capabilities) and 0.2.0 (asking for the network).
pub(crate) fn setup() -> Scratch {
    let s = Scratch::new();
    let (code, _, err) = sluice(&s, &["keys", "publisher", "new", "acme"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = sluice(&s, &["trust", "add", "acme.pub"]);
    assert_eq!(code, 0, "{err}");
    let v1 = std::fs::read(connector("source-faker")).unwrap();
    publish(&s, &v1, "faker-1", "acme", "index");
    let v2 = faker_with_manifest(|m| {
        short(m).replace("0.1.0", "0.2.0") + "network = [\"https://*.example.com\"]\n"
    });
    publish(&s, &v2, "faker-2", "acme", "index");
    s
}

/// What the data dir has installed: the store's list and every file (with its digest) under
/// `connectors/` and the compiled cache.
fn installed_state(s: &Scratch) -> (String, BTreeMap<String, String>) {
    let (code, list, err) = sluice(s, &["connector", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let mut files = BTreeMap::new();
    for dir in ["connectors", "cache"] {
        walk(&s.data_dir().join(dir), &s.data_dir(), &mut files);
    }
    (list, files)
}

fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.insert(
                p.strip_prefix(base).unwrap().display().to_string(),
                "dir".into(),
            );
            walk(&p, base, out);
        } else {
            let digest = sha256_hex(&std::fs::read(&p).unwrap());
            out.insert(p.strip_prefix(base).unwrap().display().to_string(), digest);
        }
    }
}

/// `args` is refused, with stderr naming each of `why`, and changes nothing installed; `args`
/// with `flags` added succeeds. Returns the stdout of both attempts.
fn refused_until(s: &Scratch, args: &[&str], flags: &[&str], why: &[&str]) -> (String, String) {
    let before = installed_state(s);
    let (code, refused, err) = sluice(s, args);
    assert_ne!(code, 0, "{args:?} accepted: {refused}");
    for w in why {
        assert!(err.contains(w), "{args:?}: `{w}` not in: {err}");
    }
    assert_eq!(installed_state(s), before, "{args:?} changed something");
    let with: Vec<&str> = args.iter().chain(flags).copied().collect();
    let (code, accepted, err) = sluice(s, &with);
    assert_eq!(code, 0, "{with:?}: {err}");
    (refused, accepted)
}

fn installed(s: &Scratch) -> Vec<(String, String)> {
    let (_, list, _) = sluice(s, &["connector", "list", "--json"]);
    let v: Value = serde_json::from_str(&list).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn edit_index(s: &Scratch, index: &str, edit: impl FnOnce(&mut Value)) {
    let path = s.path(&format!("{index}/index.json"));
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Point `name`'s entry for `version` at `file` (copied into the index), with its real digest
/// and size unless `lie_about_size`.
fn replace_package(s: &Scratch, index: &str, version: &str, bytes: &[u8], lie_about_size: bool) {
    let rel = format!("packages/replaced-{version}.slpkg");
    std::fs::write(s.path(&format!("{index}/{rel}")), bytes).unwrap();
    edit_index(s, index, |v| {
        for e in v["packages"]["source-faker"].as_array_mut().unwrap() {
            if e["version"] == version {
                e["path"] = rel.clone().into();
                e["sha256"] = sha256_hex(bytes).into();
                e["size"] = (bytes.len() as u64 - if lie_about_size { 100 } else { 0 }).into();
            }
        }
    });
}

#[test]
fn install_run_upgrade_downgrade_and_remove_from_a_directory_index() {
    let s = setup();
    let (code, out, err) = sluice(
        &s,
        &["connector", "info", "source-faker", "--index", "index"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("not installed") && out.contains("0.2.0"),
        "{out}"
    );

    // Without a terminal and without --approve nobody approved it: nothing is installed.
    let (code, out, err) = sluice(
        &s,
        &[
            "connector",
            "install",
            "source-faker@0.1.0",
            "--index",
            "index",
        ],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("signed by `acme:"),
        "the review is shown: {out}"
    );
    assert!(
        err.contains("not approved") && err.contains("--approve"),
        "{err}"
    );
    assert!(installed(&s).is_empty());

    let (code, out, err) = sluice(
        &s,
        &[
            "connector",
            "install",
            "source-faker@0.1.0",
            "--index",
            "index",
            "--approve",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("none: no files, no network"), "{out}");
    assert_eq!(installed(&s), [("source-faker".into(), "0.1.0".into())]);
    let (list, files) = installed_state(&s);
    assert!(list.contains("acme:"), "{list}");
    assert!(
        files.keys().any(|f| f.starts_with("cache/compiled/")),
        "compiled ahead of time: {files:?}"
    );
    let (code, out, _) = sluice(
        &s,
        &[
            "connector",
            "install",
            "source-faker@0.1.0",
            "--index",
            "index",
        ],
    );
    assert_eq!(code, 0);
    assert!(out.contains("already installed"), "{out}");
    // The other commands take an installed connector's name too.
    let (code, out, err) = sluice(&s, &["inspect", "source-faker"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("source-faker 0.1.0 (source)"), "{out}");
    let (code, _, err) = sluice(&s, &["spec", "source-http"]);
    assert_ne!(code, 0);
    assert!(err.contains("not an installed connector"), "{err}");

    // The installed connector, by name, runs a sync end to end.
    s.write(
        "conn.toml",
        &format!(
            r#"
name = "installed-faker"
[source]
connector = "source-faker"
config = {{ count = 50, seed = 7 }}
[destination]
connector = {dest}
config = {{ path = "/output", format = "jsonl" }}
[[destination.grant.dirs]]
host = "out"
guest = "/output"
[[streams]]
name = "users"
"#,
            dest = toml_path(&connector("destination-file"))
        ),
    );
    let (code, out, err) = sluice(&s, &["run", "conn.toml", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(read_jsonl(&s.path("out/users.jsonl")).len(), 50);

    // A component changed on disk after install is refused; reinstalling repairs it.
    let file = s
        .data_dir()
        .join("connectors/source-faker/0.1.0/component.wasm");
    let good = std::fs::read(&file).unwrap();
    let mut bad = good.clone();
    bad.extend_from_slice(b"\0");
    std::fs::write(&file, &bad).unwrap();
    let (code, out, err) = sluice(&s, &["run", "conn.toml"]);
    assert_ne!(code, 0);
    assert!(
        format!("{out}{err}").contains("changed on disk")
            && format!("{out}{err}").contains("sluice connector install source-faker@0.1.0"),
        "{out}\n{err}"
    );
    let (code, _, err) = sluice(
        &s,
        &[
            "connector",
            "install",
            "source-faker@0.1.0",
            "--index",
            "index",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), good);
    let (code, out, err) = sluice(&s, &["run", "conn.toml"]);
    assert_eq!(code, 0, "{out}\n{err}");

    // 0.2.0 asks for the network: the upgrade needs approval again.
    let (refused, _) = refused_until(
        &s,
        &["connector", "upgrade", "source-faker"],
        &["--approve"],
        &["not approved", "network https://*.example.com"],
    );
    assert!(
        refused.contains("+ network https://*.example.com"),
        "the diff is shown: {refused}"
    );
    assert_eq!(installed(&s), [("source-faker".into(), "0.2.0".into())]);
    let (_, out, _) = sluice(&s, &["connector", "info", "source-faker"]);
    assert!(out.contains("network https://*.example.com"), "{out}");
    assert!(
        !s.data_dir().join("connectors/source-faker/0.1.0").exists(),
        "the old version's files are gone"
    );

    // Back to 0.1.0 only when asked for; it asks for less, so no approval is needed.
    let (_, out) = refused_until(
        &s,
        &[
            "connector",
            "install",
            "source-faker@0.1.0",
            "--index",
            "index",
        ],
        &["--allow-downgrade"],
        &["downgrade", "--allow-downgrade"],
    );
    assert!(out.contains("- network https://*.example.com"), "{out}");
    assert_eq!(installed(&s), [("source-faker".into(), "0.1.0".into())]);

    let (code, _, err) = sluice(&s, &["connector", "remove", "source-faker"]);
    assert_eq!(code, 0, "{err}");
    assert!(installed(&s).is_empty());
    let (_, files) = installed_state(&s);
    // Only the destination the run loaded from its file stays compiled.
    let dest = sha256_hex(&std::fs::read(connector("destination-file")).unwrap());
    assert!(
        files
            .keys()
            .all(|f| !f.starts_with("connectors/source-faker")
                && (!f.ends_with(".cwasm") || f.starts_with(&format!("cache/compiled/{dest}")))),
        "files and compiled code of every installed version removed: {files:?}"
    );
    let (code, _, err) = sluice(&s, &["run", "conn.toml"]);
    assert_ne!(code, 0);
    assert!(err.contains("not installed"), "{err}");

    let (_, audit, _) = sluice(
        &s,
        &["audit", "list", "--resource", "connector/source-faker"],
    );
    for action in [
        "connector.installed",
        "connector.upgraded",
        "connector.downgraded",
        "connector.removed",
        "connector.install",
    ] {
        assert!(audit.contains(action), "{action} audited: {audit}");
    }
}

/// Answer GETs with the files under `root`.
fn serve_dir(root: std::path::PathBuf) -> impl Fn(&sluice_tests::server::Seen) -> Reply {
    move |req| {
        let rel = req.path().trim_start_matches('/');
        match std::fs::read(root.join(rel)) {
            Ok(body) if !rel.contains("..") => Reply {
                status: 200,
                headers: Vec::new(),
                body,
            },
            _ => Reply::status(404, "not found"),
        }
    }
}

#[test]
fn install_from_an_https_index_behind_a_private_ca() {
    let s = setup();
    let (ca, chain, key) = private_ca();
    s.write("ca.pem", &ca);
    let server = TestServer::start_tls(&chain, &key, serve_dir(s.path("index")));
    let url = format!("https://127.0.0.1:{}/", server.addr.port());
    // A certificate no trusted CA signed is refused; the operator's CA makes it trusted.
    refused_until(
        &s,
        &[
            "connector",
            "install",
            "source-faker",
            "--index",
            &url,
            "--approve",
        ],
        &["--index-ca", "ca.pem"],
        &["TLS handshake failed", "certificate"],
    );
    assert_eq!(installed(&s), [("source-faker".into(), "0.2.0".into())]);
    // Plain http:// is for loopback only.
    let (code, _, err) = sluice(
        &s,
        &[
            "connector",
            "info",
            "source-faker",
            "--index",
            "http://index.example.com/",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn install_from_an_http_index_on_loopback() {
    let s = setup();
    let server = TestServer::start(serve_dir(s.path("index")));
    let url = format!("http://{}/", server.addr);
    let (code, out, err) = sluice(
        &s,
        &[
            "connector",
            "install",
            "source-faker",
            "--index",
            &url,
            "--approve",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("network https://*.example.com"), "{out}");
    assert_eq!(installed(&s), [("source-faker".into(), "0.2.0".into())]);
    let paths: Vec<String> = server.seen().iter().map(|r| r.path().to_string()).collect();
    assert_eq!(paths, ["/index.json", "/packages/source-faker-0.2.0.slpkg"]);

    // The upgrade goes back to the index it came from; a lying size is refused mid-download.
    let v3 = faker_with_manifest(|m| short(m).replace("0.1.0", "0.3.0"));
    publish(&s, &v3, "faker-3", "acme", "index");
    edit_index(&s, "index", |v| {
        let e = &mut v["packages"]["source-faker"][2];
        e["size"] = (e["size"].as_u64().unwrap() - 512).into();
    });
    let before = installed_state(&s);
    let (code, _, err) = sluice(&s, &["connector", "upgrade", "source-faker", "--approve"]);
    assert_ne!(code, 0);
    assert!(err.contains("too large"), "{err}");
    assert_eq!(installed_state(&s), before);
}

#[test]
fn every_refusal_names_the_problem_and_changes_nothing() {
    let s = setup();
    // Something installed already, so "unchanged" covers files and cache, not just emptiness.
    let (code, _, err) = sluice(
        &s,
        &[
            "connector",
            "install",
            "source-faker@0.1.0",
            "--index",
            "index",
            "--approve",
        ],
    );
    assert_eq!(code, 0, "{err}");

    // A publisher this data dir does not trust.
    let (code, _, err) = sluice(&s, &["keys", "publisher", "new", "mallory"]);
    assert_eq!(code, 0, "{err}");
    let v2_pkg = std::fs::read(s.path("index/packages/source-faker-0.2.0.slpkg")).unwrap();
    let unsigned = {
        std::fs::write(
            s.path("u.wasm"),
            faker_with_manifest(|m| short(m).replace("0.1.0", "0.2.0")),
        )
        .unwrap();
        let (code, _, err) = sluice(&s, &["connector", "pack", "u.wasm", "--out", "u.slpkg"]);
        assert_eq!(code, 0, "{err}");
        std::fs::read(s.path("u.slpkg")).unwrap()
    };
    let by_mallory = {
        let (code, _, err) = sluice(
            &s,
            &["connector", "sign", "u.slpkg", "--key", "mallory.key"],
        );
        assert_eq!(code, 0, "{err}");
        std::fs::read(s.path("u.slpkg")).unwrap()
    };
    let tampered = {
        // Another component under acme's signature of 0.2.0 (the package digest in the index
        // is updated to match, as an attacker controlling the index would).
        let signed = Package::parse(&v2_pkg, "v2").unwrap();
        let mut p = Package::parse(&unsigned, "u").unwrap();
        p.signature = signed.signature;
        p.to_bytes()
    };

    type Case = (
        &'static str,
        Box<dyn Fn(&Scratch)>,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "digest mismatch",
            Box::new(|s| {
                let p = s.path("index/packages/source-faker-0.2.0.slpkg");
                let mut b = std::fs::read(&p).unwrap();
                b[1000] ^= 1;
                std::fs::write(&p, b).unwrap();
            }),
            "source-faker",
            "does not match the index",
        ),
        (
            "missing signature",
            Box::new(move |s| replace_package(s, "index", "0.2.0", &unsigned, false)),
            "source-faker",
            "is not signed",
        ),
        (
            "bad signature",
            Box::new(move |s| replace_package(s, "index", "0.2.0", &tampered, false)),
            "source-faker",
            "does not match its contents",
        ),
        (
            "untrusted publisher",
            Box::new(move |s| replace_package(s, "index", "0.2.0", &by_mallory, false)),
            "source-faker",
            "not a trusted publisher",
        ),
        (
            "yanked version",
            Box::new(|s| {
                let (code, _, err) = sluice(
                    s,
                    &[
                        "connector",
                        "yank",
                        "source-faker@0.2.0",
                        "--index",
                        "index",
                    ],
                );
                assert_eq!(code, 0, "{err}");
            }),
            "source-faker@0.2.0",
            "yanked",
        ),
        (
            "manifest that does not match the exports",
            Box::new(|s| {
                let wasm = faker_with_manifest(|m| {
                    short(m)
                        .replace("0.1.0", "0.4.0")
                        .replace("kind = \"source\"", "kind = \"destination\"")
                });
                publish(s, &wasm, "not-a-destination", "acme", "index");
            }),
            "source-faker@0.4.0",
            "exports the source interface",
        ),
        (
            "entry outside the index root",
            Box::new(|s| {
                std::fs::copy(
                    s.path("index/packages/source-faker-0.2.0.slpkg"),
                    s.path("outside.slpkg"),
                )
                .unwrap();
                edit_index(s, "index", |v| {
                    v["packages"]["source-faker"][1]["path"] = "../outside.slpkg".into();
                });
            }),
            "source-faker",
            "points outside the index",
        ),
        (
            "oversized download",
            Box::new(move |s| {
                let real =
                    std::fs::read(s.path("index/packages/source-faker-0.2.0.slpkg")).unwrap();
                replace_package(s, "index", "0.2.0", &real, true);
            }),
            "source-faker",
            "too large",
        ),
    ];
    let (code, out, err) = sluice(&s, &["connector", "install", "nope", "--index", "index"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("no connector `nope`") && err.contains("source-faker"),
        "{err}"
    );

    let pristine = std::fs::read(s.path("index/index.json")).unwrap();
    let pristine_v2 = v2_pkg;
    for (what, break_it, spec, expected) in &cases {
        std::fs::write(s.path("index/index.json"), &pristine).unwrap();
        std::fs::write(
            s.path("index/packages/source-faker-0.2.0.slpkg"),
            &pristine_v2,
        )
        .unwrap();
        break_it(&s);
        let before = installed_state(&s);
        let (code, out, err) = sluice(
            &s,
            &[
                "connector",
                "upgrade",
                spec,
                "--index",
                "index",
                "--approve",
            ],
        );
        assert_ne!(code, 0, "{what}: accepted\n{out}");
        assert!(err.contains(expected), "{what}: {err}");
        assert_eq!(installed_state(&s), before, "{what}: something changed");
    }
    // Another trusted publisher's version of the same connector needs approval of that change,
    // even when it asks for nothing new.
    std::fs::write(s.path("index/index.json"), &pristine).unwrap();
    for args in [
        vec!["keys", "publisher", "new", "globex"],
        vec!["trust", "add", "globex.pub"],
    ] {
        let (code, _, err) = sluice(&s, &args);
        assert_eq!(code, 0, "{err}");
    }
    let v5 = faker_with_manifest(|m| short(m).replace("0.1.0", "0.5.0"));
    publish(&s, &v5, "faker-5", "globex", "index");
    let (refused, _) = refused_until(
        &s,
        &["connector", "upgrade", "source-faker", "--index", "index"],
        &["--approve"],
        &["signed by `globex:", "instead of `acme:"],
    );
    assert!(refused.contains("another publisher"), "{refused}");
    assert_eq!(installed(&s), [("source-faker".into(), "0.5.0".into())]);

    let (_, audit, _) = sluice(&s, &["audit", "list", "--action", "connector.install"]);
    assert!(
        audit.matches("\"refused\"").count() >= cases.len(),
        "every refusal is audited: {audit}"
    );
}
