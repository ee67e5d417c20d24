//! The official Kubernetes Python client, pinned by `scripts/py-tools.sh` in `.cache/venv`, run
//! against a kubeconfig (included with `#[path]`).

use std::path::Path;
use std::process::Command;

/// What the Kubernetes Python client does through the gateway with `kubeconfig`: list, create,
/// read, watch and delete, and a 404 of the cluster's own passed through.
const PYTHON_CLIENT: &str = r#"
import sys
from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
names = [n.metadata.name for n in v1.list_namespace().items]
assert "kube-system" in names, names
cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-python"), data={"a": "1"})
v1.create_namespaced_config_map("default", cm)
assert v1.read_namespaced_config_map("from-python", "default").data == {"a": "1"}
w = watch.Watch()
for event in w.stream(v1.list_namespaced_config_map, "default",
                      field_selector="metadata.name=from-python", timeout_seconds=10):
    assert event["type"] == "ADDED", event["type"]
    w.stop()
v1.delete_namespaced_config_map("from-python", "default")
try:
    v1.read_namespaced_config_map("from-python", "default")
    sys.exit("read after delete succeeded")
except client.ApiException as e:
    assert e.status == 404 and '"kind":"Status"' in e.body, (e.status, e.body)
print("python client ok")
"#;

/// Runs [`PYTHON_CLIENT`] with the pinned client from `scripts/py-tools.sh`.
pub fn python_client(kubeconfig: &Path) -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/venv/bin/python");
    let has_client = Command::new(&python)
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_client,
        "the Kubernetes Python client is not in {}: run scripts/py-tools.sh (`make test` does)",
        python.display()
    );
    let out = Command::new(&python)
        .args(["-c", PYTHON_CLIENT])
        .arg(kubeconfig)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the Python client failed: {text}");
    text
}
