//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the
//! wire types' `ToSchema` derives; served at `/openapi.json`.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use serde_json::{Value, json};

use super::query;
use crate::api::{ErrorBody, ErrorDetail, HostView};
use crate::domain::{ClusterName, MAX_LABELS, MAX_SELECTOR_REQUIREMENTS, Ttl, labels};
use crate::service::{ClusterPolicy, IdempotencyKey};

/// The document's fixed parts; the paths and their schemas come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "vcm",
        description = "Temporary Kubernetes clusters for CI/CD, on demand. Every error body is \
            `{\"error\":{\"code\",\"message\",\"request_id\"}}`."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "clusters", description = "Virtual clusters and their credentials"),
        (name = "teams", description = "Teams' use of their quotas"),
        (name = "audit", description = "The tamper-evident audit log (admins)"),
    ),
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("vcm_<64 hex characters>")
            .description(Some("An API token (`vcm token create`)"))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document as this server serves it: the generated one with every rule the server
/// enforces stated on it, including the rules configuration decides (sizes, versions, hosts,
/// duration bounds). A request the document allows is one the server accepts, and the other
/// way round (up to state: a taken name, a missing cluster).
pub fn served(doc: &utoipa::openapi::OpenApi, policy: &ClusterPolicy, hosts: &[HostView]) -> Value {
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serialises to JSON");
    add_access_statuses(&mut doc);
    for missing in apply(&mut doc, &edits(policy, hosts)) {
        // NB: a renamed field or parameter; the unit tests fail on this first.
        tracing::warn!(target = %missing, "OpenAPI rule has nothing to apply to");
    }
    doc
}

/// Every authenticated operation may answer 429 (rate limits), and every one that acts on a
/// resource 403 (the caller's role lacks the right); lists show only what the caller may see.
fn add_access_statuses(doc: &mut Value) {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
        })
    };
    let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if op.get("security").is_none() {
                continue;
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let lists = method == "get"
                && matches!(path.as_str(), "/v1/clusters" | "/v1/hosts" | "/v1/whoami");
            if !lists {
                responses
                    .entry("403")
                    .or_insert_with(|| error("The caller's role lacks the right"));
            }
            responses.entry("429").or_insert_with(|| {
                let mut e = error("Rate limited; retry after `Retry-After` seconds");
                e["headers"] = json!({ "Retry-After": { "schema": { "type": "integer" } } });
                e
            });
        }
    }
}

