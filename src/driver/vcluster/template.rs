//! `server_template`: its placeholders, filling them in, and refusing unknown ones at load (a
//! typo would otherwise be handed out as a literal address).

/// The placeholder filled with the node port of the chart's Service, once it exists.
pub const NODE_PORT: &str = "{node_port}";
/// Every placeholder.
pub const PLACEHOLDERS: [&str; 5] = ["{release}", "{namespace}", "{id}", "{name}", NODE_PORT];

/// `template` for cluster `id` named `name`, without a trailing `/`; `{node_port}` is left in
/// place (see [`fill_node_port`]).
pub fn fill(template: &str, id: &str, name: &str) -> String {
    template
        .replace("{release}", id)
        .replace("{namespace}", &super::namespace_name(id))
        .replace("{id}", id)
        .replace("{name}", name)
        .trim_end_matches('/')
        .to_owned()
}

/// `server` with `{node_port}` replaced by `port`.
pub fn fill_node_port(server: &str, port: u16) -> String {
    server.replace(NODE_PORT, &port.to_string())
}

/// `Err` naming the first unknown placeholder or stray brace, and the valid placeholders.
pub fn check(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        let tail = &rest[i..];
        let token = tail
            .strip_prefix('{')
            .and_then(|t| t.find('}').map(|end| &tail[..end + 2]))
            .filter(|tok| !tok[1..].contains('{'));
        match token {
            Some(tok) if PLACEHOLDERS.contains(&tok) => rest = &tail[tok.len()..],
            Some(tok) => {
                return Err(format!(
                    "unknown placeholder {tok} (valid: {})",
                    PLACEHOLDERS.join(" ")
                ));
            }
            None => {
                return Err(format!(
                    "unmatched brace (placeholders: {})",
                    PLACEHOLDERS.join(" ")
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_but_the_node_port_is_left_for_later() {
        assert_eq!(
            fill(
                "https://{release}.{namespace}.svc:443/{id}/{name}/",
                "c-abc",
                "web"
            ),
            "https://c-abc.vcm-c-abc.svc:443/c-abc/web"
        );
        let server = fill("https://10.250.0.2:{node_port}/", "c-abc", "web");
        assert_eq!(server, "https://10.250.0.2:{node_port}");
        assert_eq!(fill_node_port(&server, 31443), "https://10.250.0.2:31443");
        assert_eq!(fill_node_port("https://x:443", 31443), "https://x:443");
    }

    #[test]
    fn unknown_placeholders_and_stray_braces_are_refused_naming_the_valid_ones() {
        let cases = [
            ("https://{release}.{namespace}.svc:443", None),
            ("https://10.0.0.1:{node_port}/{id}/{name}", None),
            ("https://[fd00::1]:{node_port}", None),
            ("https://{relase}.svc", Some("unknown placeholder {relase}")),
            ("https://{NodePort}", Some("unknown placeholder {NodePort}")),
            ("https://x:{node_port", Some("unmatched brace")),
            ("https://x}", Some("unmatched brace")),
            ("https://{{id}}", Some("unmatched brace")),
        ];
        for (template, expected) in cases {
            match (check(template), expected) {
                (Ok(()), None) => {}
                (Err(e), Some(want)) => {
                    assert!(e.contains(want), "{template}: {e}");
                    assert!(
                        e.contains("{node_port}"),
                        "{template}: lists the valid ones: {e}"
                    );
                }
                (got, _) => panic!("{template}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}
