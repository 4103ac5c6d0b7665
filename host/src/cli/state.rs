//! `sluice state`: a connection's committed stream states, shown or set, in Airbyte's state
//! format — so a connection's position moves between Airbyte and sluice in either direction.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};
use sluice::connection::Connection;
use sluice::protocol::StreamState;

#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// Print the committed state of every stream as Airbyte's per-stream state list (what
    /// `source --state FILE` reads).
    Show {
        /// The connection file.
        connection: PathBuf,
    },
    /// Set streams' states from a file in Airbyte's format (a JSON list of per-stream states,
    /// or the STATE messages of a source's output, one per line); the next run starts there.
    /// Streams the file does not name keep theirs.
    Import {
        /// The connection file.
        connection: PathBuf,
        /// The state file.
        file: PathBuf,
    },
}

pub async fn run(ctx: &super::Ctx, cmd: StateCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StateCommand::Show { connection } => {
            let conn = Connection::load(&connection)?;
            let store = ctx.store().await?;
            let mut out = Vec::new();
            for c in store.states(&conn.name).await? {
                let state: Value = serde_json::from_str(&c.state.state)
                    .unwrap_or_else(|_| Value::String(c.state.state.clone()));
                out.push(json!({
                    "type": "STREAM",
                    "stream": {
                        "stream_descriptor": {"name": c.state.stream},
                        "stream_state": state,
                    }
                }));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Import { connection, file } => {
            let conn = Connection::load(&connection)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let states = parse(&text).with_context(|| {
                format!(
                    "{} is not an Airbyte state file (a JSON list of {{\"type\": \"STREAM\", \
                     \"stream\": {{\"stream_descriptor\": {{\"name\": …}}, \"stream_state\": …}}}}, \
                     or STATE messages one per line)",
                    file.display()
                )
            })?;
            let store = ctx.store().await?;
            let _lock = store.lock(&conn.name)?;
            store.import_states(&conn.name, &states).await?;
            let names: Vec<&str> = states.iter().map(|s| s.stream.as_str()).collect();
            println!(
                "set the state of {} streams of `{}` ({}); its next run starts there",
                states.len(),
                conn.name,
                names.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Airbyte's per-stream states from a state file: a JSON list of state messages (each
/// `{"type": "STREAM", "stream": {...}}`, or wrapped as `{"type": "STATE", "state": {...}}`),
/// or a source's output with one message per line (the last state of each stream wins).
pub fn parse(text: &str) -> anyhow::Result<Vec<StreamState>> {
    let messages: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items,
        Ok(one @ Value::Object(_)) => vec![one],
        Ok(_) => anyhow::bail!("the file holds neither a list nor a message"),
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).with_context(|| format!("line {} is not JSON", i + 1))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let mut states: Vec<StreamState> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let m = match m.get("type").and_then(Value::as_str) {
            Some("STATE") => m.get("state").context(format!("item {i}: no `state`"))?,
            // A source's output carries records and logs between its states.
            Some("RECORD" | "LOG" | "TRACE" | "SPEC" | "CATALOG" | "CONNECTION_STATUS") => {
                continue;
            }
            _ => m,
        };
        match m.get("type").and_then(Value::as_str) {
            Some("STREAM") => {}
            Some(other) => anyhow::bail!(
                "item {i} is a {other} state; only per-stream (STREAM) states can be moved — \
                 Airbyte writes those for every declarative source"
            ),
            None => anyhow::bail!("item {i} has no `type`"),
        }
        let stream = m.get("stream").context(format!("item {i}: no `stream`"))?;
        let name = stream
            .pointer("/stream_descriptor/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .context(format!("item {i}: no `stream.stream_descriptor.name`"))?;
        let state = stream
            .get("stream_state")
            .filter(|s| !s.is_null())
            .context(format!("item {i} (`{name}`): no `stream.stream_state`"))?;
        let state = StreamState {
            stream: name.to_string(),
            state: serde_json::to_string(state)?,
        };
        match states.iter_mut().find(|s| s.stream == state.stream) {
            Some(s) => *s = state,
            None => states.push(state),
        }
    }
    anyhow::ensure!(!states.is_empty(), "it holds no stream state");
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_list_and_a_sources_output_give_the_same_states() {
        let list = r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"rates"},"stream_state":{"date":"2024-01-03"}}}]"#;
        let output = concat!(
            r#"{"type":"RECORD","record":{"stream":"rates","data":{}}}"#,
            "\n",
            r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"rates"},"stream_state":{"date":"2024-01-02"}}}}"#,
            "\n",
            r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"rates"},"stream_state":{"date":"2024-01-03"}}}}"#,
            "\n"
        );
        let want = vec![StreamState {
            stream: "rates".into(),
            state: r#"{"date":"2024-01-03"}"#.into(),
        }];
        assert_eq!(parse(list).unwrap(), want);
        assert_eq!(parse(output).unwrap(), want);
    }

    #[test]
    fn legacy_and_global_states_and_empty_files_are_refused_by_name() {
        let legacy = r#"[{"type":"LEGACY","data":{"rates":{"date":"x"}}}]"#;
        assert!(
            parse(legacy)
                .unwrap_err()
                .to_string()
                .contains("LEGACY state")
        );
        let global = r#"{"type":"GLOBAL","global":{}}"#;
        assert!(
            parse(global)
                .unwrap_err()
                .to_string()
                .contains("GLOBAL state")
        );
        assert!(
            parse("[]")
                .unwrap_err()
                .to_string()
                .contains("no stream state")
        );
        let nameless = r#"[{"type":"STREAM","stream":{"stream_state":{}}}]"#;
        assert!(parse(nameless).unwrap_err().to_string().contains("name"));
        assert!(parse("nope").unwrap_err().to_string().contains("line 1"));
    }
}
