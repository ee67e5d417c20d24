//! The files a policy is made of: which ones (directories expanded), whether they changed, and
//! reading the data document.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::Context as _;

use crate::config::policy::PolicyConfig;

/// What a file looked like when it was read: a change of either means "reload".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    path: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
}

// === impl Stamp ===

impl Stamp {
    /// The file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

/// The `.rego` files `config.paths` names, directories expanded to their `*.rego` files in name
/// order (not recursively: a subdirectory may hold drafts or OPA test fixtures).
pub(super) fn rego_files(config: &PolicyConfig) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in &config.paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("policy path {}: cannot read it", path.display()))?;
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut inside = Vec::new();
        let entries = std::fs::read_dir(path)
            .with_context(|| format!("policy directory {}: cannot list it", path.display()))?;
        for entry in entries {
            let entry = entry
                .with_context(|| format!("policy directory {}: cannot list it", path.display()))?;
            let file = entry.path();
            if file.extension().is_some_and(|e| e == "rego") && file.is_file() {
                inside.push(file);
            }
        }
        anyhow::ensure!(
            !inside.is_empty(),
            "policy directory {} holds no .rego file",
            path.display()
        );
        inside.sort();
        files.extend(inside);
    }
    anyhow::ensure!(!files.is_empty(), "no policy files: policy.paths is empty");
    Ok(files)
}

/// The stamps of the `rego` files and the `data` file, now, in that order.
pub(super) fn stamps(rego: &[PathBuf], data: Option<&Path>) -> anyhow::Result<Vec<Stamp>> {
    rego.iter()
        .map(PathBuf::as_path)
        .chain(data)
        .map(stamp)
        .collect()
}

fn stamp(path: &Path) -> anyhow::Result<Stamp> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: cannot read it", path.display()))?;
    Ok(Stamp {
        path: path.to_owned(),
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

/// The data document at `path` as JSON text: a JSON file, or YAML (`.yaml`, `.yml`) converted.
/// It must hold an object, since it is merged under `data`.
pub(super) fn read_data(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("policy data {}: cannot read it", path.display()))?;
    let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    let value: serde_json::Value = if is_yaml {
        serde_yaml_ng::from_str(&text)
            .with_context(|| format!("policy data {}: not valid YAML", path.display()))?
    } else {
        serde_json::from_str(&text)
            .with_context(|| format!("policy data {}: not valid JSON", path.display()))?
    };
    anyhow::ensure!(
        value.is_object(),
        "policy data {}: must hold an object (its keys become data.<key>)",
        path.display()
    );
    Ok(value.to_string())
}
