use std::path::PathBuf;
use sluice::runtime::{Runtime, RuntimeConfig, Sandbox};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(std::env::args().nth(1).unwrap());
    let rt = Runtime::new(RuntimeConfig { cache_dir: Some("/tmp/sluice-cache".into()), ..Default::default() })?;
    let t = std::time::Instant::now();
    let c = rt.load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("loaded {} {:?} in {:?} ({:?})", c.name(), c.kind(), t.elapsed(), c.cache_outcome());
    let mut s = c.source(&rt, &Sandbox::default()).await?;
    println!("{:?}", s.spec().await?);
    println!("{}", serde_json::to_string(&s.discover(&"{\"count\":3}".to_string()).await?)?.len());
    Ok(())
}
