//! `destination-file`: one file per stream in the directory granted to it, as JSON lines or CSV.
//!
//! `overwrite` truncates a stream's file when the write opens, `append` adds to it. `flush`
//! fsyncs every file written since the last flush, so once it returns the data survives a crash;
//! a line left half-written by a crash after that is cut off when the file is next opened for
//! appending.

mod csv_file;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_sdk::{
    Batch, ConfiguredCatalog, ConfiguredStream, Destination, DestinationMode, Error, Result, Spec,
    Writer, json,
};

use csv_file::CsvFile;

/// The file format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line, exactly as the source emitted it.
    #[default]
    Jsonl,
    /// A header from the stream's schema, then one row per record; nested values as JSON text.
    Csv,
}

/// The connector's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The directory to write into, as the connector sees it (the grant decides which host
    /// directory that is).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// The file format.
    #[serde(default)]
    pub format: Format,
}

fn default_path() -> PathBuf {
    PathBuf::from("/output")
}

/// The destination.
pub struct FileDestination;

impl Destination for FileDestination {
    type Config = Config;
    type Writer = FileWriter;

    fn spec() -> Spec {
        Spec::new(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Files",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "path": {
                    "type": "string", "default": "/output",
                    "description": "Directory to write into, as granted to the connector."
                },
                "format": {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"}
            }
        }))
        .destination_modes(&[DestinationMode::Append, DestinationMode::Overwrite])
    }

    fn check(config: &Config) -> Result<()> {
        let meta = std::fs::metadata(&config.path).map_err(|e| {
            Error::config(format!(
                "cannot use output directory {}: {e} (is it granted to the connector?)",
                config.path.display()
            ))
        })?;
        if !meta.is_dir() {
            return Err(Error::config(format!(
                "{} is not a directory",
                config.path.display()
            )));
        }
        Ok(())
    }

    fn open(config: Config, catalog: ConfiguredCatalog) -> Result<FileWriter> {
        Self::check(&config)?;
        let mut streams = HashMap::new();
        for configured in &catalog.streams {
            let file = StreamFile::open(&config, configured)?;
            streams.insert(configured.stream.name.clone(), file);
        }
        Ok(FileWriter { streams })
    }
}

/// A write in progress: one open file per stream.
pub struct FileWriter {
    streams: HashMap<String, StreamFile>,
}

impl Writer for FileWriter {
    fn write(&mut self, batch: Batch<'_>) -> Result<()> {
        let file = self.streams.get_mut(batch.stream).ok_or_else(|| {
            Error::fatal(format!(
                "stream `{}` is not in the configured catalog",
                batch.stream
            ))
        })?;
        file.dirty = true;
        match &mut file.kind {
            Kind::Jsonl(f) => f.write_all(batch.records)?,
            Kind::Csv(c) => c.write(batch)?,
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        for file in self.streams.values_mut().filter(|f| f.dirty) {
            match &mut file.kind {
                Kind::Jsonl(f) => f.sync_data()?,
                Kind::Csv(c) => c.sync()?,
            }
            file.dirty = false;
        }
        Ok(())
    }
}

struct StreamFile {
    kind: Kind,
    dirty: bool,
}

enum Kind {
    Jsonl(File),
    Csv(Box<CsvFile>),
}

impl StreamFile {
    fn open(config: &Config, configured: &ConfiguredStream) -> Result<Self> {
        let name = &configured.stream.name;
        check_file_name(name)?;
        let ext = match config.format {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        };
        let path = config.path.join(format!("{name}.{ext}"));
        let mut options = OpenOptions::new();
        options.create(true).read(true).write(true);
        match configured.destination_mode {
            DestinationMode::Overwrite => {
                options.truncate(true);
            }
            DestinationMode::Append => {}
            DestinationMode::AppendDedup => {
                return Err(Error::config(format!(
                    "stream `{name}`: destination-file cannot deduplicate; use append or overwrite"
                )));
            }
        }
        let mut file = options
            .open(&path)
            .map_err(|e| Error::fatal(format!("cannot open {}: {e}", path.display())))?;
        cut_partial_last_line(&mut file, &path)?;
        let kind = match config.format {
            Format::Jsonl => Kind::Jsonl(file),
            Format::Csv => Kind::Csv(Box::new(CsvFile::new(
                file,
                &configured.stream.json_schema,
            )?)),
        };
        Ok(StreamFile { kind, dirty: false })
    }
}

/// Stream names become file names: refuse anything that is not a plain name.
fn check_file_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        Ok(())
    } else {
        Err(Error::config(format!(
            "stream name `{name}` cannot be a file name: use letters, digits, `_`, `-` and `.`"
        )))
    }
}

