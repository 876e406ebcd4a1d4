//! GGUF models that other tools already keep on this machine: Ollama's store (manifests that
//! name blobs), LM Studio's and GPT4All's model folders, the Hugging Face hub cache, and
//! folio's own `models.dir`. Each is found by the layout its project documents; nothing is
//! copied or moved, and a store that is absent or unreadable is simply empty.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The tool whose store holds a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Store {
    Folio,
    Ollama,
    LmStudio,
    #[serde(rename = "gpt4all")]
    Gpt4All,
    HuggingFace,
}

impl Store {
    pub fn label(self) -> &'static str {
        match self {
            Store::Folio => "folio",
            Store::Ollama => "ollama",
            Store::LmStudio => "lm-studio",
            Store::Gpt4All => "gpt4all",
            Store::HuggingFace => "hugging-face",
        }
    }
}

/// A GGUF file found in a store, under the name that store's own tool uses for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LocalModel {
    /// `llama3.2:3b` (Ollama), `publisher/repo/file` (LM Studio), `org/repo/file` (Hugging
    /// Face), the file's stem (GPT4All), its path under `models.dir` (folio).
    pub name: String,
    pub store: Store,
    pub path: PathBuf,
    pub size: u64,
}

/// Where the stores live. [`StoreDirs::from_env`] gives the documented places.
#[derive(Debug, Clone, Default)]
pub struct StoreDirs {
    pub folio: Vec<PathBuf>,
    pub ollama: Vec<PathBuf>,
    pub lm_studio: Vec<PathBuf>,
    pub gpt4all: Vec<PathBuf>,
    pub hugging_face: Vec<PathBuf>,
}

impl StoreDirs {
    /// The stores' default places under the home folder, or where their tools' environment
    /// variables (`OLLAMA_MODELS`, `HF_HUB_CACHE`, `HF_HOME`) and LM Studio's own settings
    /// move them.
    pub fn from_env(models_dir: &Path) -> StoreDirs {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let base = directories::BaseDirs::new();
        let home = base.as_ref().map(|b| b.home_dir().to_path_buf());
        let mut dirs = StoreDirs {
            folio: vec![models_dir.to_path_buf()],
            ..StoreDirs::default()
        };
        match env("OLLAMA_MODELS") {
            Some(p) => dirs.ollama.push(p),
            None => {
                dirs.ollama
                    .extend(home.iter().map(|h| h.join(".ollama/models")));
                // The Linux installer runs Ollama as its own user.
                dirs.ollama
                    .push(PathBuf::from("/usr/share/ollama/.ollama/models"));
            }
        }
        if let Some(h) = &home {
            let lms = h.join(".lmstudio");
            if let Some(p) = lm_studio_downloads(&lms.join("settings.json")) {
                dirs.lm_studio.push(p);
            }
            dirs.lm_studio.push(lms.join("models"));
            dirs.lm_studio.push(h.join(".cache/lm-studio/models"));
        }
        if let Some(b) = &base {
            dirs.gpt4all
                .push(b.data_local_dir().join("nomic.ai/GPT4All"));
        }
        match (env("HF_HUB_CACHE"), env("HF_HOME")) {
            (Some(p), _) => dirs.hugging_face.push(p),
            (None, Some(p)) => dirs.hugging_face.push(p.join("hub")),
            (None, None) => {
                let cache = env("XDG_CACHE_HOME").or_else(|| home.map(|h| h.join(".cache")));
                dirs.hugging_face
                    .extend(cache.map(|c| c.join("huggingface/hub")));
            }
        }
        for list in [
            &mut dirs.ollama,
            &mut dirs.lm_studio,
            &mut dirs.hugging_face,
        ] {
            dedup_keep_order(list);
        }
        dirs
    }
}

fn dedup_keep_order(list: &mut Vec<PathBuf>) {
    let mut seen = Vec::new();
    list.retain(|p| {
        let new = !seen.contains(p);
        seen.push(p.clone());
        new
    });
}

/// The folder LM Studio downloads into, when the user moved it (`downloadsFolder`).
fn lm_studio_downloads(settings: &Path) -> Option<PathBuf> {
    let text = read_small(settings)?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("downloadsFolder")?.as_str().map(PathBuf::from)
}

