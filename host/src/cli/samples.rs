//! `sluice samples RUN_ID`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use sluice::boundary::crypto::stream::SealedReader;

#[derive(Debug, clap::Args)]
pub struct SamplesArgs {
    /// The run.
    run_id: i64,
}

pub async fn run(ctx: &super::Ctx, args: SamplesArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let files = store.samples(args.run_id).await?;
    if files.is_empty() {
        eprintln!(
            "run {} kept no failed-record samples (they are off unless the connection sets \
             `[failed_records] samples = N`)",
            args.run_id
        );
    }
    for (file, _) in files {
        let Some(identity) = sluice::sync::wall::Samples::identity_of(Path::new(&file)) else {
            anyhow::bail!("unexpected sample file name {file}");
        };
        let f = std::fs::File::open(store.dir().join(&file))?;
        let mut r = SealedReader::new(store.keyring(), &identity, f)?;
        let mut text = String::new();
        r.read_to_string(&mut text)?;
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}
