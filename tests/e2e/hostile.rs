//! Connectors that try to escape their grant. Each attempt must be refused, end the run with a
//! clear error, leave a refusal event in the run record, and leak nothing into the output;
//! and the host keeps serving an honest sync running at the same time.

use std::sync::Arc;

use sluice::boundary::events::{Capability, Event, Outcome};
use sluice::sync::RunReport;
use sluice_tests::server::{Reply, Seen, TestServer};
use sluice_tests::{
    Scratch, ScriptedResolver, connector, faker_to_file, private_ca, read_jsonl, runtime,
    runtime_with, source_to_file, test_connector, toml_path,
};

/// hostile-source (config `attack`, an inline TOML table body) → destination-file, with
/// `/input` granted read-only and `grant` appended to the source's grant.
fn hostile_conn(attack: &str, grant: &str) -> String {
    let source = format!(
        "connector = {}\nconfig = {{ {attack} }}\n[[source.grant.dirs]]\nhost = \"in\"\nguest = \"/input\"\n{grant}",
        toml_path(&test_connector("hostile-source"))
    );
    source_to_file("hostile", &source, "[limits]\ncall_timeout_secs = 20")
}

fn scratch() -> Scratch {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("in")).unwrap();
    std::fs::write(s.path("in/allowed.txt"), "fine").unwrap();
    s
}

async fn attack(s: &Scratch, attack: &str, grant: &str) -> RunReport {
    s.write("c.toml", &hostile_conn(attack, grant));
    s.run("c.toml").await
}

async fn attack_with(
    rt: &sluice::runtime::Runtime,
    s: &Scratch,
    attack: &str,
    grant: &str,
) -> RunReport {
    s.write("c.toml", &hostile_conn(attack, grant));
    s.run_with(rt, "c.toml").await
}

fn refusals(r: &RunReport, capability: Capability) -> Vec<&Event> {
    r.events
        .iter()
        .filter(|e| e.outcome == Outcome::Refused && e.capability == capability)
        .collect()
}

/// The run failed with an error naming the connector and containing `needle`, nothing reached
/// the output, and the refusal is on the record (in the report and in the store).
async fn refused(s: &Scratch, r: &RunReport, needle: &str, capability: Capability) {
    let err = r
        .error
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_else(|| panic!("the attack must fail; events: {:#?}", r.events));
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
    assert!(
        !s.path("out/loot.jsonl").exists() || read_jsonl(&s.path("out/loot.jsonl")).is_empty(),
        "nothing may leak into the output"
    );
    let ev = refusals(r, capability);
    assert!(
        !ev.is_empty(),
        "a {capability} refusal is recorded: {:#?}",
        r.events
    );
    let stored = s.store().await.events(r.run_id).await.unwrap();
    assert!(
        stored
            .iter()
            .any(|e| e.outcome == Outcome::Refused && e.capability == capability),
        "the refusal is in the stored run record"
    );
}

/// The honest run beside an attack: the granted directory's own file reads.
async fn the_granted_file_stays_readable() {
    let s = scratch();
    let r = attack(
        &s,
        r#"attack = "read-file", path = "/input/allowed.txt""#,
        "",
    )
    .await;
    assert!(r.succeeded(), "{:?}", r.error);
    assert_eq!(loot(&s)["content"], "fine");
}

