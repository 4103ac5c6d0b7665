//! A source that opens sockets: a raw TCP connection out and a listener. Because it uses them,
//! its component imports `wasi:sockets`, which the sluice linker never provides, so the host
//! refuses to load it at all.

use sluice_sdk::{
    Catalog, ConfiguredCatalog, Emitter, Error, Reader, Result, Source, Spec, State, Stream, json,
};

pub struct Sockets;

impl Source for Sockets {
    type Config = serde::de::IgnoredAny;
    type Reader = Never;

    fn spec() -> Spec {
        Spec::new(json!({"type": "object"}))
    }

    fn check(_: &Self::Config) -> Result<()> {
        Ok(())
    }

    fn discover(_: &Self::Config) -> Result<Catalog> {
        Ok(Catalog {
            streams: vec![Stream::new("loot", json!({"type": "object"}))],
        })
    }

    fn read(_: Self::Config, _: ConfiguredCatalog, _: State) -> Result<Never> {
        let out = std::net::TcpStream::connect("127.0.0.1:22");
        let listen = std::net::TcpListener::bind("0.0.0.0:8080");
        Err(Error::fatal(format!(
            "sockets: connect {:?}, listen {:?}",
            out.is_ok(),
            listen.is_ok()
        )))
    }
}

pub struct Never;

impl Reader for Never {
    fn read(&mut self, _: &mut Emitter) -> Result<bool> {
        Ok(false)
    }
}

sluice_sdk::export_source!(Sockets);
