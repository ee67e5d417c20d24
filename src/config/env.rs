//! `VCM_*` environment variables as a figment provider: strip the prefix, lowercase, `__` nests.

use figment::{
    Metadata, Profile, Provider,
    value::{Dict, Map, Value},
};

/// Prefix of the environment variables read as configuration.
const ENV_PREFIX: &str = "VCM_";

/// `VCM_*` variables that belong to the client and tooling, not to the server configuration.
/// They share the prefix so one shell can drive both; the loader skips them instead of
/// reporting them as unknown keys.
const ENV_NOT_CONFIG: &[&str] = &[
    "VCM_ADDR",
    "VCM_TOKEN",
    "VCM_OUTPUT",
    "VCM_K8S_BIN_DIR",
    "VCM_CONFIG",
    "VCM_TOKEN_FILE",
    "VCM_ALLOW_INSECURE_HTTP",
    "VCM_CACERT",
    "VCM_CLIENT_CERT",
    "VCM_CLIENT_KEY",
];

/// `VCM_*` variables as a figment provider.
///
/// NB: figment's `Env` reads the process environment only; taking the pairs as a value keeps
/// the loader testable without mutating global state. The key mapping is `Env`'s:
/// strip the prefix, lowercase, `__` nests.
pub(super) struct EnvSource {
    vars: Vec<(String, String)>,
}

impl EnvSource {
    pub(super) fn new(env: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .filter(|(name, _)| !ENV_NOT_CONFIG.contains(&name.as_str()))
            .filter(|(name, value)| !is_service_link(name, value))
            .collect();
        Self { vars }
    }
}

impl Provider for EnvSource {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("`{ENV_PREFIX}` environment variable(s)")).interpolater(
            |_: &Profile, keys: &[&str]| {
                format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase())
            },
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (name, value) in &self.vars {
            let key = name[ENV_PREFIX.len()..]
                .to_ascii_lowercase()
                .replace("__", ".");
            if key.split('.').any(str::is_empty) {
                return Err(format!("environment variable {name} does not name a key").into());
            }
            // Parsed like figment's `Env` does: `true`, `30` and `[a, b]` get their types.
            // NB: figment 0.10.19's escape handling indexes bytes by character count and panics
            // on a backslash after a multibyte character; such a value cannot be a number, bool
            // or list of ours anyway, so it stays a plain string (and is refused by its key's
            // type if that wants something else).
            let value = if value.is_ascii() {
                let Ok(value) = value.parse::<Value>();
                value
            } else {
                Value::from(value.clone())
            };
            let nested = figment::util::nest(&key, value)
                .into_dict()
                .expect("a non-empty key always nests into a dictionary");
            merge_into(&mut dict, nested);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Whether `name=value` is one of the variables Kubernetes puts in every pod for each Service
/// of its namespace (`enableServiceLinks`, on by default): a Service named `vcm` (or `vcm-…`)
/// gives `VCM_SERVICE_HOST`, `VCM_SERVICE_PORT[_<port name>]`, `VCM_PORT=tcp://…` and
/// `VCM_PORT_<n>_<TCP|UDP|SCTP>[_PROTO|_PORT|_ADDR]`. They carry the prefix but are no
/// configuration, and refusing them as unknown keys crash-loops vcm in a namespace where such
/// a Service exists (a manifest that does not set `enableServiceLinks: false`, as the chart
/// does).
/// NB: no configuration key ends like these, and `VCM_…_PORT` is taken only with a URL value.
fn is_service_link(name: &str, value: &str) -> bool {
    if name.contains("__") {
        return false;
    }
    if name.ends_with("_SERVICE_HOST") || name.ends_with("_SERVICE_PORT") {
        return true;
    }
    if name.contains("_SERVICE_PORT_") {
        return true;
    }
    // `…_PORT_<n>_<PROTO>` and its `_PROTO`, `_PORT`, `_ADDR` variants.
    if let Some((_, tail)) = name.rsplit_once("_PORT_")
        && is_port_variable(tail)
    {
        return true;
    }
    if name.ends_with("_PORT") {
        return ["tcp://", "udp://", "sctp://"]
            .iter()
            .any(|scheme| value.starts_with(scheme));
    }
    false
}

/// `<n>_<TCP|UDP|SCTP>` with an optional `_PROTO`, `_PORT` or `_ADDR`.
fn is_port_variable(tail: &str) -> bool {
    let mut parts = tail.split('_');
    let number = parts
        .next()
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let proto = parts
        .next()
        .is_some_and(|p| matches!(p, "TCP" | "UDP" | "SCTP"));
    let rest = parts.next();
    number
        && proto
        && parts.next().is_none()
        && rest.is_none_or(|r| matches!(r, "PROTO" | "PORT" | "ADDR"))
}

/// Deep-merges `from` into `into`; on a conflict the value from `from` wins.
fn merge_into(into: &mut Dict, from: Dict) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, nested)) => {
                merge_into(existing, nested)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_service_link;

    #[test]
    fn kubernetes_service_links_are_not_configuration() {
        // What a pod gets for a Service `vcm` with a port `http` 8080 (and one for `vcm-metrics`).
        for (name, value) in [
            ("VCM_SERVICE_HOST", "10.96.0.12"),
            ("VCM_SERVICE_PORT", "8080"),
            ("VCM_SERVICE_PORT_HTTP", "8080"),
            ("VCM_PORT", "tcp://10.96.0.12:8080"),
            ("VCM_PORT_8080_TCP", "tcp://10.96.0.12:8080"),
            ("VCM_PORT_8080_TCP_PROTO", "tcp"),
            ("VCM_PORT_8080_TCP_PORT", "8080"),
            ("VCM_PORT_8080_TCP_ADDR", "10.96.0.12"),
            ("VCM_METRICS_SERVICE_HOST", "10.96.0.13"),
            ("VCM_METRICS_PORT_9464_TCP", "tcp://10.96.0.13:9464"),
        ] {
            assert!(is_service_link(name, value), "{name}={value}");
        }
        // Configuration keys stay configuration, including ones that end in `_PORT`.
        for (name, value) in [
            ("VCM_LISTEN", "0.0.0.0:8080"),
            ("VCM_METRICS__LISTEN", "0.0.0.0:9464"),
            ("VCM_STORE_URL", "postgres://db/vcm"),
            ("VCM_SMTP_PORT", "25"),
            ("VCM_PORT_8080_TCP_HOST", "x"),
            ("VCM_PORT_X_TCP", "tcp://10.96.0.12:8080"),
            ("VCM_NOTIFY__SERVICE_HOST", "a"),
        ] {
            assert!(!is_service_link(name, value), "{name}={value}");
        }
    }
}
