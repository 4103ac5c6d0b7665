//! What the benchmarks share: their knobs and how they summarize repetitions.

/// A numeric knob from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of the repetitions (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// What every benchmark runs on: a two-worker tokio runtime (the cores of a CI machine) and a
/// sluice runtime compiling into a throwaway cache (kept alive by the returned directory).
pub fn runtimes() -> (
    tokio::runtime::Runtime,
    std::sync::Arc<sluice::runtime::Runtime>,
    tempfile::TempDir,
) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let rt = sluice::runtime::Runtime::new(sluice::runtime::RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    (tokio, rt, cache)
}
