//! `folio config`: the effective settings and where each comes from.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use folio::config::Settings;

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(s: &Settings, a: ConfigArgs) -> Result<ExitCode> {
    if a.json {
        let v: Vec<serde_json::Value> = s
            .entries()
            .into_iter()
            .map(|(k, v, src)| serde_json::json!({"key": k, "value": shown(k, v), "source": src.to_string()}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    match &s.config_file {
        Some(f) => println!("# config file: {}", f.display()),
        None => println!("# no config file read"),
    }
    let width = Settings::KEYS.iter().map(|k| k.len()).max().unwrap_or(10);
    for (k, v, src) in s.entries() {
        let v = shown(k, v);
        println!("{k:<width$} = {v:<40} # {src}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A setting's value as shown: secrets only as set or not.
fn shown(key: &str, value: String) -> String {
    if key == "serve.token" && !value.trim_matches('"').is_empty() {
        "\"(set, not shown)\"".into()
    } else {
        value
    }
}
