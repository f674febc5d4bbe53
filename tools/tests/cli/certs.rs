//! Test certificates: a CA and certificates it signs (for 127.0.0.1 and localhost), written
//! as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair,
};

pub struct Ca {
    cert: Certificate,
    key: KeyPair,
    pub pem: PathBuf,
}

/// A certificate and its key, as files.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

impl Ca {
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = or_panic(KeyPair::generate());
        let mut params = or_panic(CertificateParams::new(Vec::<String>::new()));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = or_panic(params.self_signed(&key));
        let pem = dir.join(format!("{name}.pem"));
        or_panic(std::fs::write(&pem, cert.pem()));
        Ca { cert, key, pem }
    }

    /// A certificate for 127.0.0.1 and localhost; `expired` makes one that ended in 2020.
    pub fn issue(&self, dir: &Path, name: &str, expired: bool) -> Issued {
        let key = or_panic(KeyPair::generate());
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let mut params = or_panic(CertificateParams::new(names));
        params.distinguished_name.push(DnType::CommonName, name);
        if expired {
            params.not_before = date_time_ymd(2019, 1, 1);
            params.not_after = date_time_ymd(2020, 1, 1);
        }
        let cert = or_panic(params.signed_by(&key, &self.cert, &self.key));
        let issued = Issued {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        or_panic(std::fs::write(&issued.cert, cert.pem()));
        or_panic(std::fs::write(&issued.key, key.serialize_pem()));
        issued
    }
}
