//! CSV output: columns from the stream's JSON schema, one row per record.

use std::fs::File;
use std::io::Seek;

use sluice_sdk::{Batch, Error, Result, Value};

/// A CSV file being written.
pub struct CsvFile {
    out: csv::Writer<File>,
    columns: Vec<String>,
}

impl CsvFile {
    /// Wrap `file` (positioned at its end); writes the header when the file is empty.
    pub fn new(mut file: File, schema: &Value) -> Result<Self> {
        let columns: Vec<String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        if columns.is_empty() {
            return Err(Error::config(
                "CSV needs a stream schema with `properties` to name its columns; use jsonl",
            ));
        }
        let empty = file.stream_position()? == 0;
        let mut out = csv::Writer::from_writer(file);
        if empty {
            out.write_record(&columns).map_err(csv_error)?;
        }
        Ok(CsvFile { out, columns })
    }

    /// Append the batch's records as rows.
    pub fn write(&mut self, batch: Batch<'_>) -> Result<()> {
        let mut row = vec![String::new(); self.columns.len()];
        for record in batch.records::<serde_json::Map<String, Value>>() {
            let record = record?;
            for (key, _) in record.iter() {
                if !self.columns.iter().any(|c| c == key) {
                    return Err(Error::fatal(format!(
                        "a `{}` record has field `{key}`, which is not in the stream's schema; \
                         CSV cannot hold it (use format jsonl)",
                        batch.stream
                    )));
                }
            }
            for (cell, column) in row.iter_mut().zip(&self.columns) {
                cell.clear();
                match record.get(column) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => cell.push_str(s),
                    Some(other) => cell.push_str(&other.to_string()),
                }
            }
            self.out.write_record(&row).map_err(csv_error)?;
        }
        Ok(())
    }

    /// Flush buffered rows and fsync.
    pub fn sync(&mut self) -> Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        Ok(())
    }
}

fn csv_error(e: csv::Error) -> Error {
    Error::fatal(format!("writing CSV: {e}"))
}
