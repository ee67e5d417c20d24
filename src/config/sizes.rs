//! Size profiles: the one place a size's meaning is configured, `[clusters.sizes.<name>]`, with
//! one part per driver (`local`, `vcluster`). Resolved and checked against the active driver at
//! start-up, so a size the driver cannot make is refused before any request names it.
//!
//! ```toml
//! [clusters.sizes.small.local]          # only what differs from the built-in `small`
//! max_requests_inflight = 50
//!
//! [clusters.sizes.xl.vcluster]          # a new size: its driver's part in full
//! cpu_request = "2"
//! memory_request = "4Gi"
//! memory_limit = "8Gi"
//! ```
//!
//! No `[clusters.sizes]` at all means the built-ins `small`, `medium` and `large`. Once any size
//! is configured, exactly the configured ones are offered. A built-in name inherits the built-in
//! values it does not set (maps merge key by key); a new name must give every field of the active
//! driver's part.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::DriverKind;
pub use crate::driver::BUILTIN_SIZES;
use crate::driver::LocalSize;
use crate::driver::vcluster::SizeProfile;

/// One size as written in the configuration: each driver's part, as given (checked when resolved,
/// so an error can name the size and the part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SizeConfig {
    /// The local driver's part (fields of [`LocalSize`]).
    pub local: Option<serde_json::Value>,
    /// The vcluster driver's part (fields of [`SizeProfile`]).
    pub vcluster: Option<serde_json::Value>,
}

/// Every size profile, resolved: the names a request may use and what each means to each driver.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizes {
    /// Offered names, sorted.
    pub names: Vec<String>,
    /// The local driver's part of each size that has one.
    pub local: BTreeMap<String, LocalSize>,
    /// The vcluster driver's part of each size that has one.
    pub vcluster: BTreeMap<String, SizeProfile>,
}

/// Resolves `configured` (empty: the built-ins) and checks that `driver` can make every size and
/// that `default_size` is one of them. Errors name the key to fix.
pub fn resolve(
    configured: &BTreeMap<String, SizeConfig>,
    default_size: &str,
    driver: DriverKind,
) -> anyhow::Result<Sizes> {
    let builtin: BTreeMap<String, SizeConfig>;
    let configured = if configured.is_empty() {
        builtin = BUILTIN_SIZES
            .iter()
            .map(|n| ((*n).to_owned(), SizeConfig::default()))
            .collect();
        &builtin
    } else {
        configured
    };
    let mut sizes = Sizes {
        names: configured.keys().cloned().collect(),
        local: BTreeMap::new(),
        vcluster: BTreeMap::new(),
    };
    for (name, size) in configured {
        crate::domain::ClusterName::parse(name).map_err(|e| {
            anyhow::anyhow!("clusters.sizes.{name}: a size name must be a DNS label ({e})")
        })?;
        let local = part(name, "local", size.local.as_ref(), LocalSize::builtin(name))?;
        if let Some(local) = local {
            check_local(name, &local)?;
            sizes.local.insert(name.clone(), local);
        }
        let vc = part(
            name,
            "vcluster",
            size.vcluster.as_ref(),
            builtin_vcluster(name),
        )?;
        if let Some(vc) = vc {
            sizes.vcluster.insert(name.clone(), vc);
        }
    }
    for name in &sizes.names {
        let (has, part) = match driver {
            DriverKind::Local => (sizes.local.contains_key(name), "local"),
            DriverKind::Vcluster => (sizes.vcluster.contains_key(name), "vcluster"),
        };
        anyhow::ensure!(
            has,
            "clusters.sizes.{name}: the {part} driver is active but this size has no \
             [clusters.sizes.{name}.{part}] section (a size that is not built in must give its \
             driver's settings in full)"
        );
    }
    anyhow::ensure!(
        sizes.names.iter().any(|n| n == default_size),
        "clusters.default_size = {default_size:?} is not a configured size (sizes: {})",
        sizes.names.join(", ")
    );
    Ok(sizes)
}

fn builtin_vcluster(name: &str) -> Option<SizeProfile> {
    SizeProfile::defaults().remove(name)
}

/// One driver's part of size `name`: `given` merged over `builtin`, parsed as `T`.
fn part<T: Serialize + DeserializeOwned>(
    name: &str,
    key: &str,
    given: Option<&serde_json::Value>,
    builtin: Option<T>,
) -> anyhow::Result<Option<T>> {
    let base = match builtin {
        Some(b) => Some(serde_json::to_value(b)?),
        None => None,
    };
    let merged = match (base, given) {
        (None, None) => return Ok(None),
        (Some(base), None) => base,
        (None, Some(given)) => given.clone(),
        (Some(mut base), Some(given)) => {
            merge(&mut base, given);
            base
        }
    };
    serde_json::from_value(merged)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("clusters.sizes.{name}.{key}: {e}"))
}

/// Deep-merges `from` into `into`; `from` wins on everything but nested tables, which merge.
fn merge(into: &mut serde_json::Value, from: &serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(into), serde_json::Value::Object(from)) => {
            for (k, v) in from {
                match into.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        into.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (into, from) => *into = from.clone(),
    }
}

