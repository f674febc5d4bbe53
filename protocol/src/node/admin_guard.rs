//! Who may read the admin listener's `/metrics` when it listens beyond loopback on a node
//! that requires keys: a request carrying an access key of role `admin`, either as
//! `Authorization: Bearer ID:SECRET` (the `ID:SECRET` text `ringblob` takes) or as HTTP Basic
//! with the key id as user name and the secret as password (what Prometheus' `basic_auth`
//! sends). The node keeps only each key's verifier, so it derives the verifier from the
//! secret presented and compares the two in constant time. Failures count against the
//! source address like failed `AUTH`s (`access::FailureLimiter`); secrets are never logged.
//! `/health` and `/ready` stay open: probes carry no credentials and learn nothing but
//! liveness. Over plaintext the secret would cross the network, so the binary serves such a
//! listener with TLS (docs/SECURITY.md).

use std::net::IpAddr;
use std::time::Instant;

use base64::Engine as _;

use super::access::Access;
use crate::auth::{AccessKey, Role};

/// Why a request to a guarded route is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminDenied {
    /// No key, a malformed one, or one the node does not accept: HTTP 401.
    Unauthorized(&'static str),
    /// A valid key without the admin role: HTTP 403.
    Forbidden(String),
    /// Too many failures from this address lately: HTTP 429, retry after the seconds.
    Throttled(u64),
}

/// Checks the `Authorization` header of a request from `source` (see the module docs).
pub fn check(
    access: &Access,
    authorization: Option<&str>,
    source: Option<IpAddr>,
) -> Result<(), AdminDenied> {
    if let Some((wait, _)) = source.and_then(|ip| access.limiter.blocked(ip, Instant::now())) {
        return Err(AdminDenied::Throttled(wait.as_secs().max(1)));
    }
    let verdict = authorization
        .ok_or(AdminDenied::Unauthorized("an admin key is required"))
        .and_then(presented_key)
        .and_then(|key| {
            let who = access
                .check_secret(&key)
                .ok_or(AdminDenied::Unauthorized("unknown key or wrong secret"))?;
            match who.role >= Role::Admin {
                true => Ok(()),
                false => Err(AdminDenied::Forbidden(format!(
                    "key {} has role {}, not admin",
                    who.name(),
                    who.role
                ))),
            }
        });
    if let Err(AdminDenied::Unauthorized(why)) = &verdict {
        access.failed(source);
        tracing::warn!(source = ?source, why, "admin request refused");
    }
    verdict
}

/// The access key in an `Authorization` header value: `Bearer ID:SECRET` or `Basic
/// base64(ID:SECRET)`.
pub(crate) fn presented_key(value: &str) -> Result<AccessKey, AdminDenied> {
    let bad = AdminDenied::Unauthorized("malformed Authorization header");
    let (scheme, rest) = value.trim().split_once(' ').ok_or(bad.clone())?;
    let text = match scheme.to_ascii_lowercase().as_str() {
        "bearer" => rest.trim().to_string(),
        "basic" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .map_err(|_| bad.clone())?;
            String::from_utf8(bytes).map_err(|_| bad.clone())?
        }
        _ => return Err(bad),
    };
    AccessKey::parse(&text).map_err(|_| bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{KeyEntry, KeysFile};

    fn access_with(keys: &[(&AccessKey, Role)]) -> (Access, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut file = KeysFile::default();
        for (key, role) in keys {
            let entry = KeyEntry::new(key, *role, vec!["*".into()]);
            file.add(entry).unwrap_or_else(|e| panic!("{e}"));
        }
        let path = dir.path().join("keys.json");
        std::fs::write(&path, file.to_text()).unwrap_or_else(|e| panic!("{e}"));
        let access = Access::open(Some(path), None).unwrap_or_else(|e| panic!("{e}"));
        (access, dir)
    }

    #[test]
    fn only_an_admin_key_with_its_secret_passes_as_bearer_or_basic() {
        let admin = AccessKey::generate([1; 8], [7; 32]);
        let reader = AccessKey::generate([2; 8], [8; 32]);
        let (access, _dir) = access_with(&[(&admin, Role::Admin), (&reader, Role::Read)]);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let bearer = format!("Bearer {}", admin.to_text());
        assert_eq!(check(&access, Some(&bearer), ip), Ok(()));
        let basic = base64::engine::general_purpose::STANDARD.encode(admin.to_text());
        assert_eq!(check(&access, Some(&format!("Basic {basic}")), ip), Ok(()));

        let as_reader = format!("Bearer {}", reader.to_text());
        assert!(matches!(
            check(&access, Some(&as_reader), ip),
            Err(AdminDenied::Forbidden(_))
        ));
        let mut wrong = admin.clone();
        wrong.secret[0] ^= 1;
        let refused = [
            None,
            Some(format!("Bearer {}", wrong.to_text())),
            Some("Bearer nonsense".to_string()),
            Some("Digest x".to_string()),
        ];
        let other_ip = Some(IpAddr::from([10, 0, 0, 2]));
        for header in &refused {
            let got = check(&access, header.as_deref(), other_ip);
            assert!(
                matches!(got, Err(AdminDenied::Unauthorized(_))),
                "{header:?}"
            );
        }
        // Failures from one address end in a wait, even for the right key; others pass.
        for _ in 0..8 {
            let _ = check(&access, Some("Bearer nonsense"), other_ip);
        }
        assert!(matches!(
            check(&access, Some(&bearer), other_ip),
            Err(AdminDenied::Throttled(_))
        ));
        assert_eq!(check(&access, Some(&bearer), ip), Ok(()));
    }
}
