//! Running the packaged recipes' scripts as the CI platforms do (included with `#[path]` by
//! `tests/ci_recipes.rs`): each in a clean environment (nothing of the test process's own
//! environment leaks in, nor out to the vcm server), the YAML files read, the answers checked.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

use crate::vcm_process::Vcm;

/// The environment a script runs with (and nothing else).
pub type Env = BTreeMap<String, String>;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Stop with the build command when the local driver's binaries are missing.
pub fn require_k8s_bins() {
    let bins = vcm::controlplane::KubeBins::locate();
    for name in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    ] {
        bins.get(name).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Set `vars` in `env`.
pub fn set(env: &mut Env, vars: &[(&str, &str)]) {
    env.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
}

/// Run `cmd` in `cwd` with exactly `env`; its stderr is shown (`--nocapture`).
pub fn run(mut cmd: Command, env: &Env, cwd: &Path) -> Output {
    let out = cmd.env_clear().envs(env).current_dir(cwd).output().unwrap();
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `node ci/github/<file>` as the runner starts an action's step.
pub fn node(file: &str, env: &Env, cwd: &Path) -> Output {
    let mut cmd = Command::new("node");
    cmd.arg(repo_root().join("ci/github").join(file));
    run(cmd, env, cwd)
}

/// `bash ci/vcm-ci.sh <args>`.
pub fn vcm_ci(args: &[&str], env: &Env, cwd: &Path) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("ci/vcm-ci.sh")).args(args);
    run(cmd, env, cwd)
}

/// A YAML list of commands in one bash, stopping at the first failure (Bitbucket; GitLab also
/// sets pipefail).
pub fn shell(commands: &[String], env: &Env, cwd: &Path, pipefail: bool) -> Output {
    let set = if pipefail {
        "set -eo pipefail"
    } else {
        "set -e"
    };
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-c"])
        .arg(format!("{set}\n{}", commands.join("\n")));
    run(cmd, env, cwd)
}

/// Stdout of a run that must succeed.
pub fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Stderr of a run that must fail.
pub fn refused(out: &Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A YAML list of strings.
pub fn commands(v: &Yaml) -> Vec<String> {
    let list = v
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"));
    list.iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// `key=value` lines of a file (GitHub's file commands, the script's stdout); the last wins.
pub fn pairs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub fn file_pairs(path: &Path) -> BTreeMap<String, String> {
    pairs(&std::fs::read_to_string(path).unwrap())
}

/// `kubectl get --raw /readyz` with `kubeconfig`: the cluster answers through it.
pub fn assert_kubeconfig_works(kubeconfig: &str) {
    let out = crate::vcm_process::kubectl(Path::new(kubeconfig), &["get", "--raw", "/readyz"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok", "{out:?}");
}

/// The cluster's phase is past Ready: being deleted or gone.
pub fn assert_deleting(vcm: &Vcm, id: &str) {
    let phase = vcm.cluster(id)["phase"].as_str().unwrap().to_owned();
    assert!(
        matches!(phase.as_str(), "Deleting" | "Deleted"),
        "{id}: {phase}"
    );
}

/// Every value of `key` in a file of `key=value` lines, in order.
pub fn file_pairs_all(path: &Path, key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let prefix = format!("{key}=");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Every cluster the admin sees with these labels (any phase).
pub fn clusters(vcm: &Vcm, labels: &[&str]) -> Vec<Value> {
    let mut args = vec!["cluster", "list", "--output", "json"];
    for l in labels {
        args.extend(["--label", l]);
    }
    let list: Value = serde_json::from_str(&vcm.cli_ok(&args)).unwrap();
    list["items"].as_array().unwrap().clone()
}