fn check_local(name: &str, s: &LocalSize) -> anyhow::Result<()> {
    // NB: below these the API server either refuses to start or thrashes its garbage collector.
    anyhow::ensure!(
        s.max_requests_inflight >= 1 && s.max_mutating_requests_inflight >= 1,
        "clusters.sizes.{name}.local: max_requests_inflight and max_mutating_requests_inflight \
         must be at least 1"
    );
    anyhow::ensure!(
        s.memory_limit_mib >= 128,
        "clusters.sizes.{name}.local.memory_limit_mib: at least 128 (a kube-apiserver needs \
         about that much to start)"
    );
    anyhow::ensure!(
        (1..=MAX_NODES).contains(&s.nodes),
        "clusters.sizes.{name}.local.nodes = {}: between 1 and {MAX_NODES}",
        s.nodes
    );
    anyhow::ensure!(
        (1..=MAX_PODS_PER_NODE).contains(&s.node_pods),
        "clusters.sizes.{name}.local.node_pods = {}: between 1 and {MAX_PODS_PER_NODE}",
        s.node_pods
    );
    anyhow::ensure!(
        is_quantity(&s.node_cpu, &["m"]),
        "clusters.sizes.{name}.local.node_cpu = {:?}: a CPU quantity such as \"4\" or \"500m\"",
        s.node_cpu
    );
    anyhow::ensure!(
        is_quantity(
            &s.node_memory,
            &["Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T"]
        ),
        "clusters.sizes.{name}.local.node_memory = {:?}: a memory quantity such as \"16Gi\"",
        s.node_memory
    );
    Ok(())
}

/// Most fake nodes one local cluster may have (each is a Node object and a lease kwok renews).
const MAX_NODES: u32 = 100;
/// Most pods one fake node may take.
const MAX_PODS_PER_NODE: u32 = 1000;

/// Whether `s` is a positive whole number with one of `suffixes` or none.
fn is_quantity(s: &str, suffixes: &[&str]) -> bool {
    let digits = suffixes
        .iter()
        .find_map(|suffix| s.strip_suffix(suffix))
        .unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mk(toml_src: &str) -> BTreeMap<String, SizeConfig> {
        #[derive(Deserialize)]
        struct W {
            sizes: BTreeMap<String, SizeConfig>,
        }
        use figment::providers::Format as _;
        let w: W = figment::Figment::from(figment::providers::Toml::string(toml_src))
            .extract()
            .unwrap();
        w.sizes
    }

    #[test]
    fn no_sizes_configured_means_the_builtins_for_both_drivers() {
        let sizes = resolve(&BTreeMap::new(), "small", DriverKind::Local).unwrap();
        assert_eq!(sizes.names, vec!["large", "medium", "small"]);
        assert_eq!(sizes.local["medium"], LocalSize::builtin("medium").unwrap());
        let nodes = |n: &str| sizes.local[n].nodes;
        assert_eq!(
            (nodes("small"), nodes("medium"), nodes("large")),
            (1, 3, 10)
        );
        assert_eq!(sizes.vcluster["large"], SizeProfile::large());
    }

    #[test]
    fn a_builtin_name_inherits_what_it_does_not_set() {
        let sizes = resolve(
            &mk("[sizes.small.local]\nmax_requests_inflight = 7\n[sizes.small.vcluster.quota]\n\"count/pods\" = \"5\"\n"),
            "small",
            DriverKind::Vcluster,
        )
        .unwrap();
        assert_eq!(
            sizes.names,
            vec!["small"],
            "configured sizes replace the built-in set"
        );
        assert_eq!(sizes.local["small"].max_requests_inflight, 7);
        assert_eq!(sizes.local["small"].memory_limit_mib, 512, "inherited");
        assert_eq!(sizes.local["small"].nodes, 1, "inherited");
        assert_eq!(sizes.vcluster["small"].quota["count/pods"], "5");
        assert_eq!(
            sizes.vcluster["small"].quota["requests.cpu"], "2",
            "maps merge by key"
        );
    }

    #[test]
    fn a_new_size_without_the_active_drivers_part_is_refused_naming_the_section() {
        let err = resolve(
            &mk("[sizes.xl.vcluster]\ncpu_request = \"2\"\nmemory_request = \"4Gi\"\nmemory_limit = \"8Gi\"\nquota = {}\nlimit_default = {}\nlimit_default_request = {}\n"),
            "xl",
            DriverKind::Local,
        )
        .unwrap_err();
        assert!(
            format!("{err}").contains("[clusters.sizes.xl.local]"),
            "{err}"
        );
    }

    #[test]
    fn a_new_size_missing_a_field_names_the_size_part_and_field() {
        let err = resolve(
            &mk("[sizes.xl.local]\nmax_requests_inflight = 10\n"),
            "xl",
            DriverKind::Local,
        )
        .unwrap_err();
        let msg = format!("{err}");
        assert!(
            msg.contains("clusters.sizes.xl.local") && msg.contains("max_mutating"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_fields_bad_values_and_a_missing_default_are_refused() {
        for (src, default, want) in [
            (
                "[sizes.small.local]\nmax_request = 1\n",
                "small",
                "unknown field",
            ),
            (
                "[sizes.small.local]\nmemory_limit_mib = 1\n",
                "small",
                "at least 128",
            ),
            (
                "[sizes.small.local]\nnodes = 0\n",
                "small",
                "local.nodes = 0",
            ),
            (
                "[sizes.small.local]\nnode_cpu = \"four\"\n",
                "small",
                "local.node_cpu",
            ),
            (
                "[sizes.small.local]\nnode_memory = \"16GB\"\n",
                "small",
                "local.node_memory",
            ),
            (
                "[sizes.small.local]\nnode_pods = 5000\n",
                "small",
                "local.node_pods",
            ),
            ("[sizes.small]\n", "tiny", "default_size"),
            ("[sizes.\"Not_A_Label\"]\n", "small", "DNS label"),
        ] {
            let err = resolve(&mk(src), default, DriverKind::Local).unwrap_err();
            assert!(format!("{err}").contains(want), "{src}: {err}");
        }
    }
}
