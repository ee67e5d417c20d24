//! What a Kubernetes API request does, read from its method, path and query the way the API
//! server's `RequestInfo` reads it: for the gateway's audit records.

use axum::http::Method;

/// The verb, resource and namespace of one API request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RequestInfo {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or
    /// for a non-resource path the lowercase method.
    pub verb: String,
    /// `pods`, `deployments.apps`, `pods/exec`; empty for a non-resource path.
    pub resource: String,
    /// The namespace, if the path names one.
    pub namespace: String,
    /// The object's name, if the path names one.
    pub name: String,
    /// Whether it is a long-lived stream (watch, follow, exec, attach, port-forward, proxy).
    pub streaming: bool,
}

/// Read `path` (below `/k8s/<id>`) and `query` of a request with `method`.
pub(super) fn parse(method: &Method, path: &str, query: Option<&str>) -> RequestInfo {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let param = |key: &str| {
        query.into_iter().flat_map(|q| q.split('&')).any(|kv| {
            kv.split_once('=')
                .is_some_and(|(k, v)| k == key && (v == "true" || v == "1"))
        })
    };
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => {
            return RequestInfo {
                verb: method.as_str().to_ascii_lowercase(),
                ..RequestInfo::default()
            };
        }
    };
    let mut info = RequestInfo::default();
    let rest = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => {
            info.namespace = (*ns).to_owned();
            tail
        }
        ["namespaces", ns] => {
            info.name = (*ns).to_owned();
            info.resource = "namespaces".into();
            &[][..]
        }
        other => other,
    };
    let mut subresource = "";
    match rest {
        // Discovery (`/api/v1`, `/apis/apps/v1`): not about a resource.
        [] if info.resource.is_empty() => {
            return RequestInfo {
                verb: method.as_str().to_ascii_lowercase(),
                ..RequestInfo::default()
            };
        }
        [] => {}
        [resource] => info.resource = (*resource).to_owned(),
        [resource, name] => {
            info.resource = (*resource).to_owned();
            info.name = (*name).to_owned();
        }
        [resource, name, sub, ..] => {
            info.resource = (*resource).to_owned();
            info.name = (*name).to_owned();
            subresource = sub;
        }
    }
    if !group.is_empty() && !info.resource.is_empty() {
        info.resource = format!("{}.{group}", info.resource);
    }
    if !subresource.is_empty() {
        info.resource = format!("{}/{subresource}", info.resource);
    }
    let watch = param("watch");
    info.verb = match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if info.name.is_empty() => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if info.name.is_empty() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
    .to_owned();
    info.streaming = watch
        || param("follow")
        || matches!(subresource, "exec" | "attach" | "portforward" | "proxy");
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(
        method: Method,
        path: &str,
        query: Option<&str>,
    ) -> (String, String, String, String, bool) {
        let i = parse(&method, path, query);
        (i.verb, i.resource, i.namespace, i.name, i.streaming)
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn requests_read_like_the_api_servers_request_info() {
        assert_eq!(
            info(Method::GET, "/api/v1/namespaces/default/pods", None),
            (s("list"), s("pods"), s("default"), s(""), false)
        );
        assert_eq!(
            info(
                Method::GET,
                "/api/v1/namespaces/default/pods",
                Some("watch=true&rv=1")
            ),
            (s("watch"), s("pods"), s("default"), s(""), true)
        );
        assert_eq!(
            info(
                Method::POST,
                "/api/v1/namespaces/ns/pods/web/exec",
                Some("command=sh")
            ),
            (s("create"), s("pods/exec"), s("ns"), s("web"), true)
        );
        assert_eq!(
            info(
                Method::GET,
                "/api/v1/namespaces/ns/pods/web/log",
                Some("follow=true")
            ),
            (s("get"), s("pods/log"), s("ns"), s("web"), true)
        );
        assert_eq!(
            info(
                Method::PATCH,
                "/apis/apps/v1/namespaces/ns/deployments/d",
                None
            ),
            (s("patch"), s("deployments.apps"), s("ns"), s("d"), false)
        );
        assert_eq!(
            info(Method::DELETE, "/api/v1/namespaces/gone", None),
            (s("delete"), s("namespaces"), s(""), s("gone"), false)
        );
        assert_eq!(
            info(Method::DELETE, "/apis/batch/v1/namespaces/ns/jobs", None),
            (
                s("deletecollection"),
                s("jobs.batch"),
                s("ns"),
                s(""),
                false
            )
        );
        assert_eq!(
            info(Method::GET, "/apis", None),
            (s("get"), s(""), s(""), s(""), false)
        );
        assert_eq!(
            info(Method::GET, "/apis/apps/v1", None),
            (s("get"), s(""), s(""), s(""), false)
        );
        assert_eq!(
            info(Method::GET, "/version", None),
            (s("get"), s(""), s(""), s(""), false)
        );
        assert_eq!(
            info(Method::GET, "/api/v1/nodes", Some("watch=1")),
            (s("watch"), s("nodes"), s(""), s(""), true)
        );
    }
}
