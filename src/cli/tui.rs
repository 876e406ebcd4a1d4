//! `folio tui` (and `folio` alone): the terminal UI.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use folio::config::{Dirs, Settings};

use super::prompts_dir;

#[derive(Args, Debug, Default)]
pub struct TuiArgs {
    /// Folders to index and follow (default: the index's remembered roots).
    pub dirs: Vec<PathBuf>,
}

pub(super) fn run(dirs: &Dirs, s: &Settings, a: TuiArgs) -> Result<ExitCode> {
    folio::tui::run(
        folio::tui::worker::Setup {
            settings: s.clone(),
            roots: a.dirs,
            prompts_dir: prompts_dir(dirs, s),
        },
        folio::tui::Files::in_data_dir(&dirs.data),
        super::render::color_choice(),
    )?;
    Ok(ExitCode::SUCCESS)
}
