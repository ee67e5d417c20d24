//! Certificates for the TLS tests, made with rcgen: a CA, server and client leaves, and
//! leaves outside their validity period.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber, date_time_ymd,
};

/// A PEM certificate and its PEM private key.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that issues leaves.
pub struct Ca {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// What a leaf says about itself.
pub struct Leaf<'a> {
    pub cn: &'a str,
    pub o: Option<&'a str>,
    pub sans: &'a [&'a str],
    pub serial: u64,
    pub client: bool,
    /// `(from, until)` years; `None`: valid from 2020 to 2100.
    pub years: Option<(i32, i32)>,
}

impl Ca {
    pub fn new(cn: &str) -> Self {
        let key = KeyPair::generate().expect("generating a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-signing the CA");
        Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn issue(&self, leaf: &Leaf<'_>) -> Pem {
        let key = KeyPair::generate().expect("generating a leaf key");
        let sans: Vec<String> = leaf.sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, leaf.cn);
        if let Some(o) = leaf.o {
            params.distinguished_name.push(DnType::OrganizationName, o);
        }
        params.serial_number = Some(SerialNumber::from(leaf.serial));
        params.extended_key_usages = vec![if leaf.client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let (from, until) = leaf.years.unwrap_or((2020, 2100));
        params.not_before = date_time_ymd(from, 1, 1);
        params.not_after = date_time_ymd(until, 1, 1);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("signing a leaf");
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server(&self, cn: &str, serial: u64) -> Pem {
        self.issue(&Leaf {
            cn,
            o: None,
            sans: &["127.0.0.1", "localhost"],
            serial,
            client: false,
            years: None,
        })
    }

    /// A client certificate valid now.
    pub fn client(&self, cn: &str, o: Option<&str>) -> Pem {
        self.client_for_years(cn, o, None)
    }

    /// A client certificate valid from `years.0` to `years.1`.
    pub fn client_for_years(&self, cn: &str, o: Option<&str>, years: Option<(i32, i32)>) -> Pem {
        self.issue(&Leaf {
            cn,
            o,
            sans: &[],
            serial: 1000,
            client: true,
            years,
        })
    }
}
