//! The boundary benchmark: what the host's promises about data cost.
//!
//! 1. The 1,000,000-user sync (`sluice::sync::run`, sandboxed `source-faker` → `destination-file`,
//!    store, audit log and all) three ways, interleaved so machine noise hits each alike:
//!    passthrough, with a PII policy (every detector plus four field rules), and with the policy
//!    and spilling on.
//! 2. The host's work per batch on one core: validation alone (what passthrough does) next to
//!    validation + masking; and the seven detectors alone over every string value.
//! 3. Encryption on one core: AES-256-GCM in the sealed-file format, sealing and opening, next
//!    to a plain copy of the same bytes; and the spill round trip (seal, write, read, open) of the
//!    users' batches with a stalled destination.
//!
//! `cargo xtask bench --bench boundary`. Knobs: SLUICE_BENCH_USERS (default 1,000,000),
//! SLUICE_BENCH_REPS (default 3).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use sluice::boundary::crypto::stream::{SealedReader, SealedWriter, open_all, seal_all};
use sluice::boundary::crypto::{Keyring, KeyringSource};
use sluice::boundary::pii::{Entity, MaskStats, Masker};
use sluice::connection::Connection;
use sluice::protocol::{Batch, ConfiguredCatalog, Message, SourceReader};
use sluice::runtime::{Runtime, Sandbox};
use sluice::store::Store;
use sluice::sync::spill::{SpillConfig, spool};
use sluice::sync::{RunOptions, validate};
use sluice_tests::bench::{env_u64, median};
use sluice_tests::{Scratch, connector};

/// Every detector (redact on a finding) and four field rules on the users stream.
const POLICY: &str = r#"
[pii]
[[pii.fields]]
stream = "users"
path = "email"
rule = "hash"
[[pii.fields]]
stream = "users"
path = "telephone"
rule = "mask"
keep_last = 4
[[pii.fields]]
stream = "users"
path = "created_at"
rule = "generalize"
to = "month"
[[pii.fields]]
stream = "users"
path = "address.street_name"
rule = "redact"
"#;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Passthrough,
    Policy,
    PolicySpill,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Passthrough => "passthrough",
            Mode::Policy => "PII policy",
            Mode::PolicySpill => "PII policy + spill",
        }
    }
}

fn connection(users: u64, mode: Mode) -> String {
    let mut extra = String::from("[[streams]]\nname = \"users\"\n");
    if mode == Mode::PolicySpill {
        extra.push_str("[limits]\nspill_mib = 1024\n");
    }
    if mode != Mode::Passthrough {
        extra.push_str(POLICY);
    }
    // Top-level keys come before every table.
    format!(
        "workspace = \"bench\"\n{}",
        sluice_tests::faker_to_file(&format!("{{ count = {users}, seed = 1 }}"), "jsonl", &extra)
    )
}

struct Moved {
    secs: f64,
    records: u64,
    bytes: u64,
    spilled: u64,
}

fn sync(tokio: &tokio::runtime::Runtime, rt: &Runtime, users: u64, mode: Mode) -> Moved {
    let s = Scratch::new();
    s.write("c.toml", &connection(users, mode));
    std::fs::create_dir_all(s.path("out")).unwrap();
    let conn = Connection::load(&s.path("c.toml")).unwrap();
    tokio.block_on(async {
        let store = Store::open(&s.data_dir()).await.unwrap();
        let t = Instant::now();
        let r = sluice::sync::run(rt, &store, &conn, RunOptions::default())
            .await
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(r.succeeded(), "{:?}", r.error_message);
        assert_eq!(r.records(), users);
        if mode != Mode::Passthrough {
            assert!(r.masked.total() >= 4 * users, "the policy applied");
        }
        Moved {
            secs,
            records: r.records(),
            bytes: r.bytes(),
            spilled: r.spilled.bytes,
        }
    })
}

fn batches(
    tokio: &tokio::runtime::Runtime,
    rt: &Runtime,
    users: u64,
) -> (ConfiguredCatalog, Vec<Batch>) {
    let config = serde_json::json!({"count": users, "seed": 1}).to_string();
    let conn = Connection::parse(
        std::path::Path::new("c.toml"),
        &connection(users, Mode::Passthrough),
    )
    .unwrap();
    tokio.block_on(async {
        let c = rt.load(&connector("source-faker")).unwrap();
        let mut src = c.source(rt, &Sandbox::default()).await.unwrap();
        let catalog = conn.configure(&src.discover(&config).await.unwrap(), &{
            let d = rt.load(&connector("destination-file")).unwrap();
            d.destination(rt, &Sandbox::default())
                .await
                .unwrap()
                .spec()
                .await
                .unwrap()
        });
        let catalog = catalog.unwrap();
        let mut r = src.read(&config, &catalog, &[]).await.unwrap();
        let mut out = Vec::new();
        while let Some(m) = r.next(1000).await.unwrap() {
            if let Message::Batch(b) = m {
                out.push(b);
            }
        }
        (catalog, out)
    })
}

