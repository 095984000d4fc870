//! Test material for the security tests: a temporary directory, certificates made at run
//! time (a CA, a server certificate for 127.0.0.1/localhost, client certificates) and users
//! files with argon2 hashes.

use std::path::{Path, PathBuf};

use aws_flightsql::auth::hash_password;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A directory removed when dropped.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new() -> TempDir {
        TempDir(
            tempfile::Builder::new()
                .prefix("aws-flightsql-test-")
                .tempdir()
                .expect("temp dir"),
        )
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

/// A CA that signs server and client certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem: String,
}

/// A certificate and its key, PEM.
pub struct CertKey {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = issuer.pem();
        Ca { issuer, pem }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server(&self) -> CertKey {
        self.sign(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate.
    pub fn client(&self, name: &str) -> CertKey {
        self.sign(vec![name.into()], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn sign(&self, names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> CertKey {
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        CertKey {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// A users file with `(name, password, role)` entries, hashed.
pub fn users_file(dir: &TempDir, users: &[(&str, &str, &str)]) -> PathBuf {
    let text: String = users
        .iter()
        .map(|(name, password, role)| {
            format!(
                "[[users]]\nname = \"{name}\"\npassword_hash = '{}'\nrole = \"{role}\"\n\n",
                hash_password(password).unwrap()
            )
        })
        .collect();
    dir.write("users.toml", text)
}
