//! Certificates and keys for one cluster: a serving CA and certificate, a client CA that signs
//! the certificates of test identities, and the service-account signing key pair.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use super::{Error, Result};

/// A certificate authority that can sign leaf certificates.
pub(crate) struct Ca {
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
}

/// A PEM certificate and its PEM (PKCS#8) private key.
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

fn cert_err(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> Error {
    let what = what.into();
    move |source| Error::Certificate { what, source }
}

impl Ca {
    pub(crate) fn new(common_name: &str) -> Result<Self> {
        let key = KeyPair::generate().map_err(cert_err(format!("key of CA {common_name}")))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(cert_err(format!("CA {common_name}")))?;
        Ok(Ca {
            cert_pem: cert.pem(),
            params,
            key,
        })
    }

    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A TLS server certificate for loopback (IP SANs 127.0.0.1 and ::1, DNS SAN localhost).
    pub(crate) fn issue_server(&self, common_name: &str) -> Result<Leaf> {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "kubernetes".to_string()])
                .map_err(cert_err(format!("serving certificate {common_name}")))?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        params.distinguished_name = dn(common_name, &[]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.sign(params, &format!("serving certificate {common_name}"))
    }

    /// A TLS client certificate: Kubernetes reads the user from the CN and the groups from O.
    pub(crate) fn issue_client(&self, user: &str, groups: &[String]) -> Result<Leaf> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(user, groups);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.sign(params, &format!("client certificate for {user}"))
    }

    fn sign(&self, params: CertificateParams, what: &str) -> Result<Leaf> {
        let key = KeyPair::generate().map_err(cert_err(format!("key of {what}")))?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(cert_err(what))?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn dn(common_name: &str, organizations: &[String]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    for org in organizations {
        dn.push(DnType::OrganizationName, org.as_str());
    }
    dn
}

/// The service-account token signing key pair: (private key PEM, public key PEM).
pub(crate) fn service_account_keys() -> Result<(String, String)> {
    let key = KeyPair::generate().map_err(cert_err("service-account signing key"))?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}