fn mbs(bytes: u64, secs: f64) -> String {
    format!("{:.0} MB/s", bytes as f64 / secs / 1e6)
}

fn main() {
    let users = env_u64("SLUICE_BENCH_USERS", 1_000_000);
    let reps = env_u64("SLUICE_BENCH_REPS", 3).max(1);
    let (tokio, rt, _cache) = sluice_tests::bench::runtimes();

    // 1. The whole sync.
    sync(&tokio, &rt, 10_000, Mode::Policy); // warm up: compile into the cache
    let modes = [Mode::Passthrough, Mode::Policy, Mode::PolicySpill];
    let mut runs: Vec<Vec<Moved>> = modes.iter().map(|_| Vec::new()).collect();
    for _ in 0..reps {
        for (i, m) in modes.iter().enumerate() {
            runs[i].push(sync(&tokio, &rt, users, *m));
        }
    }
    println!(
        "## {users} faker users, sandboxed, through `sluice run` (store, audit, fsync), median of {reps}\n"
    );
    println!("| sync | time | users/s | MB/s | vs passthrough | spilled |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let base = median(runs[0].iter().map(|m| m.secs).collect());
    let mut policy_ratio = 0.0;
    for (m, r) in modes.iter().zip(&runs) {
        let secs = median(r.iter().map(|m| m.secs).collect());
        let spilled = r.iter().map(|m| m.spilled).max().unwrap_or(0);
        let ratio = base / secs;
        if *m == Mode::Policy {
            policy_ratio = ratio;
        }
        println!(
            "| {} | {secs:.2} s | {:.0} | {} | **{ratio:.2}** | {} |",
            m.name(),
            r[0].records as f64 / secs,
            mbs(r[0].bytes, secs),
            if spilled > 0 {
                format!("up to {:.0} MiB", spilled as f64 / (1 << 20) as f64)
            } else {
                "nothing (the destination kept up)".into()
            },
        );
    }
    println!(
        "\nthe PII policy keeps {:.0} % of passthrough throughput (target ≥ 65 %: {})\n",
        policy_ratio * 100.0,
        if policy_ratio >= 0.65 {
            "met"
        } else {
            "MISSED"
        }
    );

    // 2. The host's work per batch, one core.
    let sample = users.min(300_000);
    let (catalog, batches) = batches(&tokio, &rt, sample);
    let bytes: u64 = batches.iter().map(|b| b.records.len() as u64).sum();
    let conn = Connection::parse(
        std::path::Path::new("c.toml"),
        &connection(sample, Mode::Policy),
    )
    .unwrap();
    let ring = Arc::new(Keyring::generate(KeyringSource::Env));
    let masker = Masker::new(conn.pii.clone().unwrap(), ring.pseudonym_key("bench"));
    let (mut plain, mut masked) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        for b in &batches {
            let mut b = b.clone();
            validate::batch(&mut b, &catalog, 64 << 20).unwrap();
            std::hint::black_box(b);
        }
        plain.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut stats = MaskStats::default();
        for b in &batches {
            // What the wall does with a policy: the masker's walk is the record check.
            let mut b = b.clone();
            validate::envelope(&mut b, &catalog, 64 << 20).unwrap();
            std::hint::black_box(masker.apply(&b.stream, &b.records, &mut stats).unwrap());
        }
        masked.push(t.elapsed().as_secs_f64());
    }
    let (plain, masked) = (median(plain), median(masked));
    println!("## The host's work per batch, one core ({sample} users, {bytes} bytes)\n");
    println!("| work | µs/user | MB/s per core |\n| --- | --- | --- |");
    println!(
        "| copy + record check (passthrough) | {:.2} | {} |",
        plain / sample as f64 * 1e6,
        mbs(bytes, plain)
    );
    println!(
        "| copy + PII policy (its walk is the record check) | {:.2} | {} |",
        masked / sample as f64 * 1e6,
        mbs(bytes, masked)
    );
    println!(
        "| what the policy adds | {:.2} | {} |\n",
        (masked - plain) / sample as f64 * 1e6,
        mbs(bytes, masked - plain)
    );

    // 2b. The detectors alone, one core, over every string value of the same users (what
    // they read when no field rule stands in front of them). The values lie one after another
    // in one buffer, in record order, as the walk finds them in a batch: two million separate
    // allocations would time the allocator's scatter as much as the detectors.
    let mut arena = String::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for b in &batches {
        for line in b.records.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            collect_strings(&v, &mut arena, &mut spans);
        }
    }
    let strings: Vec<&str> = spans.iter().map(|&(a, b)| &arena[a..b]).collect();
    let text_bytes = arena.len() as u64;
    let mut detect = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let mut found = 0usize;
        for s in &strings {
            found += sluice::boundary::pii::detect::find(s, &Entity::ALL).len();
        }
        std::hint::black_box(found);
        detect.push(t.elapsed().as_secs_f64());
    }
    let detect = median(detect);
    println!(
        "the seven detectors alone, one core: {} over {} string values ({text_bytes} bytes; \
         target ≥ 100 MB/s: {})\n",
        mbs(text_bytes, detect),
        strings.len(),
        if text_bytes as f64 / detect / 1e6 >= 100.0 {
            "met"
        } else {
            "MISSED"
        }
    );

    // 3. Encryption, one core.
    let data: Vec<u8> = batches
        .iter()
        .flat_map(|b| b.records.iter().copied())
        .collect();
    // Sealing to a sink and opening to a sink time the cipher and the format's own copies;
    // into memory adds what any copy into fresh memory costs (the baseline).
    let (mut copy, mut seal, mut open, mut seal_mem, mut open_mem) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps.max(5) {
        let t = Instant::now();
        std::hint::black_box(data.clone());
        copy.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut w = SealedWriter::new(&ring, "bench", std::io::sink()).unwrap();
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        seal.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let sealed = seal_all(&ring, "bench", &data);
        seal_mem.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut r = SealedReader::new(&ring, "bench", &sealed[..]).unwrap();
        let n = std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        open.push(t.elapsed().as_secs_f64());
        assert_eq!(n as usize, data.len());
        let t = Instant::now();
        let back = open_all(&ring, "bench", &sealed).unwrap();
        open_mem.push(t.elapsed().as_secs_f64());
        assert_eq!(back.len(), data.len());
    }
    let [copy, seal, open, seal_mem, open_mem] = [copy, seal, open, seal_mem, open_mem].map(median);
    let gbs = |secs: f64| data.len() as f64 / secs / 1e9;
    println!(
        "## Encryption, one core ({:.0} MB of records)\n",
        data.len() as f64 / 1e6
    );
    println!("| operation | GB/s | vs a copy into fresh memory |\n| --- | --- | --- |");
    println!(
        "| copy into fresh memory (baseline) | {:.2} | 1.00 |",
        gbs(copy)
    );
    for (what, secs) in [
        ("AES-256-GCM seal, STREAM in 64 KiB chunks, to a sink", seal),
        ("AES-256-GCM open, to a sink", open),
        ("seal into fresh memory", seal_mem),
        ("open into fresh memory", open_mem),
    ] {
        println!("| {what} | {:.2} | {:.2} |", gbs(secs), copy / secs);
    }
    println!(
        "\nAES-GCM sealing {:.2} GB/s per core (target ≥ 1 GB/s: {})\n",
        gbs(seal),
        if gbs(seal) >= 1.0 { "met" } else { "MISSED" }
    );

    // The spill round trip: the destination stalls until the source is done, so what the
    // spooler cannot hold in memory (a segment's worth) goes through sealed segments and back.
    let mut spill = Vec::new();
    let mut spill_segments = 0;
    for _ in 0..reps {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpillConfig {
            dir: dir.path().to_path_buf(),
            ring: ring.clone(),
            identity: "run-1/attempt-1".into(),
            max_bytes: u64::MAX,
            segment_bytes: sluice::sync::spill::SEGMENT_BYTES,
        };
        let batches = batches.clone();
        let count = batches.len();
        let (secs, segments) = tokio.block_on(async move {
            let (src_tx, src_rx) = tokio::sync::mpsc::channel(8);
            let (dst_tx, mut dst_rx) = tokio::sync::mpsc::channel(8);
            let t = Instant::now();
            let spooler = tokio::spawn(spool(cfg, src_rx, dst_tx));
            for b in batches {
                src_tx.send(Message::Batch(b)).await.unwrap();
            }
            drop(src_tx);
            let mut n = 0;
            while dst_rx.recv().await.is_some() {
                n += 1;
            }
            let stats = spooler.await.unwrap().unwrap();
            assert_eq!(n, count, "every batch comes back");
            (t.elapsed().as_secs_f64(), stats.segments)
        });
        spill.push(secs);
        spill_segments = segments;
    }
    let spill = median(spill);
    println!(
        "spill round trip with a stalled destination ({spill_segments} sealed segments; seal + \
         write + read + open, one spooler task): {} ({:.2} GB/s; the plain copy above: {:.2} GB/s)",
        mbs(bytes, spill),
        bytes as f64 / spill / 1e9,
        gbs(copy)
    );
}

/// Every string value in `v`, depth first, appended to `arena` with its span.
fn collect_strings(v: &serde_json::Value, arena: &mut String, spans: &mut Vec<(usize, usize)>) {
    match v {
        serde_json::Value::String(s) => {
            spans.push((arena.len(), arena.len() + s.len()));
            arena.push_str(s);
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_strings(v, arena, spans)),
        serde_json::Value::Object(m) => m.values().for_each(|v| collect_strings(v, arena, spans)),
        _ => {}
    }
}
