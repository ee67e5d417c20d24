//! A verified client certificate → a [`Principal`], through `[[tls.client_rules]]`.
//!
//! rustls has already checked the chain, the validity period and the CA before anything here
//! runs; this module only reads names out of the leaf and finds the first rule that fits.

use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer as _};

use crate::{
    config::ClientCertRule,
    domain::Principal,
    error::{Error, Result},
};

/// The names of a client certificate that rules can match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertNames {
    /// The subject's common name (the first one, if several).
    pub cn: Option<String>,
    /// The subject's organizations.
    pub o: Vec<String>,
    /// The subject's organizational units.
    pub ou: Vec<String>,
    /// URI subject alternative names.
    pub uri_sans: Vec<String>,
    /// DNS subject alternative names.
    pub dns_sans: Vec<String>,
}

/// What a TLS connection's verified client certificate stands for; put in each request's
/// extensions by the TLS listener, read by the `Authenticated` extractor when the request has
/// no `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCertAuth {
    /// A rule matched: the caller is this principal.
    Principal(Principal),
    /// The certificate is valid but maps to nobody; the message says why and what to do.
    Refused(String),
}

/// `[[tls.client_rules]]`, in order.
#[derive(Debug, Clone, Default)]
pub struct ClientRules(Vec<ClientCertRule>);

// === impl CertNames ===

impl CertNames {
    /// The names in a DER certificate; an error names what could not be read.
    pub fn from_der(der: &[u8]) -> std::result::Result<Self, String> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("the client certificate does not parse: {e}"))?;
        let subject = cert.subject();
        let mut names = Self {
            cn: subject.iter_common_name().find_map(attr_text),
            o: subject.iter_organization().filter_map(attr_text).collect(),
            ou: subject
                .iter_organizational_unit()
                .filter_map(attr_text)
                .collect(),
            ..Self::default()
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => names.uri_sans.push((*uri).to_owned()),
                    GeneralName::DNSName(dns) => names.dns_sans.push((*dns).to_owned()),
                    _ => {}
                }
            }
        }
        Ok(names)
    }

    /// `CN="…"` for messages (`no CN` when it has none).
    fn describe(&self) -> String {
        match &self.cn {
            Some(cn) => format!("CN={cn:?}"),
            None => "with no CN".to_owned(),
        }
    }
}

// === impl ClientCertAuth ===

impl ClientCertAuth {
    /// The principal, or `Unauthenticated` with the reason the certificate was not enough.
    pub fn principal(&self) -> Result<Principal> {
        match self {
            Self::Principal(p) => Ok(p.clone()),
            Self::Refused(why) => Err(Error::Unauthenticated(why.clone())),
        }
    }
}

// === impl ClientRules ===

impl ClientRules {
    /// The rules, to be tried in this order.
    pub fn new(rules: Vec<ClientCertRule>) -> Self {
        Self(rules)
    }

    /// What a verified certificate with `names` stands for: the first rule whose every
    /// matcher fits makes the principal.
    pub fn resolve(&self, names: &CertNames) -> ClientCertAuth {
        let Some(rule) = self.0.iter().find(|r| matches(r, names)) else {
            return ClientCertAuth::Refused(format!(
                "the client certificate {} matches no tls.client_rules entry: add a rule for it \
                 to the server's configuration, or send Authorization: Bearer <token>",
                names.describe()
            ));
        };
        let Some(name) = rule.name.clone().or_else(|| names.cn.clone()) else {
            return ClientCertAuth::Refused(
                "the client certificate has no CN and its tls.client_rules entry gives no name: \
                 set `name` in the rule"
                    .into(),
            );
        };
        ClientCertAuth::Principal(Principal {
            subject: format!("cert:{name}"),
            display: names.cn.clone().unwrap_or_else(|| name.clone()),
            role: rule.role,
            team: rule.team.clone(),
            repository: None,
            claims: None,
        })
    }

    /// The DER leaf certificate of a connection, parsed and resolved; a leaf that does not
    /// parse (rustls verified it, so this is unlikely) is refused with the parser's reason.
    pub fn resolve_der(&self, der: &[u8]) -> ClientCertAuth {
        match CertNames::from_der(der) {
            Ok(names) => self.resolve(&names),
            Err(why) => ClientCertAuth::Refused(why),
        }
    }
}

/// A name attribute's text (`None` when it is not a string type).
fn attr_text(attr: &x509_parser::x509::AttributeTypeAndValue<'_>) -> Option<String> {
    attr.as_str().ok().map(str::to_owned)
}

/// Every matcher the rule gives fits the certificate (exact comparison).
fn matches(rule: &ClientCertRule, names: &CertNames) -> bool {
    let one = |want: &Option<String>, have: Option<&String>| {
        want.as_ref().is_none_or(|w| have.is_some_and(|h| h == w))
    };
    let any = |want: &Option<String>, have: &[String]| {
        want.as_ref().is_none_or(|w| have.iter().any(|h| h == w))
    };
    rule.has_matcher()
        && one(&rule.cn, names.cn.as_ref())
        && any(&rule.o, &names.o)
        && any(&rule.ou, &names.ou)
        && any(&rule.uri_san, &names.uri_sans)
        && any(&rule.dns_san, &names.dns_sans)
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
