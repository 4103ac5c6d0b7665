//! The spine benchmark: faker users through the sandbox into destination-file, next to the same
//! two connectors compiled natively and driven by the same host pump, in the same process, runs
//! interleaved so machine noise hits both alike. Also: cold start from the compiled cache, warm
//! instantiation with the pooling allocator, and RSS per idle instance.
//!
//! `cargo xtask bench` (it builds the connectors first). Knobs: SLUICE_BENCH_USERS (default
//! 1,000,000), SLUICE_BENCH_REPS (default 5).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sluice::protocol::{DestinationWriter, SourceReader};
use sluice::runtime::{Pooling, Runtime, RuntimeConfig, Sandbox};
use sluice::sync::{PumpConfig, pump};
use sluice_tests::bench::{env_u64, median};
use sluice_tests::native::{self, NoCheckpoints};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The users stream only: the Airbyte-shaped ~500-byte record the targets are about.
fn users_catalog(config: &str) -> sluice::protocol::ConfiguredCatalog {
    let mut c = native::host_catalog(
        &sluice_sdk::source::wire::discover::<source_faker::Faker>(config).unwrap(),
    );
    c.streams.retain(|s| s.stream.name == "users");
    c
}

struct Moved {
    secs: f64,
    records: u64,
    bytes: u64,
}

