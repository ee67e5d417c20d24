//! The Helm chart in `deploy/chart/vcm`: the real `helm` (built with the Kubernetes binaries)
//! lints and renders it, the real vcm configuration loader accepts the `vcm.toml` it writes,
//! its host RBAC is exactly `deploy/host-rbac.yaml`'s, it refuses what would break vcm, and the
//! real API server accepts every object it renders (`kubectl apply --dry-run=server`) with no
//! Pod Security warning at the `restricted` level.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml_ng::Value;
use vcm::controlplane::KubeBins;
use vcm::testing::TestBed;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/chart/vcm");
const NAMESPACE: &str = "vcm-system";

fn helm() -> PathBuf {
    KubeBins::locate()
        .get("helm")
        .unwrap_or_else(|e| panic!("{e}"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `helm template` with `sets`: the rendered text, or helm's error.
fn template(namespace: &str, sets: &[&str]) -> Result<String, String> {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(helm());
    cmd.args(["template", "vcm", CHART, "--kube-version", "1.36.3"])
        .args(["--namespace", namespace])
        .env("HELM_CACHE_HOME", home.path())
        .env("HELM_CONFIG_HOME", home.path())
        .env("HELM_DATA_HOME", home.path());
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(text(&out))
    }
}

fn documents(rendered: &str) -> Vec<Value> {
    rendered
        .split("\n---")
        .filter_map(|d| serde_yaml_ng::from_str::<Value>(d).ok())
        .filter(|v| v.get("kind").is_some())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_chart_lints_and_every_option_renders() {
    let home = tempfile::tempdir().unwrap();
    let out = run(Command::new(helm())
        .args(["lint", "--strict", CHART, "--namespace", NAMESPACE])
        .args(["--kube-version", "1.36.3"])
        .env("HELM_CACHE_HOME", home.path())
        .env("HELM_CONFIG_HOME", home.path())
        .env("HELM_DATA_HOME", home.path()));
    assert!(out.status.success(), "{}", text(&out));

    let all = template(
        NAMESPACE,
        &[
            "ingress.enabled=true",
            "ingress.tlsSecret=vcm-tls",
            "serviceMonitor.enabled=true",
            "store.existingSecret=vcm-db",
            "persistence.enabled=false",
            "host.labels.region=eu",
        ],
    )
    .unwrap();
    let docs = documents(&all);
    let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for kind in [
        "Ingress",
        "ServiceMonitor",
        "Deployment",
        "Service",
        "ConfigMap",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    assert!(!kinds.contains(&"PersistentVolumeClaim"), "{kinds:?}");
    let deployment = find(&docs, "Deployment", "vcm");
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_sequence()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "VCM_STORE_URL"
                && e["valueFrom"]["secretKeyRef"]["name"] == "vcm-db"),
        "the store URL comes from the Secret: {env:?}"
    );
}

#[test]
fn the_configuration_it_writes_is_one_vcm_accepts() {
    let docs = documents(&template(NAMESPACE, &["host.labels.region=eu"]).unwrap());
    let toml = find(&docs, "ConfigMap", "vcm")["data"]["vcm.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vcm.toml");
    std::fs::write(&path, &toml).unwrap();
    let config = vcm::config::Config::load_from(Some(&path), Vec::new(), &Default::default())
        .unwrap_or_else(|e| panic!("vcm refuses the chart's configuration: {e:#}\n{toml}"));
    assert_eq!(config.hosts.len(), 1);
    assert_eq!(config.hosts[0].name, "in-cluster");
    assert!(
        config.hosts[0].kubeconfig.is_none(),
        "in-cluster: no kubeconfig"
    );
    assert_eq!(config.auth.kubernetes.len(), 1, "the admin ServiceAccount");
}

#[test]
fn its_host_rbac_is_exactly_the_documented_one() {
    let docs = documents(&template(NAMESPACE, &[]).unwrap());
    let shipped: Vec<Value> = documents(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/host-rbac.yaml"
        ))
        .unwrap(),
    );
    for (chart, doc) in [("vcm-host", "vcm-host"), ("vcm-namespace", "vcm-namespace")] {
        assert_eq!(
            find(&docs, "ClusterRole", chart)["rules"],
            find(&shipped, "ClusterRole", doc)["rules"],
            "{chart}"
        );
    }
    let policy = find(
        &docs,
        "ValidatingAdmissionPolicy",
        "vcm-only-in-vcm-namespaces",
    );
    let shipped_policy = find(
        &shipped,
        "ValidatingAdmissionPolicy",
        "vcm-only-in-vcm-namespaces",
    );
    assert_eq!(policy["spec"], shipped_policy["spec"]);
}

