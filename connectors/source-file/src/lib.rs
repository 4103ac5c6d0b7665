//! `source-file`: every CSV and JSON-lines file in the directory granted to the connector is a
//! stream, named after the file. `discover` infers each stream's JSON schema from its records;
//! reads checkpoint the byte offset, so an interrupted run resumes where it stopped.

mod infer;

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sluice_sdk::{
    Catalog, ConfiguredCatalog, Emitter, Error, Reader, Result, Source, Spec, State, Stream, Value,
    json,
};

/// The connector's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The directory to read, as the connector sees it (the grant decides which host directory).
    #[serde(default = "default_path")]
    pub path: PathBuf,
}

fn default_path() -> PathBuf {
    PathBuf::from("/input")
}

/// How records are laid out in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// A file that is a stream.
#[derive(Debug, Clone)]
pub struct StreamFile {
    /// The stream name: the file name without its extension.
    pub name: String,
    /// Where the file is.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
}

/// The stream files in `dir`, sorted by name. Two files with the same stem are refused.
pub fn stream_files(dir: &Path) -> Result<Vec<StreamFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::config(format!(
            "cannot read input directory {}: {e} (is it granted to the connector?)",
            dir.display()
        ))
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson") => Format::Jsonl,
            _ => continue,
        };
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        files.push(StreamFile { name, path, format });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in files.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(Error::config(format!(
                "{} and {} would both be stream `{}`: rename one",
                pair[0].path.display(),
                pair[1].path.display(),
                pair[0].name
            )));
        }
    }
    Ok(files)
}

/// A checkpoint: the byte offset just after the last record emitted.
#[derive(Debug, Serialize, Deserialize)]
struct Offset {
    offset: u64,
}

/// The source.
pub struct FileSource;

impl Source for FileSource {
    type Config = Config;
    type Reader = FileReader;

    fn spec() -> Spec {
        Spec::new(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Files",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "path": {
                    "type": "string", "default": "/input",
                    "description": "Directory holding .csv, .jsonl and .ndjson files, as granted to the connector."
                }
            }
        }))
    }

    fn check(config: &Config) -> Result<()> {
        stream_files(&config.path).map(|_| ())
    }

    fn discover(config: &Config) -> Result<Catalog> {
        let mut streams = Vec::new();
        for file in stream_files(&config.path)? {
            let schema = infer::schema_of(&file)?;
            streams.push(Stream::new(file.name, schema));
        }
        Ok(Catalog { streams })
    }

    fn read(config: Config, catalog: ConfiguredCatalog, state: State) -> Result<FileReader> {
        let files = stream_files(&config.path)?;
        let mut pending = Vec::new();
        for configured in &catalog.streams {
            let name = &configured.stream.name;
            let file = files.iter().find(|f| &f.name == name).ok_or_else(|| {
                Error::config(format!(
                    "stream `{name}` has no file in {}",
                    config.path.display()
                ))
            })?;
            let offset = state.decode::<Offset>(name)?.map_or(0, |o| o.offset);
            pending.push((file.clone(), configured.stream.json_schema.clone(), offset));
        }
        pending.reverse();
        Ok(FileReader {
            pending,
            current: None,
        })
    }
}

/// A read in progress.
pub struct FileReader {
    /// Streams still to read, last first: (file, schema, offset to start at).
    pending: Vec<(StreamFile, Value, u64)>,
    current: Option<Open>,
}

enum Open {
    Jsonl {
        name: String,
        lines: BufReader<File>,
        offset: u64,
        buf: Vec<u8>,
    },
    Csv {
        name: String,
        rows: csv::Reader<File>,
        columns: Vec<(String, infer::Column)>,
        record: csv::ByteRecord,
    },
}

impl FileReader {
    fn open_next(&mut self) -> Result<bool> {
        let Some((file, schema, offset)) = self.pending.pop() else {
            return Ok(false);
        };
        let mut f = File::open(&file.path)
            .map_err(|e| Error::fatal(format!("cannot open {}: {e}", file.path.display())))?;
        self.current = Some(match file.format {
            Format::Jsonl => {
                f.seek(SeekFrom::Start(offset))?;
                Open::Jsonl {
                    name: file.name,
                    lines: BufReader::with_capacity(256 * 1024, f),
                    offset,
                    buf: Vec::new(),
                }
            }
            Format::Csv => {
                let mut rows = csv::ReaderBuilder::new().from_reader(f);
                let header = rows
                    .byte_headers()
                    .map_err(|e| csv_error(&file.path, e))?
                    .clone();
                let columns = infer::columns(&header, &schema);
                if offset > 0 {
                    let mut pos = csv::Position::new();
                    pos.set_byte(offset);
                    rows.seek(pos).map_err(|e| csv_error(&file.path, e))?;
                }
                Open::Csv {
                    name: file.name,
                    rows,
                    columns,
                    record: csv::ByteRecord::new(),
                }
            }
        });
        Ok(true)
    }
}

impl Reader for FileReader {
    fn read(&mut self, out: &mut Emitter) -> Result<bool> {
        if self.current.is_none() && !self.open_next()? {
            return Ok(false);
        }
        let mut finished = false;
        match self.current.as_mut().expect("opened above") {
            Open::Jsonl {
                name,
                lines,
                offset,
                buf,
            } => {
                let start = *offset;
                while out.wants_more() {
                    buf.clear();
                    let n = lines.read_until(b'\n', buf)?;
                    if n == 0 {
                        finished = true;
                        break;
                    }
                    *offset += n as u64;
                    let line = buf.trim_ascii();
                    if !line.is_empty() {
                        out.raw_record(name, line);
                    }
                }
                if *offset > start {
                    out.checkpoint(name, &Offset { offset: *offset })?;
                }
            }
            Open::Csv {
                name,
                rows,
                columns,
                record,
            } => {
                let mut read_any = false;
                while out.wants_more() {
                    if !rows
                        .read_byte_record(record)
                        .map_err(|e| csv_error(Path::new(name), e))?
                    {
                        finished = true;
                        break;
                    }
                    read_any = true;
                    out.record(name, &infer::row_to_json(columns, record))?;
                }
                if read_any {
                    let offset = rows.position().byte();
                    out.checkpoint(name, &Offset { offset })?;
                }
            }
        }
        if finished {
            self.current = None;
        }
        Ok(true)
    }
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    Error::fatal(format!("{}: {e}", path.display()))
}

sluice_sdk::export_source!(FileSource);