/// A small text file (a manifest, a setting), or `None`; anything over 1 MiB is not one.
fn read_small(path: &Path) -> Option<String> {
    let mut text = String::new();
    fs::File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Every GGUF model in the stores, by store, then name.
pub fn discover(dirs: &StoreDirs) -> Vec<LocalModel> {
    let mut found = Vec::new();
    for d in &dirs.folio {
        found.extend(gguf_files(d, Store::Folio, strip_gguf));
    }
    for d in &dirs.ollama {
        found.extend(ollama(d));
    }
    for d in &dirs.lm_studio {
        found.extend(gguf_files(d, Store::LmStudio, strip_gguf));
    }
    for d in &dirs.gpt4all {
        found.extend(gguf_files(d, Store::Gpt4All, |rel| {
            strip_gguf(rel.rsplit('/').next().unwrap_or(rel))
        }));
    }
    for d in &dirs.hugging_face {
        found.extend(hugging_face(d));
    }
    found.sort_by(|a, b| (a.store, &a.name).cmp(&(b.store, &b.name)));
    // Two names for one file stay (Ollama's `llama3.2:latest` and `llama3.2:3b` share a
    // blob); one name found twice for one file does not.
    let mut seen: Vec<(Store, String, PathBuf)> = Vec::new();
    found.retain(|m| {
        let file = fs::canonicalize(&m.path).unwrap_or_else(|_| m.path.clone());
        let key = (m.store, m.name.clone(), file);
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    found
}

fn strip_gguf(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.strip_suffix(".gguf") {
        Some(s) => name[..s.len()].to_string(),
        None => name.to_string(),
    }
}

/// How deep a model folder is searched: LM Studio nests publisher/repo/file, Hugging Face
/// models--org--repo/snapshots/revision/subfolder/file.
const MAX_DEPTH: usize = 6;

/// The `.gguf` files under `root` (symbolic links to files followed, linked folders not),
/// named by `name` from their path relative to `root` with `/` separators.
fn gguf_files(root: &Path, store: Store, name: impl Fn(&str) -> String) -> Vec<LocalModel> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(link) = fs::symlink_metadata(&path) else {
                continue;
            };
            if link.is_dir() {
                if depth + 1 < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            let is_gguf = path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("gguf"));
            let Some(meta) = fs::metadata(&path).ok().filter(|m| m.is_file() && is_gguf) else {
                continue;
            };
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(LocalModel {
                name: name(&rel.join("/")),
                store,
                path,
                size: meta.len(),
            });
        }
    }
    out
}

/// Ollama's store: `manifests/REGISTRY/NAMESPACE/MODEL/TAG` are JSON manifests whose layer of
/// media type `application/vnd.ollama.image.model` names the GGUF blob by digest, kept as
/// `blobs/sha256-HEX`. Named as `ollama run` names them: `MODEL:TAG` for the official library.
fn ollama(root: &Path) -> Vec<LocalModel> {
    let mut out = Vec::new();
    let manifests = root.join("manifests");
    for registry in subdirs(&manifests) {
        for namespace in subdirs(&registry) {
            for model in subdirs(&namespace) {
                let Ok(tags) = fs::read_dir(&model) else {
                    continue;
                };
                for tag in tags.flatten().map(|t| t.path()) {
                    let Some(blob) = read_small(&tag).and_then(|m| ollama_model_blob(&m)) else {
                        continue;
                    };
                    let path = root.join("blobs").join(blob);
                    let Ok(meta) = fs::metadata(&path) else {
                        continue;
                    };
                    let part = |p: &Path| {
                        p.file_name()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    };
                    let (reg, ns, m, t) =
                        (part(&registry), part(&namespace), part(&model), part(&tag));
                    let name = match (reg.as_str(), ns.as_str()) {
                        ("registry.ollama.ai", "library") => format!("{m}:{t}"),
                        ("registry.ollama.ai", _) => format!("{ns}/{m}:{t}"),
                        _ => format!("{reg}/{ns}/{m}:{t}"),
                    };
                    out.push(LocalModel {
                        name,
                        store: Store::Ollama,
                        path,
                        size: meta.len(),
                    });
                }
            }
        }
    }
    out
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
        .collect()
}

/// The blob file name of a manifest's model layer; `None` for anything else (a digest that is
/// not a plain hex SHA-256 could name a path outside the store).
fn ollama_model_blob(manifest: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(manifest).ok()?;
    let layer = v.get("layers")?.as_array()?.iter().find(|l| {
        l.get("mediaType").and_then(|m| m.as_str()) == Some("application/vnd.ollama.image.model")
    })?;
    let hex = layer.get("digest")?.as_str()?.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256-{hex}"))
}

/// The Hugging Face hub cache: `models--ORG--REPO/snapshots/REVISION/...file.gguf` (links into
/// `blobs/`). Named `ORG/REPO/file`; of several revisions, the one `refs/main` names wins.
fn hugging_face(root: &Path) -> Vec<LocalModel> {
    let mut out: Vec<LocalModel> = Vec::new();
    for repo in subdirs(root) {
        let Some(id) = repo
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("models--"))
            .map(|n| n.replace("--", "/"))
        else {
            continue;
        };
        let main = read_small(&repo.join("refs/main")).map(|r| r.trim().to_string());
        let mut revisions = subdirs(&repo.join("snapshots"));
        // The main revision first, so that its files win the names.
        revisions.sort_by_key(|r| r.file_name().and_then(|n| n.to_str()) != main.as_deref());
        for rev in revisions {
            for m in gguf_files(&rev, Store::HuggingFace, |rel| {
                format!("{id}/{}", strip_gguf(rel))
            }) {
                if !out.iter().any(|o| o.name == m.name) {
                    out.push(m);
                }
            }
        }
    }
    out
}

