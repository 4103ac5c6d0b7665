//! The smallest useful source: `count` greetings, resumable. The README walks through it.

use sluice_sdk::{
    Catalog, ConfiguredCatalog, Emitter, Reader, Result, Source, Spec, State, Stream, json,
};

pub struct Hello;

#[derive(serde::Deserialize)]
pub struct Config {
    count: u64,
}

impl Source for Hello {
    type Config = Config;
    type Reader = HelloReader;

    fn spec() -> Spec {
        Spec::new(json!({"type": "object", "properties": {"count": {"type": "integer"}}}))
    }

    fn check(_: &Config) -> Result<()> {
        Ok(())
    }

    fn discover(_: &Config) -> Result<Catalog> {
        Ok(Catalog {
            streams: vec![Stream::new("greetings", json!({"type": "object"}))],
        })
    }

    fn read(config: Config, _: ConfiguredCatalog, state: State) -> Result<HelloReader> {
        Ok(HelloReader {
            next: state.decode("greetings")?.unwrap_or(0),
            count: config.count,
        })
    }
}

pub struct HelloReader {
    next: u64,
    count: u64,
}

impl Reader for HelloReader {
    fn read(&mut self, out: &mut Emitter) -> Result<bool> {
        while out.wants_more() && self.next < self.count {
            self.next += 1;
            out.record("greetings", &json!({ "id": self.next, "text": "hello" }))?;
        }
        out.checkpoint("greetings", &self.next)?;
        Ok(self.next < self.count)
    }
}

sluice_sdk::export_source!(Hello);