/// One statement added to the generated document.
enum Edit {
    /// Merge these keys into the object at a JSON pointer.
    Set(String, Value),
    /// Remove a key of the object at a JSON pointer.
    Remove(String, &'static str),
    /// Merge these keys into a parameter `(path, method, name)`.
    Param(&'static str, &'static str, &'static str, Value),
}

/// Applies `edits`; returns the targets that were not found.
fn apply(doc: &mut Value, edits: &[Edit]) -> Vec<String> {
    let mut missing = vec![];
    for edit in edits {
        let (target, keys) = match edit {
            Edit::Set(pointer, keys) => (doc.pointer_mut(pointer), keys),
            Edit::Remove(pointer, key) => {
                let removed = doc
                    .pointer_mut(pointer)
                    .and_then(Value::as_object_mut)
                    .and_then(|object| object.remove(*key));
                if removed.is_none() {
                    missing.push(format!("{pointer}/{key}"));
                }
                continue;
            }
            Edit::Param(path, method, name, keys) => {
                let pointer = format!("/paths/{}/{method}/parameters", path.replace('/', "~1"));
                let param = doc
                    .pointer_mut(&pointer)
                    .and_then(Value::as_array_mut)
                    .and_then(|params| params.iter_mut().find(|p| p["name"] == *name));
                (param, keys)
            }
        };
        match (target.and_then(Value::as_object_mut), keys.as_object()) {
            (Some(object), Some(keys)) => {
                object.extend(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            _ => missing.push(describe(edit)),
        }
    }
    missing
}

fn describe(edit: &Edit) -> String {
    match edit {
        Edit::Set(pointer, _) | Edit::Remove(pointer, _) => pointer.clone(),
        Edit::Param(path, method, name, _) => format!("{method} {path} parameter {name}"),
    }
}

/// Every rule the generated document cannot state by itself.
fn edits(policy: &ClusterPolicy, hosts: &[HostView]) -> Vec<Edit> {
    let schema = |name: &str, field: &str| format!("/components/schemas/{name}/properties/{field}");
    let nullable_enum = |values: Vec<Value>| {
        let mut values = values;
        values.push(Value::Null);
        json!({ "enum": values })
    };
    let [key, key_length] = labels::key_patterns();
    let labels = json!({
        "maxProperties": MAX_LABELS,
        "propertyNames": { "type": "string", "pattern": key, "allOf": [{ "pattern": key_length }] },
        "additionalProperties": { "type": "string", "pattern": labels::value_pattern() },
    });
    let [selector, selector_length] = labels::selector_patterns();
    let selectors = |min_items: usize| {
        json!({ "schema": {
            "type": "array",
            "minItems": min_items,
            "maxItems": MAX_SELECTOR_REQUIREMENTS,
            "items": { "type": "string", "pattern": selector, "allOf": [{ "pattern": selector_length }] },
        }})
    };
    let ttl = json!({ "pattern": Ttl::pattern(policy.max_ttl) });
    let idle_timeout = json!({ "pattern": Ttl::pattern(Ttl::MAX) });
    // A selector names labels of one host, each with that host's value (or nothing: any host).
    let host_selectors: Vec<Value> = std::iter::once(json!({ "type": "null" }))
        .chain(hosts.iter().map(|h| {
            let properties: serde_json::Map<String, Value> = h
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), json!({ "const": v })))
                .collect();
            json!({ "type": "object", "properties": properties, "additionalProperties": false })
        }))
        .collect();
    let id_param = |path, method| {
        Edit::Param(
            path,
            method,
            "id",
            json!({ "schema": { "type": "string", "pattern": ClusterName::PATTERN } }),
        )
    };
    let strings = |items: &[String]| items.iter().map(|s| json!(s)).collect::<Vec<_>>();
    let mut edits = vec![
        Edit::Set(
            schema("CreateClusterRequest", "name"),
            json!({ "pattern": ClusterName::PATTERN }),
        ),
        Edit::Set(
            schema("CreateClusterRequest", "size"),
            nullable_enum(strings(&policy.sizes)),
        ),
        Edit::Set(
            schema("CreateClusterRequest", "kubernetes_version"),
            nullable_enum(strings(&policy.kubernetes_versions)),
        ),
        Edit::Set(schema("CreateClusterRequest", "ttl"), ttl.clone()),
        Edit::Set(
            schema("CreateClusterRequest", "idle_timeout"),
            idle_timeout.clone(),
        ),
        Edit::Set(
            schema("CreateClusterRequest", "host"),
            nullable_enum(hosts.iter().map(|h| json!(h.name)).collect()),
        ),
        Edit::Set(
            schema("CreateClusterRequest", "host_selector"),
            json!({ "anyOf": host_selectors, "maxProperties": MAX_LABELS }),
        ),
        Edit::Set(schema("CreateClusterRequest", "labels"), labels.clone()),
        // `host` and `host_selector` exclude each other (a null counts as left out).
        Edit::Set(
            "/components/schemas/CreateClusterRequest".into(),
            json!({ "not": {
                "required": ["host", "host_selector"],
                "properties": { "host": { "type": "string" }, "host_selector": { "type": "object" } },
            }}),
        ),
        Edit::Set(
            schema("CreateTokenRequest", "ttl"),
            json!({ "pattern": Ttl::pattern(Ttl::MAX) }),
        ),
        Edit::Set(schema("UpdateClusterRequest", "ttl"), ttl),
        Edit::Set(schema("UpdateClusterRequest", "idle_timeout"), idle_timeout),
        Edit::Set(schema("UpdateClusterRequest", "labels"), labels),
        Edit::Set(
            schema("KubeconfigRequest", "ttl"),
            json!({ "pattern": Ttl::pattern(policy.max_kubeconfig_ttl) }),
        ),
        Edit::Param(
            "/v1/clusters",
            "post",
            "Idempotency-Key",
            json!({ "schema": { "type": "string", "pattern": IdempotencyKey::PATTERN } }),
        ),
        Edit::Set(
            "/paths/~1v1~1clusters/post/responses/202/headers/Idempotent-Replayed".into(),
            json!({ "schema": { "type": "string", "enum": ["true"] } }),
        ),
        Edit::Param(
            "/v1/clusters",
            "get",
            "phase",
            json!({ "schema": { "type": "string", "enum": query::phase_names() } }),
        ),
        Edit::Param(
            "/v1/clusters",
            "get",
            "owner",
            json!({ "schema": { "type": "string", "maxLength": query::MAX_OWNER_CHARS } }),
        ),
        Edit::Param("/v1/clusters", "get", "label", selectors(0)),
        Edit::Param(
            "/v1/clusters",
            "get",
            "limit",
            json!({ "schema": { "type": "integer", "minimum": 1, "maximum": query::MAX_LIMIT } }),
        ),
        Edit::Param(
            "/v1/clusters",
            "get",
            "cursor",
            json!({ "schema": { "type": "string", "pattern": query::CURSOR_PATTERN } }),
        ),
        Edit::Param("/v1/clusters", "delete", "label", selectors(1)),
    ];
    // PUT names only what may change; the immutable fields are refused like any unknown one.
    for field in ["size", "kubernetes_version", "name", "host"] {
        edits.push(Edit::Remove(
            "/components/schemas/UpdateClusterRequest/properties".into(),
            field,
        ));
    }
    for (path, methods) in [
        ("/v1/clusters/{id}", &["get", "put", "delete"][..]),
        ("/v1/clusters/{id}/kubeconfig", &["post"]),
        ("/v1/clusters/{id}/keepalive", &["post"]),
        ("/v1/clusters/{id}/events", &["get"]),
    ] {
        edits.extend(methods.iter().map(|method| id_param(path, method)));
    }
    edits
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mk_host(name: &str, labels: &[(&str, &str)]) -> HostView {
        HostView {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            reachable: true,
            max_clusters: None,
            clusters: 0,
            used_percent: None,
            message: String::new(),
        }
    }

    #[test]
    fn every_rule_finds_its_place_in_the_generated_document() {
        // Arrange
        let mut doc = serde_json::to_value(crate::http::openapi()).unwrap();
        let hosts = [mk_host("eu", &[("region", "eu")])];

        // Act
        let missing = apply(&mut doc, &edits(&ClusterPolicy::default(), &hosts));

        // Assert
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn the_served_document_states_what_configuration_allows() {
        // Arrange
        let policy = ClusterPolicy::default();
        let hosts = [mk_host("eu", &[("region", "eu")])];

        // Act
        let doc = served(&crate::http::openapi(), &policy, &hosts);

        // Assert
        let create = &doc["components"]["schemas"]["CreateClusterRequest"]["properties"];
        assert_eq!(
            create["size"]["enum"],
            json!(["small", "medium", "large", null])
        );
        assert_eq!(create["host"]["enum"], json!(["eu", null]));
        assert_eq!(
            create["ttl"]["pattern"],
            json!(Ttl::pattern(policy.max_ttl))
        );
        let update = &doc["components"]["schemas"]["UpdateClusterRequest"]["properties"];
        let fields: Vec<&String> = update.as_object().unwrap().keys().collect();
        assert_eq!(fields, ["idle_timeout", "labels", "ttl"]);
    }
}