/// Why a name picks no model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    #[error("no model on this machine is called {0:?} (`folio models list` shows them)")]
    NotFound(String),
    #[error("{name:?} could be any of: {}; name one in full", candidates.join(", "))]
    Ambiguous {
        name: String,
        candidates: Vec<String>,
    },
}

/// The model `name` picks: its full name; for Ollama's models a name without a tag means
/// `:latest`, as `ollama run` reads it; else the one model whose file name is `name`. Case
/// is ignored where the exact spelling picks none.
pub fn find<'a>(models: &'a [LocalModel], name: &str) -> Result<&'a LocalModel, FindError> {
    let pick = |matches: Vec<&'a LocalModel>| -> Option<Result<&'a LocalModel, FindError>> {
        match matches.len() {
            0 => None,
            1 => Some(Ok(matches[0])),
            _ => Some(Err(FindError::Ambiguous {
                name: name.to_string(),
                candidates: matches
                    .iter()
                    .map(|m| format!("{} ({})", m.name, m.store.label()))
                    .collect(),
            })),
        }
    };
    let latest = format!("{name}:latest");
    let file_name = |m: &LocalModel| m.name.rsplit('/').next().unwrap_or(&m.name).to_string();
    let rules: [&dyn Fn(&LocalModel) -> bool; 4] = [
        &|m| m.name == name,
        &|m| m.store == Store::Ollama && !name.contains(':') && m.name == latest,
        &|m| m.name.eq_ignore_ascii_case(name),
        &|m| file_name(m).eq_ignore_ascii_case(name),
    ];
    for rule in rules {
        if let Some(r) = pick(models.iter().filter(|m| rule(m)).collect()) {
            return r;
        }
    }
    Err(FindError::NotFound(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, store: Store) -> LocalModel {
        LocalModel {
            name: name.into(),
            store,
            path: PathBuf::from(format!("/m/{name}")),
            size: 1,
        }
    }

    #[test]
    fn names_pick_models_as_their_tools_name_them() {
        let models = [
            model("llama3.2:latest", Store::Ollama),
            model("llama3.2:1b", Store::Ollama),
            model(
                "qwen/Qwen2.5-3B-Instruct-GGUF/qwen2.5-3b-instruct-q4_k_m",
                Store::HuggingFace,
            ),
            model(
                "lmstudio-community/Qwen2.5-3B-Instruct-GGUF/qwen2.5-3b-instruct-q4_k_m",
                Store::LmStudio,
            ),
            model("Phi-3.5-mini-instruct-Q4_K_M", Store::Gpt4All),
        ];
        let name = |n: &str| find(&models, n).map(|m| m.name.as_str());
        assert_eq!(name("llama3.2:1b"), Ok("llama3.2:1b"));
        assert_eq!(name("llama3.2"), Ok("llama3.2:latest"));
        assert_eq!(name("LLAMA3.2:1B"), Ok("llama3.2:1b"));
        assert_eq!(
            name("phi-3.5-mini-instruct-q4_k_m"),
            Ok("Phi-3.5-mini-instruct-Q4_K_M")
        );
        match find(&models, "qwen2.5-3b-instruct-q4_k_m") {
            Err(FindError::Ambiguous { candidates, .. }) => assert_eq!(candidates.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(name("mistral"), Err(FindError::NotFound("mistral".into())));
    }

    #[test]
    fn manifests_name_only_a_plain_digest() {
        let hex = "ab".repeat(32);
        let m = |digest: &str| {
            format!(
                r#"{{"layers":[{{"mediaType":"application/vnd.ollama.image.license","digest":"sha256:{hex}"}},
                {{"mediaType":"application/vnd.ollama.image.model","digest":"{digest}","size":3}}]}}"#
            )
        };
        assert_eq!(
            ollama_model_blob(&m(&format!("sha256:{hex}"))),
            Some(format!("sha256-{hex}"))
        );
        assert_eq!(ollama_model_blob(&m("sha256:../../etc/passwd")), None);
        assert_eq!(ollama_model_blob(&m("md5:abc")), None);
        assert_eq!(ollama_model_blob("not json"), None);
    }

    #[test]
    fn gguf_suffixes_are_stripped_in_any_case() {
        assert_eq!(strip_gguf("a/b/Model.Q4_K_M.GGUF"), "a/b/Model.Q4_K_M");
        assert_eq!(strip_gguf("model.bin"), "model.bin");
    }
}
