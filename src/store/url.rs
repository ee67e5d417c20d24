//! Store URLs as they may be shown: in errors, log lines and messages to the operator.

/// `url` fit to show: a password in it (`scheme://user:password@host…`, or a `password=`
/// parameter) becomes `***`. A password with an unescaped `/`, `?`, `#` or `@` in it is hidden
/// too (more may be hidden than the password: never less).
pub fn redact_url(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    // NB: the last `@` anywhere after the scheme, not only in the authority: an unescaped
    // `/`, `?` or `#` in a password would otherwise end the authority early.
    let shown = match url[start..].rfind('@').map(|i| start + i) {
        Some(at) => match url[start..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..start + colon], &url[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    };
    redact_password_parameter(&shown)
}

/// `url` with the value of a `password=` query parameter (which the PostgreSQL driver also
/// takes) as `***`.
fn redact_password_parameter(url: &str) -> String {
    let Some(query) = url.find('?') else {
        return url.to_owned();
    };
    let mut out = url[..=query].to_owned();
    let params: Vec<String> = url[query + 1..]
        .split('&')
        .map(|p| match p.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => p.to_owned(),
        })
        .collect();
    out.push_str(&params.join("&"));
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_password_in_a_store_url_is_never_shown() {
        let cases = [
            (
                "postgres://vcm:s3cr%40t@db:5432/vcm",
                "postgres://vcm:***@db:5432/vcm",
                "user and password",
            ),
            (
                "postgresql://vcm:p@ss@db/vcm?sslmode=require",
                "postgresql://vcm:***@db/vcm?sslmode=require",
                "an @ in the password",
            ),
            (
                "postgres://vcm@db/vcm",
                "postgres://vcm@db/vcm",
                "no password",
            ),
            (
                "postgres:///vcm?host=/run/postgresql",
                "postgres:///vcm?host=/run/postgresql",
                "a socket, no authority",
            ),
            (
                "postgres://vcm:a/b@db/vcm",
                "postgres://vcm:***@db/vcm",
                "an unescaped / in the password",
            ),
            (
                "sqlite:///var/lib/vcm/vcm.db",
                "sqlite:///var/lib/vcm/vcm.db",
                "a file",
            ),
            (
                "postgres://vcm:a?b@db/vcm",
                "postgres://vcm:***@db/vcm",
                "an unescaped ? in the password",
            ),
            (
                "postgres://db/vcm?user=vcm&password=s3cret&sslmode=require",
                "postgres://db/vcm?user=vcm&password=***&sslmode=require",
                "a password parameter",
            ),
            ("sqlite::memory:", "sqlite::memory:", "no scheme separator"),
        ];
        for (url, shown, why) in cases {
            assert_eq!(redact_url(url), shown, "{why}");
        }
    }
}