/// A crash after the last flush can leave a half-written line at the end. Everything before the
/// last newline was written before it, so cut the file there and position at the end.
fn cut_partial_last_line(file: &mut File, path: &Path) -> Result<()> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(());
    }
    let mut keep = len;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let start = keep.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(keep - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        if start == 0 {
            keep = 0;
            break;
        }
        keep = start;
    }
    if keep < len {
        sluice_sdk::warn!(
            "{}: cut {} bytes of a record left half-written by an interrupted run",
            path.display(),
            len - keep
        );
        file.set_len(keep)?;
        file.sync_data()?;
    }
    file.seek(SeekFrom::End(0))?;
    Ok(())
}

sluice_sdk::export_destination!(FileDestination);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::{Stream, SyncMode};

    fn catalog(mode: DestinationMode) -> ConfiguredCatalog {
        ConfiguredCatalog {
            streams: vec![ConfiguredStream {
                stream: Stream::new(
                    "users",
                    json!({"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "address": {"type": "object"}}}),
                ),
                sync_mode: SyncMode::FullRefresh,
                destination_mode: mode,
                cursor_field: vec![],
                primary_key: vec![],
            }],
        }
    }

    fn config(dir: &Path, format: Format) -> Config {
        Config {
            path: dir.to_path_buf(),
            format,
        }
    }

    fn write(dir: &Path, format: Format, mode: DestinationMode, records: &[u8]) {
        let mut w = FileDestination::open(config(dir, format), catalog(mode)).unwrap();
        w.write(Batch {
            stream: "users",
            records,
        })
        .unwrap();
        w.flush().unwrap();
    }

    #[test]
    fn overwrite_replaces_and_append_adds() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            Format::Jsonl,
            DestinationMode::Overwrite,
            b"{\"id\":1}\n",
        );
        write(
            dir.path(),
            Format::Jsonl,
            DestinationMode::Append,
            b"{\"id\":2}\n",
        );
        let text = std::fs::read_to_string(dir.path().join("users.jsonl")).unwrap();
        assert_eq!(text, "{\"id\":1}\n{\"id\":2}\n");
        write(
            dir.path(),
            Format::Jsonl,
            DestinationMode::Overwrite,
            b"{\"id\":3}\n",
        );
        let text = std::fs::read_to_string(dir.path().join("users.jsonl")).unwrap();
        assert_eq!(text, "{\"id\":3}\n");
    }

    #[test]
    fn append_cuts_a_half_written_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.jsonl"), "{\"id\":1}\n{\"id\":2,\"na").unwrap();
        write(
            dir.path(),
            Format::Jsonl,
            DestinationMode::Append,
            b"{\"id\":2}\n",
        );
        let text = std::fs::read_to_string(dir.path().join("users.jsonl")).unwrap();
        assert_eq!(text, "{\"id\":1}\n{\"id\":2}\n");
    }

    #[test]
    fn csv_has_a_header_from_the_schema_and_nested_values_as_json() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            Format::Csv,
            DestinationMode::Overwrite,
            b"{\"id\":1,\"name\":\"a, b\",\"address\":{\"city\":\"X\"}}\n{\"id\":2}\n",
        );
        write(
            dir.path(),
            Format::Csv,
            DestinationMode::Append,
            b"{\"id\":3,\"name\":\"c\"}\n",
        );
        let text = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
        assert_eq!(
            text,
            "id,name,address\n1,\"a, b\",\"{\"\"city\"\":\"\"X\"\"}\"\n2,,\n3,c,\n"
        );
    }

    #[test]
    fn csv_refuses_a_field_outside_the_schema_instead_of_dropping_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = FileDestination::open(
            config(dir.path(), Format::Csv),
            catalog(DestinationMode::Overwrite),
        )
        .unwrap();
        let err = w
            .write(Batch {
                stream: "users",
                records: b"{\"id\":1,\"secret_extra\":2}\n",
            })
            .unwrap_err();
        assert!(err.to_string().contains("secret_extra"), "{err}");
    }

    #[test]
    fn bad_stream_names_are_refused() {
        for bad in ["../x", "", ".hidden", "a/b"] {
            assert!(check_file_name(bad).is_err(), "{bad}");
        }
        assert!(check_file_name("users_2024-v1.x").is_ok());
    }

    #[test]
    fn dedup_is_refused_with_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = FileDestination::open(
            config(dir.path(), Format::Jsonl),
            catalog(DestinationMode::AppendDedup),
        )
        .err()
        .unwrap();
        assert!(matches!(err, Error::Config(_)));
    }
}