async fn drive<R: SourceReader + 'static, W: DestinationWriter>(
    r: R,
    w: W,
    catalog: sluice::protocol::ConfiguredCatalog,
) -> Moved {
    let start = Instant::now();
    let out = pump(
        r,
        w,
        Arc::new(catalog),
        NoCheckpoints,
        PumpConfig::default(),
        Default::default(),
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    out.result.expect("the benchmark run succeeds");
    Moved {
        secs,
        records: out.stats.iter().map(|s| s.records).sum(),
        bytes: out.stats.iter().map(|s| s.bytes).sum(),
    }
}

async fn native_run(config: &str, out: &Path) -> Moved {
    let catalog = users_catalog(config);
    let reader =
        native::NativeReader::<source_faker::Faker>::open("source-faker", config, &catalog, &[])
            .unwrap();
    let dest = serde_json::json!({"path": out, "format": "jsonl"}).to_string();
    let writer = native::NativeWriter::<destination_file::FileDestination>::open(
        "destination-file",
        &dest,
        &catalog,
    )
    .unwrap();
    drive(reader, writer, catalog).await
}

async fn wasm_run(rt: &Runtime, config: &str, out: &Path) -> Moved {
    let catalog = users_catalog(config);
    let source = rt.load(&sluice_tests::connector("source-faker")).unwrap();
    let dest = rt
        .load(&sluice_tests::connector("destination-file"))
        .unwrap();
    let src_box = Sandbox::default();
    let dst_box = Sandbox {
        dirs: vec![sluice::capability::Preopen {
            host: out.to_path_buf(),
            guest: "/output".into(),
            access: sluice::capability::Access::ReadWrite,
        }],
        ..Sandbox::default()
    };
    let reader = source
        .source(rt, &src_box)
        .await
        .unwrap()
        .read(&config.to_string(), &catalog, &[])
        .await
        .unwrap();
    let dest_config = r#"{"path":"/output","format":"jsonl"}"#.to_string();
    let writer = dest
        .destination(rt, &dst_box)
        .await
        .unwrap()
        .open(&dest_config, &catalog)
        .await
        .unwrap();
    drive(reader, writer, catalog).await
}

/// Drain a reader, keeping the batches.
async fn drain<R: SourceReader>(mut r: R) -> (f64, Vec<sluice::protocol::Batch>) {
    let t = Instant::now();
    let mut batches = Vec::new();
    while let Some(m) = r.next(1000).await.unwrap() {
        if let sluice::protocol::Message::Batch(b) = m {
            batches.push(b);
        }
    }
    (t.elapsed().as_secs_f64(), batches)
}

/// Each stage alone, one after the other, to show where the time goes.
fn stages(tokio: &tokio::runtime::Runtime, rt: &Runtime, users: u64) {
    let config = serde_json::json!({"count": users, "seed": 1}).to_string();
    let catalog = users_catalog(&config);
    let per = |secs: f64| {
        format!(
            "{:.2} µs/user ({:.0} users/s)",
            secs / users as f64 * 1e6,
            users as f64 / secs
        )
    };
    println!("## Where the time goes ({users} users, each stage alone)\n");
    println!("| stage | native | sandboxed |\n| --- | --- | --- |");
    let (native_src, batches) = tokio.block_on(drain(
        native::NativeReader::<source_faker::Faker>::open("f", &config, &catalog, &[]).unwrap(),
    ));
    let wasm_src = tokio.block_on(async {
        let c = rt.load(&sluice_tests::connector("source-faker")).unwrap();
        let r = c
            .source(rt, &Sandbox::default())
            .await
            .unwrap()
            .read(&config, &catalog, &[])
            .await
            .unwrap();
        drain(r).await.0
    });
    println!(
        "| source-faker: generate + serialize | {} | {} |",
        per(native_src),
        per(wasm_src)
    );
    let t = Instant::now();
    for b in &batches {
        let mut b = b.clone();
        sluice::sync::validate::batch(&mut b, &catalog, 64 << 20).unwrap();
    }
    let validate = t.elapsed().as_secs_f64();
    println!(
        "| host: validate at the wall (incl. a copy) | {} | same |",
        per(validate)
    );
    let out = tempfile::tempdir().unwrap();
    let native_dst = tokio.block_on(async {
        let dest = serde_json::json!({"path": out.path(), "format": "jsonl"}).to_string();
        let mut w =
            native::NativeWriter::<destination_file::FileDestination>::open("d", &dest, &catalog)
                .unwrap();
        let t = Instant::now();
        for b in &batches {
            w.write(b.clone()).await.unwrap();
        }
        w.flush().await.unwrap();
        t.elapsed().as_secs_f64()
    });
    let out2 = tempfile::tempdir().unwrap();
    let wasm_dst = tokio.block_on(async {
        let c = rt
            .load(&sluice_tests::connector("destination-file"))
            .unwrap();
        let sandbox = Sandbox {
            dirs: vec![sluice::capability::Preopen {
                host: out2.path().to_path_buf(),
                guest: "/output".into(),
                access: sluice::capability::Access::ReadWrite,
            }],
            ..Sandbox::default()
        };
        let mut w = c
            .destination(rt, &sandbox)
            .await
            .unwrap()
            .open(&r#"{"path":"/output"}"#.to_string(), &catalog)
            .await
            .unwrap();
        let t = Instant::now();
        for b in &batches {
            w.write(b.clone()).await.unwrap();
        }
        w.flush().await.unwrap();
        t.elapsed().as_secs_f64()
    });
    println!(
        "| destination-file: write + fsync | {} | {} |\n",
        per(native_dst),
        per(wasm_dst)
    );
}

fn us(d: f64) -> String {
    format!("{:.1} µs", d * 1e6)
}

fn main() {
    let users = env_u64("SLUICE_BENCH_USERS", 1_000_000);
    let reps = env_u64("SLUICE_BENCH_REPS", 5).max(1);
    let (tokio, rt, cache) = sluice_tests::bench::runtimes();
    let config = serde_json::json!({"count": users, "seed": 1}).to_string();

    println!("## Throughput: {users} faker users → destination-file (JSONL), median of {reps}\n");
    let (mut n, mut w) = (Vec::new(), Vec::new());
    let mut last = None;
    // Warm up: compile into the cache, fault in the file system.
    tokio.block_on(async {
        let d = tempfile::tempdir().unwrap();
        wasm_run(
            &rt,
            &serde_json::json!({"count": 10_000, "seed": 1}).to_string(),
            d.path(),
        )
        .await;
    });
    for _ in 0..reps {
        let d = tempfile::tempdir().unwrap();
        n.push(tokio.block_on(native_run(&config, d.path())));
        let d = tempfile::tempdir().unwrap();
        let m = tokio.block_on(wasm_run(&rt, &config, d.path()));
        w.push(m);
        last = Some(d);
    }
    drop(last);
    let row = |name: &str, runs: &[Moved]| {
        let secs = median(runs.iter().map(|m| m.secs).collect());
        let records = runs[0].records;
        let bytes = runs[0].bytes;
        assert_eq!(records, users, "every user moved");
        println!(
            "| {name} | {:.3} s | {:.0} users/s | {:.1} MB/s | {} B/user |",
            secs,
            records as f64 / secs,
            bytes as f64 / secs / 1e6,
            bytes / records.max(1)
        );
        secs
    };
    println!("| path | time | records/s | MB/s | record size |\n| --- | --- | --- | --- | --- |");
    let native_secs = row("native, in-process (ceiling)", &n);
    let wasm_secs = row("sandboxed components", &w);
    let ratio = native_secs / wasm_secs;
    let rate = users as f64 / wasm_secs;
    println!(
        "\nsandboxed / native = **{ratio:.2}** (target ≥ 0.5: {}); sandboxed rate {:.0} users/s (target ≥ 200,000: {})\n",
        if ratio >= 0.5 { "met" } else { "MISSED" },
        rate,
        if rate >= 200_000.0 { "met" } else { "MISSED" },
    );

    stages(&tokio, &rt, users.min(300_000));

    println!("## Start-up per connector, median of 200\n");
    println!(
        "| connector | load from compiled cache | instantiate (on demand) | cold start total (target < 2 ms) |\n| --- | --- | --- | --- |"
    );
    for name in ["source-faker", "destination-file"] {
        let path = sluice_tests::connector(name);
        let (mut load, mut inst) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            let t = Instant::now();
            let c = rt.load(&path).unwrap();
            load.push(t.elapsed().as_secs_f64());
            assert_eq!(c.cache_outcome(), sluice::runtime::CacheOutcome::Hit);
            let t = Instant::now();
            tokio.block_on(async {
                match c.kind() {
                    sluice::protocol::ConnectorKind::Source => {
                        drop(c.source(&rt, &Sandbox::default()).await.unwrap())
                    }
                    sluice::protocol::ConnectorKind::Destination => {
                        drop(c.destination(&rt, &Sandbox::default()).await.unwrap())
                    }
                }
            });
            inst.push(t.elapsed().as_secs_f64());
        }
        let (l, i) = (median(load), median(inst));
        println!(
            "| {name} | {} | {} | {} ({}) |",
            us(l),
            us(i),
            us(l + i),
            if l + i < 0.002 { "met" } else { "MISSED" }
        );
    }

    println!("\n## Warm instantiation and idle memory, 1,000 instances alive\n");
    println!("| allocator | instantiate (median) | RSS per idle instance |\n| --- | --- | --- |");
    for pooling in [false, true] {
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            pooling: pooling.then_some(Pooling {
                instances: 1100,
                max_memory: 64 << 20,
            }),
            ..Default::default()
        })
        .unwrap();
        let c = rt.load(&sluice_tests::connector("source-faker")).unwrap();
        let sandbox = Sandbox::default();
        // Warm the allocator's slots once.
        tokio.block_on(async {
            for _ in 0..20 {
                drop(c.source(&rt, &sandbox).await.unwrap());
            }
        });
        let before = rss_bytes();
        let mut alive = Vec::with_capacity(1000);
        let mut times = Vec::with_capacity(1000);
        tokio.block_on(async {
            for _ in 0..1000 {
                let t = Instant::now();
                let i = c.source(&rt, &sandbox).await.unwrap();
                times.push(t.elapsed().as_secs_f64());
                alive.push(i);
            }
        });
        let per = (rss_bytes().saturating_sub(before)) as f64 / 1000.0;
        let t = median(times);
        println!(
            "| {} | {} {} | {:.1} KiB {} |",
            if pooling {
                "pooling, InstancePre"
            } else {
                "on demand, InstancePre"
            },
            us(t),
            if pooling {
                if t < 50e-6 {
                    "(target < 50 µs: met)"
                } else {
                    "(target < 50 µs: MISSED)"
                }
            } else {
                ""
            },
            per / 1024.0,
            if per <= 1024.0 * 1024.0 {
                "(target ≤ 1 MiB: met)"
            } else {
                "(target ≤ 1 MiB: MISSED)"
            },
        );
        drop(alive);
    }
}