fn loot(s: &Scratch) -> serde_json::Value {
    let rows = read_jsonl(&s.path("out/loot.jsonl"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_etc_passwd_is_refused() {
    // Through libc, the path has no granted directory: it never reaches the host.
    let s = scratch();
    let r = attack(&s, r#"attack = "read-file", path = "/etc/passwd""#, "").await;
    let err = r.error.as_ref().unwrap().to_string();
    assert!(err.contains("read /etc/passwd"), "{err}");
    assert!(!s.path("out/loot.jsonl").exists());
    // With the raw call, relative to the granted directory, the host refuses and records it.
    let s = scratch();
    let r = attack(&s, r#"attack = "raw-open", path = "/etc/passwd""#, "").await;
    refused(&s, &r, "open-at /etc/passwd", Capability::Filesystem).await;
    assert!(
        refusals(&r, Capability::Filesystem)[0]
            .action
            .contains("/etc/passwd")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_out_of_the_granted_directory_is_refused() {
    let s = scratch();
    let r = attack(
        &s,
        r#"attack = "read-file", path = "/input/../../../../etc/passwd""#,
        "",
    )
    .await;
    refused(&s, &r, "/etc/passwd", Capability::Filesystem).await;
    let s = scratch();
    let r = attack(&s, r#"attack = "raw-open", path = "../in/allowed.txt""#, "").await;
    refused(&s, &r, "open-at", Capability::Filesystem).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_pointing_out_is_refused() {
    let s = scratch();
    let secret = s.path("outside.txt");
    std::fs::write(&secret, "host secret").unwrap();
    std::os::unix::fs::symlink(&secret, s.path("in/link")).unwrap();
    let r = attack(&s, r#"attack = "read-file", path = "/input/link""#, "").await;
    refused(&s, &r, "/input/link", Capability::Filesystem).await;
    // The same directory's own files stay readable.
    the_granted_file_stays_readable().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_in_a_read_only_grant_is_refused() {
    let s = scratch();
    let r = attack(&s, r#"attack = "write-file", path = "/input/pwned""#, "").await;
    refused(&s, &r, "write /input/pwned", Capability::Filesystem).await;
    assert!(!s.path("in/pwned").exists(), "nothing was written");
    assert!(
        refusals(&r, Capability::Filesystem)[0]
            .action
            .contains("for writing")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_and_arguments_are_empty() {
    // SAFETY: a variable only this test reads; the point is that it must not leak.
    unsafe { std::env::set_var("SLUICE_TEST_HOST_SECRET", "do-not-leak") };
    let s = scratch();
    let r = attack(&s, r#"attack = "env""#, "").await;
    assert!(r.succeeded(), "{:?}", r.error);
    let l = loot(&s);
    assert_eq!(l["env"], serde_json::json!([]), "{l}");
    assert_eq!(l["args"], serde_json::json!([]), "{l}");
    assert!(!l.to_string().contains("do-not-leak"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_socket_is_refused_at_load() {
    let s = Scratch::new();
    let source = format!(
        "connector = {}",
        toml_path(&test_connector("hostile-socket"))
    );
    s.write("c.toml", &source_to_file("sockets", &source, ""));
    let r = s.run("c.toml").await;
    refused(&s, &r, "wasi:sockets", Capability::Load).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_network_grant_nothing_leaves() {
    let server = TestServer::start(|_| Reply::status(200, "hello"));
    let s = scratch();
    let r = attack(
        &s,
        &format!(r#"attack = "http", url = "{}/x""#, server.url()),
        "",
    )
    .await;
    refused(
        &s,
        &r,
        "outside this connector's grant",
        Capability::Network,
    )
    .await;
    let ev = refusals(&r, Capability::Network);
    assert!(ev[0].detail.contains("no network grant"), "{:?}", ev[0]);
    assert!(server.seen().is_empty(), "no request reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_outside_the_allowlist_is_refused() {
    let server = TestServer::start(|_| Reply::status(200, "hello"));
    let s = scratch();
    let r = attack(
        &s,
        &format!(r#"attack = "http", url = "{}/x""#, server.url()),
        "[source.grant.network]\nallow = [\"https://api.example.com\"]",
    )
    .await;
    refused(&s, &r, "refused", Capability::Network).await;
    let ev = refusals(&r, Capability::Network);
    assert!(
        ev[0].detail.contains("not in the network allowlist")
            && ev[0].detail.contains("https://api.example.com"),
        "{:?}",
        ev[0]
    );
    assert!(server.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_loopback_and_metadata_addresses_need_an_exact_grant() {
    // A server on loopback, granted only through a wildcard: refused by address, never reached.
    let server = TestServer::start(|_| Reply::status(200, "internal"));
    let port = server.port();
    for (url, kind) in [
        (format!("http://127.0.0.1:{port}/"), "loopback"),
        (format!("http://[::1]:{port}/"), "loopback"),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "metadata",
        ),
        ("http://10.0.0.1/".to_string(), "private-network"),
        ("http://[::ffff:127.0.0.1]:80/".to_string(), "loopback"),
    ] {
        let s = scratch();
        let r = attack(
            &s,
            &format!(r#"attack = "http", url = "{url}""#),
            "[source.grant.network]\nallow = [\"http://*:*\"]",
        )
        .await;
        refused(
            &s,
            &r,
            "outside this connector's grant",
            Capability::Network,
        )
        .await;
        let ev = refusals(&r, Capability::Network);
        assert!(ev[0].detail.contains(kind), "{url}: {:?}", ev[0]);
    }
    assert!(server.seen().is_empty(), "no request reached the server");

    // Granted by its exact address, the same server is reachable.
    let s = scratch();
    let r = attack(
        &s,
        &format!(r#"attack = "http", url = "http://127.0.0.1:{port}/ok""#),
        &format!("[source.grant.network]\nallow = [\"http://127.0.0.1:{port}\"]"),
    )
    .await;
    assert!(r.succeeded(), "{:?} {:#?}", r.error, r.events);
    assert_eq!(loot(&s)["body"], "internal");
    let allowed: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.outcome == Outcome::Allowed && e.capability == Capability::Network)
        .collect();
    assert_eq!(allowed.len(), 1);
    assert!(
        allowed[0].action.starts_with("GET http://127.0.0.1:")
            && allowed[0].detail.starts_with("200"),
        "{:?}",
        allowed[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_resolves_to_loopback_is_refused() {
    let server = TestServer::start(|_| Reply::status(200, "internal"));
    let dns = ScriptedResolver::new();
    dns.script("evil.example.test", &[&["127.0.0.1"]]);
    let rt = runtime_with(dns.clone());
    let s = scratch();
    let r = attack_with(
        &rt,
        &s,
        &format!(
            r#"attack = "http", url = "http://evil.example.test:{}/""#,
            server.port()
        ),
        "[source.grant.network]\nallow = [\"http://*.example.test:*\"]",
    )
    .await;
    refused(
        &s,
        &r,
        "outside this connector's grant",
        Capability::Network,
    )
    .await;
    let ev = refusals(&r, Capability::Network);
    assert!(
        ev[0]
            .detail
            .contains("resolves to 127.0.0.1, a loopback address"),
        "{:?}",
        ev[0]
    );
    assert!(server.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_goes_to_the_address_that_was_checked() {
    // The name answers loopback first, then an address nothing listens on. The host resolves
    // once and connects to what it checked, so the answer changing after the check steers
    // nothing.
    let server = TestServer::start(|_| Reply::status(200, "pinned"));
    let dns = ScriptedResolver::new();
    dns.script("flip.example.test", &[&["127.0.0.1"], &["10.255.255.1"]]);
    let rt = runtime_with(dns.clone());
    let s = scratch();
    let port = server.port();
    let r = attack_with(
        &rt,
        &s,
        &format!(r#"attack = "http", url = "http://flip.example.test:{port}/""#),
        &format!(
            "[source.grant.network]\nallow = [\"http://flip.example.test:{port}\"]\ntimeout_secs = 2"
        ),
    )
    .await;
    assert!(r.succeeded(), "{:?} {:#?}", r.error, r.events);
    assert_eq!(loot(&s)["body"], "pinned");
    assert_eq!(dns.calls("flip.example.test"), 1, "resolved exactly once");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("host"),
        Some(format!("flip.example.test:{port}").as_str()),
        "the Host header is the URL's authority"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_metadata_address_is_checked_again_and_refused() {
    let server = TestServer::start(|seen| {
        if seen.path() == "/start" {
            Reply::status(302, "").header("location", "http://169.254.169.254/latest/meta-data/")
        } else {
            Reply::status(200, "ok")
        }
    });
    let port = server.port();
    let s = scratch();
    let r = attack(
        &s,
        &format!(r#"attack = "http", url = "http://127.0.0.1:{port}/start""#),
        &format!("[source.grant.network]\nallow = [\"http://127.0.0.1:{port}\", \"http://*\"]"),
    )
    .await;
    refused(&s, &r, "169.254.169.254", Capability::Network).await;
    let ev = refusals(&r, Capability::Network);
    assert!(ev[0].detail.contains("metadata"), "{:?}", ev[0]);
    assert_eq!(server.seen().len(), 1, "the first hop was allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_header_cannot_steer_a_request() {
    let server = TestServer::start(|_| Reply::status(200, "ok"));
    let port = server.port();
    let s = scratch();
    let r = attack(
        &s,
        &format!(
            r#"attack = "http", url = "http://127.0.0.1:{port}/", headers = {{ Host = "169.254.169.254" }}"#
        ),
        &format!("[source.grant.network]\nallow = [\"http://127.0.0.1:{port}\"]"),
    )
    .await;
    refused(&s, &r, "host", Capability::Network).await;
    assert!(refusals(&r, Capability::Network)[0].action.contains("host"));
    assert!(server.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_without_a_host_is_refused() {
    let s = scratch();
    let r = attack(
        &s,
        r#"attack = "no-authority""#,
        "[source.grant.network]\nallow = [\"http://*:*\"]",
    )
    .await;
    let err = r.error.as_ref().expect("refused").to_string();
    assert!(err.contains("HttpRequestUriInvalid"), "{err}");
    assert!(!s.path("out/loot.jsonl").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_goes_only_where_it_is_bound() {
    let server = TestServer::start(|_| Reply::status(200, "ok"));
    let port = server.port();
    let dns = ScriptedResolver::new();
    dns.script("api.example.test", &[&["127.0.0.1"]]);
    let rt = runtime_with(dns.clone());
    // SAFETY: a variable only this test reads.
    unsafe { std::env::set_var("SLUICE_TEST_BOUND_TOKEN", "tok-3f9a") };
    let grant = format!(
        r#"
[source.grant.network]
allow = ["http://127.0.0.1:{port}", "http://api.example.test:{port}"]
[[source.grant.secrets]]
name = "token"
env = "SLUICE_TEST_BOUND_TOKEN"
to = ["http://api.example.test:{port}"]
headers = ["Authorization"]
query = ["key"]
"#
    );
    // Sent to the bound host: substituted by the host, in the header and in the query.
    let s = scratch();
    let r = attack_with(
        &rt,
        &s,
        &format!(
            r#"attack = "http", url = "http://api.example.test:{port}/me?key={{{{secret:token}}}}", headers = {{ Authorization = "Bearer {{{{secret:token}}}}" }}"#
        ),
        &grant,
    )
    .await;
    assert!(r.succeeded(), "{:?} {:#?}", r.error, r.events);
    let seen = server.seen();
    assert_eq!(seen[0].header("authorization"), Some("Bearer tok-3f9a"));
    assert_eq!(seen[0].query("key").as_deref(), Some("tok-3f9a"));
    assert!(
        !r.events
            .iter()
            .any(|e| format!("{e:?}").contains("tok-3f9a")),
        "the value is never in an event"
    );

    // Sent anywhere else: refused, and the server never sees it.
    let s = scratch();
    let r = attack_with(
        &rt,
        &s,
        &format!(
            r#"attack = "http", url = "http://127.0.0.1:{port}/steal", headers = {{ X-Leak = "{{{{secret:token}}}}" }}"#
        ),
        &grant,
    )
    .await;
    refused(&s, &r, "outside this connector's grant", Capability::Secret).await;
    let ev = refusals(&r, Capability::Secret);
    assert!(
        ev[0]
            .detail
            .contains("may only be sent to http://api.example.test"),
        "{:?}",
        ev[0]
    );
    assert_eq!(server.seen().len(), 1, "the leak never left the host");
}

/// A server that hands a request's credentials back: a redirect echoing the query, a body
/// echoing the `Authorization` header (after padding, so it spans frames), the same in base64.
fn reflecting_server() -> TestServer {
    TestServer::start(|req: &Seen| {
        use base64::Engine;
        let auth = req.header("authorization").unwrap_or("").to_string();
        match req.path() {
            "/fine" => Reply::json(&serde_json::json!({"ok": true})),
            "/redirect" => Reply::status(302, "").header(
                "location",
                &format!(
                    "/landing?{}",
                    req.target.split_once('?').map_or("", |q| q.1)
                ),
            ),
            "/landing" => Reply::json(&serde_json::json!({"landed": true})),
            "/echo" => Reply::status(
                200,
                &format!("{}you sent: {auth}", "padding ".repeat(40_000)),
            ),
            "/echo64" => Reply::status(
                200,
                &base64::engine::general_purpose::STANDARD.encode(format!("you sent: {auth}")),
            ),
            _ => Reply::status(404, "no"),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_secret_goes_only_where_the_grant_says_and_never_comes_back() {
    let server = reflecting_server();
    let port = server.port();
    const TOKEN: &str = "tok-reflect-7c21d9e0";
    // SAFETY: a variable only this test reads.
    unsafe { std::env::set_var("SLUICE_TEST_REFLECT_TOKEN", TOKEN) };
    let grant = |places: &str| {
        format!(
            "[source.grant.network]\nallow = [\"http://127.0.0.1:{port}\"]\n\
             [[source.grant.secrets]]\nname = \"token\"\nenv = \"SLUICE_TEST_REFLECT_TOKEN\"\n\
             to = [\"http://127.0.0.1:{port}\"]\n{places}"
        )
    };
    let get = |path: &str, headers: &str| {
        format!(
            r#"attack = "http", url = "http://127.0.0.1:{port}{path}", headers = {{ {headers} }}"#
        )
    };
    let bearer = r#"Authorization = "Bearer {{secret:token}}""#;
    let no_leak = |s: &Scratch, r: &RunReport| {
        let everything = format!(
            "{:?} {:?} {}",
            r.error,
            r.events,
            std::fs::read_to_string(s.path("out/loot.jsonl")).unwrap_or_default()
        );
        assert!(
            !everything.contains(TOKEN),
            "the value leaked: {everything}"
        );
    };

    // Honest: by default a bound secret goes in `Authorization`, and the run completes.
    let s = scratch();
    let r = attack(&s, &get("/fine", bearer), &grant("")).await;
    assert!(r.succeeded(), "{:?} {:#?}", r.error, r.events);
    assert_eq!(loot(&s)["status"], 200);
    assert_eq!(
        server.seen().last().unwrap().header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    no_leak(&s, &r);

    // In a header or a query parameter the grant does not name: refused before it leaves.
    let before = server.seen().len();
    for (attack_text, place) in [
        (
            get("/fine", r#"X-Debug = "{{secret:token}}""#),
            "header `x-debug`",
        ),
        (
            get("/fine?key={{secret:token}}", ""),
            "query parameter `key`",
        ),
        (get("/fine?{{secret:token}}=1", ""), "parameter's name"),
        (
            get("/fine?key=a;token={{secret:token}}", ""),
            "holds a `;` beside a placeholder",
        ),
        (
            get("/fine?k%65y=%7B%7Bsecret:token%7D%7D", ""),
            "percent-encoded placeholder",
        ),
        (
            get("/%7B%7Bsecret:token%7D%7D", bearer),
            "not in the URL path",
        ),
    ] {
        let s = scratch();
        let r = attack(&s, &attack_text, &grant("")).await;
        let needle = place;
        let ev = refusals(&r, Capability::Secret);
        assert!(
            ev.iter().any(|e| e.detail.contains(needle)),
            "{attack_text}: {needle:?} in {:#?}",
            r.events
        );
        assert!(!r.succeeded());
        no_leak(&s, &r);
    }
    // TRACE and CONNECT never carry one, whatever the grant.
    for method in ["TRACE", "CONNECT", "trace", "TRACK"] {
        let s = scratch();
        let text = format!("{}, method = \"{method}\"", get("/fine", bearer));
        let r = attack(&s, &text, &grant("")).await;
        let ev = refusals(&r, Capability::Secret);
        assert!(
            ev.iter()
                .any(|e| e.detail.contains(&format!("in a {method} request"))),
            "{method}: {:#?}",
            r.events
        );
        no_leak(&s, &r);
    }
    assert_eq!(server.seen().len(), before, "none of those left the host");

    // Where the grant names it, it goes; a response that hands it back is refused before the
    // connector reads it: a redirect echoing the query, a body echoing the header (raw and
    // base64).
    let places = "headers = [\"Authorization\"]\nquery = [\"key\"]";
    for (attack_text, carrier) in [
        (
            get("/redirect?key={{secret:token}}", ""),
            "`location` header",
        ),
        (get("/echo", bearer), "response body"),
        (get("/echo64", bearer), "response body"),
    ] {
        let s = scratch();
        let r = attack(&s, &attack_text, &grant(places)).await;
        assert!(!r.succeeded(), "{attack_text}: must fail");
        let ev = refusals(&r, Capability::Secret);
        assert!(
            ev.iter()
                .any(|e| e.detail.contains(carrier) && e.detail.contains("secret `token`")),
            "{attack_text}: {carrier} in {:#?}",
            r.events
        );
        no_leak(&s, &r);
    }
    // …and the same grant still lets an honest request through.
    let s = scratch();
    let r = attack(
        &s,
        &get("/fine?key={{secret:token}}", bearer),
        &grant(places),
    )
    .await;
    assert!(r.succeeded(), "{:?} {:#?}", r.error, r.events);
    assert_eq!(
        server.seen().last().unwrap().query("key").as_deref(),
        Some(TOKEN)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_wider_than_the_request_is_refused_before_anything_runs() {
    let s = Scratch::new();
    let source = format!(
        "connector = {}\nconfig = {{ count = 10 }}\n[source.grant.network]\nallow = [\"https://api.example.com\"]",
        toml_path(&connector("source-faker"))
    );
    s.write("c.toml", &source_to_file("wide", &source, ""));
    let r = s.run("c.toml").await;
    refused(&s, &r, "source.grant.network.allow[0]", Capability::Load).await;
    let err = r.error.unwrap().to_string();
    assert!(
        err.contains("outside what `source-faker` requests (no network)"),
        "{err}"
    );
    assert!(!s.path("out/users.jsonl").exists(), "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_keeps_serving_an_honest_sync_during_an_attack() {
    let honest = Scratch::new();
    honest.write(
        "c.toml",
        &faker_to_file("{ count = 3000, seed = 5 }", "jsonl", ""),
    );
    let attacker = scratch();
    attacker.write(
        "c.toml",
        &hostile_conn(
            r#"attack = "http", url = "http://169.254.169.254/latest/meta-data/iam/""#,
            "[source.grant.network]\nallow = [\"http://*\"]",
        ),
    );
    let rt = runtime();
    let rt = Arc::clone(&rt);
    let (h, a) = tokio::join!(
        honest.run_with(&rt, "c.toml"),
        attacker.run_with(&rt, "c.toml")
    );
    assert!(h.succeeded(), "{:?}", h.error);
    assert_eq!(read_jsonl(&honest.path("out/users.jsonl")).len(), 3000);
    assert!(
        h.events.is_empty(),
        "the honest run did nothing at the wall"
    );
    refused(
        &attacker,
        &a,
        "outside this connector's grant",
        Capability::Network,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_against_platform_roots_and_the_connections_ca() {
    let (ca, chain, key) = private_ca();
    let server = TestServer::start_tls(&chain, &key, |_| Reply::status(200, "over tls"));
    let port = server.port();
    let url = format!("https://127.0.0.1:{port}/");
    // Only the platform's roots: the private CA is not trusted, and the connector cannot
    // turn verification off.
    let s = scratch();
    let r = attack(
        &s,
        &format!(r#"attack = "http", url = "{url}""#),
        &format!("[source.grant.network]\nallow = [\"https://127.0.0.1:{port}\"]"),
    )
    .await;
    let err = r.error.as_ref().expect("untrusted certificate").to_string();
    assert!(err.contains("TlsCertificateError"), "{err}");
    assert!(
        r.events
            .iter()
            .any(|e| e.outcome == Outcome::Failed && e.detail.contains("certificate")),
        "{:#?}",
        r.events
    );
    assert!(server.seen().is_empty());
    // The connection trusts its CA: the same request goes through.
    let s = scratch();
    s.write("ca.pem", &ca);
    let r = attack(
        &s,
        &format!(r#"attack = "http", url = "{url}""#),
        &format!(
            "[source.grant.network]\nallow = [\"https://127.0.0.1:{port}\"]\nca_file = \"ca.pem\""
        ),
    )
    .await;
    assert!(r.succeeded(), "{:?} {:#?}", r.error, r.events);
    assert_eq!(loot(&s)["body"], "over tls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_over_the_size_limit_are_cut_off() {
    let big = "x".repeat(3 << 20);
    let server = TestServer::start(move |_| Reply::status(200, &big));
    let port = server.port();
    let s = scratch();
    let r = attack(
        &s,
        &format!(r#"attack = "http", url = "http://127.0.0.1:{port}/big""#),
        &format!(
            "[source.grant.network]\nallow = [\"http://127.0.0.1:{port}\"]\nmax_response_mib = 1"
        ),
    )
    .await;
    assert!(r.error.is_some(), "the connector sees the body cut off");
    assert!(!s.path("out/loot.jsonl").exists());
    assert!(
        r.events
            .iter()
            .any(|e| e.outcome == Outcome::Failed && e.detail.contains("max_response_mib")),
        "{:#?}",
        r.events
    );
}

/// A link planted in a writable directory (by a destination, or anyone) does not carry a later
/// grant anywhere: the grant through it is refused before anything runs, naming the link, and
/// the same grant on a real directory runs.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_through_a_planted_symlink_is_refused_naming_the_link() {
    // `in` (granted at /input) replaced by a link to the data dir, where the keyring and the
    // compiled-code cache live.
    let s = scratch();
    let data = s.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::remove_dir_all(s.path("in")).unwrap();
    std::os::unix::fs::symlink(&data, s.path("in")).unwrap();
    s.write(
        "c.toml",
        &hostile_conn(r#"attack = "read-file", path = "/input/keyring.json""#, ""),
    );
    let (code, _, err) = sluice_tests::sluice_cli(&s, &["run", "c.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("source.grant.dirs[0]") && err.contains("symbolic link at"),
        "{err}"
    );
    assert!(!s.path("out/loot.jsonl").exists());
    // The honest grant of the real directory runs.
    the_granted_file_stays_readable().await;
}

/// Compiled code in the cache runs as native code: a file the host did not write under its own
/// keyring — another keyring's valid entry, or anything planted — is recompiled, never loaded.
#[test]
fn a_compiled_file_the_host_did_not_write_is_never_loaded() {
    use sluice::runtime::{CacheOutcome, Runtime, RuntimeConfig};
    let cache = tempfile::tempdir().unwrap();
    let rt = |key: u8| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            cache_key: Some(zeroize::Zeroizing::new([key; 32])),
            ..RuntimeConfig::default()
        })
        .unwrap()
    };
    let faker = sluice_tests::connector("source-faker");
    let outcome = |key: u8| rt(key).load(&faker).unwrap().cache_outcome();
    assert_eq!(outcome(1), CacheOutcome::Compiled);
    assert_eq!(outcome(1), CacheOutcome::Hit, "its own entry is used");
    // Another keyring's entry, valid code but not this host's: recompiled.
    assert_eq!(outcome(2), CacheOutcome::Compiled);
    assert_eq!(outcome(1), CacheOutcome::Compiled);
    // Planted bytes under the entry's name: recompiled (and the entry replaced).
    let entry = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .unwrap()
        .path();
    let mut planted = std::fs::read(&entry).unwrap();
    let last = planted.len() - 1;
    planted[last] ^= 1;
    std::fs::write(&entry, &planted).unwrap();
    assert_eq!(outcome(1), CacheOutcome::Compiled, "one flipped bit");
    std::fs::write(&entry, b"not code").unwrap();
    assert_eq!(outcome(1), CacheOutcome::Compiled);
    assert_eq!(outcome(1), CacheOutcome::Hit);
}

/// Per-connector caps on what a guest can make the host hold: each misbehaving run stops at its
/// cap with a typed error or refusal, the host lives on, and an honest run beside it completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_connector_makes_the_host_hold_is_capped_and_honest_runs_complete() {
    use sluice::boundary::limits::{HTTP_IN_FLIGHT, RESOURCE_TABLE_ENTRIES, SQL_SESSIONS};
    // WASI resources: past the table's cap the call fails (a trap), not the host.
    let s = scratch();
    let flood = format!(
        r#"attack = "resource-flood", count = {}"#,
        RESOURCE_TABLE_ENTRIES + 10
    );
    let r = attack(&s, &flood, "").await;
    let err = r.error.as_ref().expect("stopped at the cap").to_string();
    assert!(err.contains("resource table"), "{err}");
    let s = scratch();
    let r = attack(&s, r#"attack = "resource-flood", count = 1000"#, "").await;
    assert!(r.succeeded(), "{:?}", r.error);
    assert_eq!(loot(&s)["held"], 1000);

    // HTTP requests in flight: the ones past the cap are refused, with an event.
    let server = TestServer::start(|_| Reply::status(200, "ok"));
    let port = server.port();
    let grant = format!("[source.grant.network]\nallow = [\"http://127.0.0.1:{port}\"]");
    let s = scratch();
    let text = format!(
        r#"attack = "http-flood", url = "http://127.0.0.1:{port}/x", count = {}"#,
        HTTP_IN_FLIGHT + 4
    );
    let r = attack(&s, &text, &grant).await;
    assert!(r.succeeded(), "{:?}", r.error);
    let l = loot(&s);
    assert_eq!(l["ok"], HTTP_IN_FLIGHT, "{l}");
    assert_eq!(l["refused"].as_array().unwrap().len(), 4, "{l}");
    assert!(
        refusals(&r, Capability::Network)
            .iter()
            .any(|e| e.detail.contains("requests are in flight already")),
        "{:#?}",
        r.events
    );
    let s = scratch();
    let text = format!(r#"attack = "http-flood", url = "http://127.0.0.1:{port}/x", count = 8"#);
    let r = attack(&s, &text, &grant).await;
    assert!(r.succeeded(), "{:?}", r.error);
    assert_eq!(loot(&s)["ok"], 8);

    // SQL sessions.
    let s = scratch();
    sqlite_file(&s.data_dir().join("warehouse/src.db")).await;
    let grant = "[[source.grant.sql]]\nname = \"db\"\nsqlite = \"src.db\"";
    let text = format!(r#"attack = "sql-sessions", count = {}"#, SQL_SESSIONS + 2);
    let r = attack(&s, &text, grant).await;
    assert!(r.succeeded(), "{:?}", r.error);
    let l = loot(&s);
    assert_eq!(l["open"], SQL_SESSIONS, "{l}");
    assert!(
        l["refused"][0]
            .as_str()
            .unwrap()
            .contains("SQL sessions are open already"),
        "{l}"
    );
    let text = format!(r#"attack = "sql-sessions", count = {SQL_SESSIONS}"#);
    let s2 = scratch();
    sqlite_file(&s2.data_dir().join("warehouse/src.db")).await;
    let r = attack(&s2, &text, grant).await;
    assert!(r.succeeded(), "{:?}", r.error);
    assert_eq!(loot(&s2)["open"], SQL_SESSIONS);
}

/// A SQLite database with one table at `path`.
pub(crate) async fn sqlite_file(path: &std::path::Path) {
    use sqlx::Connection;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE t (x INTEGER)")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
}

/// An event's text is the guest's (a path here): kept bounded, cut after scrubbing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_with_a_huge_path_is_recorded_cut() {
    use sluice::boundary::limits::EVENT_TEXT_BYTES;
    let s = scratch();
    let path = format!("{}etc/passwd", "../".repeat(1_100));
    let r = attack(&s, &format!(r#"attack = "raw-open", path = "{path}""#), "").await;
    assert!(!r.succeeded());
    let stored = s.store().await.events(r.run_id).await.unwrap();
    let ev = stored
        .iter()
        .find(|e| e.capability == Capability::Filesystem)
        .unwrap_or_else(|| panic!("the refusal is recorded: {:?} {stored:#?}", r.error));
    assert!(
        ev.action.len() <= EVENT_TEXT_BYTES + 40,
        "{}",
        ev.action.len()
    );
    assert!(ev.action.contains("[cut at"), "marked as cut");
}

/// A server that hands the credential back in a trailer (after the body, chunked): refused like
/// a header, before the connector reads the end of the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_echoed_in_a_trailer_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const TOKEN: &str = "tok-trailer-5b7e31c2";
    // SAFETY: a variable only this test reads.
    unsafe { std::env::set_var("SLUICE_TEST_TRAILER_TOKEN", TOKEN) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = tcp.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let echo = if req.contains("/echo") {
                    TOKEN
                } else {
                    "nothing"
                };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Echo\r\n\
                     Connection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Echo: Bearer {echo}\r\n\r\n"
                );
                let _ = tcp.write_all(reply.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    let grant = format!(
        "[source.grant.network]\nallow = [\"http://127.0.0.1:{port}\"]\n\
         [[source.grant.secrets]]\nname = \"token\"\nenv = \"SLUICE_TEST_TRAILER_TOKEN\"\n\
         to = [\"http://127.0.0.1:{port}\"]\n"
    );
    let get = |path: &str| {
        format!(
            r#"attack = "http", url = "http://127.0.0.1:{port}{path}", headers = {{ Authorization = "Bearer {{{{secret:token}}}}", TE = "trailers" }}"#
        )
    };
    let s = scratch();
    let r = attack(&s, &get("/echo"), &grant).await;
    assert!(!r.succeeded(), "must fail: {:#?}", r.events);
    assert!(
        refusals(&r, Capability::Secret)
            .iter()
            .any(|e| e.detail.contains("`x-echo` trailer")),
        "{:#?}",
        r.events
    );
    assert!(!format!("{:?}", r.events).contains(TOKEN));
    // The same server, trailer without the secret: the run completes.
    let s = scratch();
    let r = attack(&s, &get("/plain"), &grant).await;
    assert!(r.succeeded(), "{:?} {:#?}", r.error, r.events);
    assert_eq!(loot(&s)["body"], "hello");
}

/// Found by an outside review: a refusal was traced to the process log (stderr of `sluice run`,
/// the `sluice serve` log) with the guest's text as it came, before anything scrubbed it. A
/// connector holding a secret (its config, marked secret in its spec) put it in a refused URL
/// or path, and the log carried it in clear. The trace is scrubbed and cut like the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_reaches_the_process_log_scrubbed() {
    const TOKEN: &str = "cfg-secret-9b1f77e2a4c0";
    let db = "[[source.grant.sql]]\nname = \"db\"\nsqlite = \"src.db\"";
    for (attack, grant, names_it) in [
        (
            format!(r#"attack = "http", url = "http://denied.example/v1/{TOKEN}/items""#),
            "",
            true,
        ),
        (
            format!(
                r#"attack = "sql", statements = ["DELETE FROM t WHERE x = '{TOKEN}{}'"]"#,
                "x".repeat(10_000)
            ),
            db,
            false,
        ),
    ] {
        let s = scratch();
        sqlite_file(&s.data_dir().join("warehouse/src.db")).await;
        s.write(
            "c.toml",
            &hostile_conn(&format!("{attack}, token = \"{TOKEN}\""), grant),
        );
        // The HTTP attempt fails the run; the SQL one is answered and the run goes on.
        let (_, _, err) = sluice_tests::sluice_cli(&s, &["run", "c.toml"]);
        assert!(
            !err.contains(TOKEN),
            "{attack}: the secret reached stderr:\n{err}"
        );
        let traced: Vec<&str> = err.lines().filter(|l| l.contains("refused:")).collect();
        assert!(
            !traced.is_empty() && (!names_it || traced.iter().any(|l| l.contains("[secret:"))),
            "{}: the refusal is still traced, with the secret's name: {traced:?}",
            &attack[..40]
        );
        assert!(
            traced.iter().all(|l| l.len() < 8 * 1024),
            "{attack}: not cut: {traced:?}"
        );
    }
}

/// Found by an outside review: only answers to requests carrying a placeholder were kept
/// uncompressed and scanned. A server the secret goes to may store it and hand it back later,
/// gzip-compressed, to a request without one; the connector would inflate it itself. A
/// connector holding bound secrets now asks every answer in `identity` and a compressed one is
/// refused; a connector holding none still gets compressed answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_answer_is_refused_to_a_connector_holding_bound_secrets() {
    // SAFETY: a variable only this test reads.
    unsafe { std::env::set_var("SLUICE_TEST_GZIP_TOKEN", "tok-gzip-71c0d9") };
    let server = TestServer::start(|req: &Seen| {
        let asked = req.header("accept-encoding").unwrap_or("").to_string();
        if req.path() == "/gz" {
            Reply::status(200, "\u{1f}\u{8b} pretend gzip").header("Content-Encoding", "gzip")
        } else {
            Reply::status(200, &format!("plain, asked {asked}"))
        }
    });
    let port = server.port();
    let allow = format!("[source.grant.network]\nallow = [\"http://127.0.0.1:{port}\"]\n");
    let bound = format!(
        "{allow}[[source.grant.secrets]]\nname = \"token\"\nenv = \"SLUICE_TEST_GZIP_TOKEN\"\n\
         to = [\"http://127.0.0.1:{port}\"]\n"
    );
    // No placeholder in the request, the header asks for gzip: a bound secret is held all
    // the same.
    let get = |path: &str| {
        format!(
            r#"attack = "http", url = "http://127.0.0.1:{port}{path}", headers = {{ Accept-Encoding = "gzip" }}"#
        )
    };
    let s = scratch();
    let r = attack(&s, &get("/gz"), &bound).await;
    assert!(!r.succeeded(), "must fail: {:#?}", r.events);
    assert!(
        r.events
            .iter()
            .any(|e| e.outcome == Outcome::Refused && e.detail.contains("`gzip`-encoded")),
        "{:#?}",
        r.events
    );
    let s = scratch();
    let r = attack(&s, &get("/plain"), &bound).await;
    assert!(r.succeeded(), "{:?} {:#?}", r.error, r.events);
    assert!(
        server
            .seen()
            .iter()
            .all(|q| q.header("accept-encoding") == Some("identity")),
        "the host asks for identity on behalf of a connector holding secrets"
    );
    // Without bound secrets, a compressed answer reaches the connector.
    let s = scratch();
    let r = attack(&s, &get("/gz"), &allow).await;
    assert!(r.succeeded(), "{:?} {:#?}", r.error, r.events);
}