#[test]
fn it_refuses_what_would_break_vcm() {
    for (namespace, sets, says) in [
        ("default", vec![], "install vcm in a namespace named vcm-*"),
        (
            NAMESPACE,
            vec!["replicaCount=3"],
            "the embedded SQLite store has one writer",
        ),
        (
            NAMESPACE,
            vec!["persistence.enabled=false"],
            "every restart loses every cluster record",
        ),
        (
            NAMESPACE,
            vec!["store.ephemeral=true"],
            "set persistence.enabled=false and no store.existingSecret",
        ),
    ] {
        let err = template(namespace, &sets).unwrap_err();
        assert!(err.contains(says), "{sets:?}: {err}");
    }
}

#[test]
fn a_throw_away_store_and_values_for_every_vcluster_are_options_vcm_accepts() {
    let docs = documents(
        &template(
            NAMESPACE,
            &[
                "persistence.enabled=false",
                "store.ephemeral=true",
                "host.values.controlPlane.statefulSet.imagePullPolicy=Never",
                "vcluster.kubernetesVersions.1\\.36=v1.36.3",
            ],
        )
        .unwrap(),
    );
    let data = &find(&docs, "ConfigMap", "vcm")["data"];
    let values: Value =
        serde_yaml_ng::from_str(data["host-values.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(
        values["controlPlane"]["statefulSet"]["imagePullPolicy"],
        "Never"
    );
    let toml = data["vcm.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vcm.toml");
    std::fs::write(&path, toml).unwrap();
    let config = vcm::config::Config::load_from(Some(&path), Vec::new(), &Default::default())
        .unwrap_or_else(|e| panic!("vcm refuses the chart's configuration: {e:#}\n{toml}"));
    assert_eq!(
        config.hosts[0].values_file.as_deref(),
        Some(Path::new("/etc/vcm/host-values.yaml"))
    );
    assert!(
        toml.contains(r#"kubernetes_versions = { "1.36" = "v1.36.3" }"#),
        "{toml}"
    );
    let deployment = find(&docs, "Deployment", "vcm");
    let volumes = &deployment["spec"]["template"]["spec"]["volumes"];
    assert!(
        volumes
            .as_sequence()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "data" && v.get("emptyDir").is_some()),
        "the throw-away store is on an emptyDir: {volumes:?}"
    );
}

#[test]
fn several_replicas_are_rendered_on_a_postgresql_store() {
    let rendered = template(
        NAMESPACE,
        &[
            "replicaCount=3",
            "store.existingSecret=vcm-postgres",
            "persistence.enabled=false",
            "audit.signingKeySecret=vcm-audit-key",
        ],
    )
    .unwrap();
    let docs = documents(&rendered);
    let deployment = find(&docs, "Deployment", "vcm");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(
        pod["containers"][0]["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "VCM_AUDIT__SIGNING_KEY"),
        "one audit key for every replica"
    );
    assert!(
        pod["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|v| v["secret"]["secretName"] == "vcm-audit-key")
    );
    let err = template(
        NAMESPACE,
        &[
            "replicaCount=3",
            "store.existingSecret=vcm-postgres",
            "persistence.enabled=false",
        ],
    )
    .unwrap_err();
    assert!(err.contains("must sign it with one key"), "{err}");
    let err = template(
        NAMESPACE,
        &[
            "replicaCount=3",
            "store.existingSecret=vcm-postgres",
            "audit.signingKeySecret=vcm-audit-key",
        ],
    )
    .unwrap_err();
    assert!(
        err.contains("cannot share one ReadWriteOnce volume"),
        "{err}"
    );
}

#[tokio::test]
async fn the_api_server_accepts_everything_it_renders_at_the_restricted_level() {
    let bed = TestBed::tier_a().await;
    let kubectl = |args: &[&str], stdin: Option<&Path>| {
        let mut cmd = Command::new("kubectl");
        cmd.arg(format!("--kubeconfig={}", bed.kubeconfig_path().display()))
            .args(args);
        if let Some(file) = stdin {
            cmd.args(["-f", file.to_str().unwrap()]);
        }
        run(&mut cmd)
    };
    for ns in [NAMESPACE, "ci-web"] {
        let out = kubectl(&["create", "namespace", ns], None);
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = kubectl(
        &[
            "label",
            "namespace",
            NAMESPACE,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    // Without a ServiceMonitor: its CRD is the Prometheus Operator's, not in a bare API server.
    // With the VirtualCluster door: its RBAC, and the admission policy's CEL compiled by the API
    // server.
    let rendered = template(
        NAMESPACE,
        &[
            "ingress.enabled=true",
            "crd.enabled=true",
            "crd.namespaces.ci-web=web",
        ],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chart.yaml");
    std::fs::write(&file, &rendered).unwrap();
    let out = kubectl(&["apply", "--dry-run=server"], Some(&file));
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("PodSecurity"), "{said}");
    for object in [
        "deployment.apps/vcm",
        "service/vcm",
        "configmap/vcm",
        "persistentvolumeclaim/vcm-data",
        "clusterrole.rbac.authorization.k8s.io/vcm-host",
        "validatingadmissionpolicy.admissionregistration.k8s.io/vcm-only-in-vcm-namespaces",
        "ingress.networking.k8s.io/vcm",
        "clusterrole.rbac.authorization.k8s.io/vcm-virtualclusters",
        "rolebinding.rbac.authorization.k8s.io/vcm-kubeconfig-secrets",
    ] {
        assert!(said.contains(object), "{object} not applied: {said}");
    }
    // The pod itself, at the restricted level: the API server's Pod Security admission.
    let docs = documents(&rendered);
    let deployment = find(&docs, "Deployment", "vcm");
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "vcm-pod-check", "namespace": NAMESPACE},
        "spec": serde_json::to_value(&deployment["spec"]["template"]["spec"]).unwrap(),
    });
    let pod_file = dir.path().join("pod.json");
    std::fs::write(&pod_file, pod.to_string()).unwrap();
    let out = kubectl(&["apply", "--dry-run=server"], Some(&pod_file));
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn its_crd_is_exactly_what_vcm_crd_print_prints() {
    let printed = run(Command::new(env!("CARGO_BIN_EXE_vcm")).args(["crd", "print"]));
    assert!(printed.status.success(), "{}", text(&printed));
    let shipped =
        std::fs::read_to_string(format!("{CHART}/crds/virtualclusters.vcm.dev.yaml")).unwrap();
    assert!(
        shipped == String::from_utf8_lossy(&printed.stdout),
        "deploy/chart/vcm/crds/virtualclusters.vcm.dev.yaml differs from `vcm crd print`; \
         regenerate it: cargo run -- crd print > deploy/chart/vcm/crds/virtualclusters.vcm.dev.yaml"
    );
}

#[test]
fn the_crd_door_renders_its_configuration_rbac_and_admission_exception() {
    // Arrange / Act
    let rendered = template(
        NAMESPACE,
        &[
            "crd.enabled=true",
            "crd.namespaces.ci-web=web",
            "crd.namespaces.ci-api=api",
        ],
    )
    .unwrap();
    let docs = documents(&rendered);

    // Assert: vcm accepts the configuration, with both namespaces mapped.
    let toml = find(&docs, "ConfigMap", "vcm")["data"]["vcm.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vcm.toml");
    std::fs::write(&path, &toml).unwrap();
    let config = vcm::config::Config::load_from(Some(&path), Vec::new(), &Default::default())
        .unwrap_or_else(|e| panic!("vcm refuses the chart's configuration: {e:#}\n{toml}"));
    assert!(config.crd.enabled);
    assert!(config.crd.kubeconfig.is_none(), "in-cluster");
    assert_eq!(config.crd.team_of("ci-web"), Some("web"));
    assert_eq!(config.crd.team_of("ci-api"), Some("api"));
    // RBAC: objects, status and finalizers cluster-wide; Secrets only in the mapped namespaces.
    let role = find(&docs, "ClusterRole", "vcm-virtualclusters");
    let resources: Vec<&str> = role["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|r| r["resources"].as_sequence().unwrap())
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        resources,
        [
            "virtualclusters",
            "virtualclusters/status",
            "virtualclusters/finalizers"
        ]
    );
    let bindings: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "RoleBinding")
        .map(|d| d["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(bindings, ["ci-api", "ci-web"]);
    // The admission policy lets vcm write there, and only there.
    let policy = find(
        &docs,
        "ValidatingAdmissionPolicy",
        "vcm-only-in-vcm-namespaces",
    );
    let expression = policy["spec"]["validations"][0]["expression"]
        .as_str()
        .unwrap();
    assert!(
        expression.contains(r#"request.namespace in ["ci-api","ci-web"]"#)
            && expression.contains(r#"request.resource.resource == "virtualclusters""#),
        "{expression}"
    );

    // Without the door, none of it.
    let off = documents(&template(NAMESPACE, &[]).unwrap());
    assert!(!off.iter().any(|d| d["kind"] == "RoleBinding"));
    let err = template(NAMESPACE, &["crd.enabled=true"]).unwrap_err();
    assert!(err.contains("crd.namespaces"), "{err}");
}
