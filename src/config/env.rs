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
