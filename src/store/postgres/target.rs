//! `--postgres-url`: where the cluster's PostgreSQL is and how to talk to it.
//!
//! The URL is libpq's (`postgres://user:password@host:port/db?sslmode=…`, or the `key=value`
//! form). `sslmode` follows libpq: `require` encrypts without checking the certificate,
//! `verify-ca` and `verify-full` check it against the web PKI roots, or the CA file named by
//! `sslrootcert` (both check the host name too: rustls has no chain-only mode). Anything else
//! (`disable`, `allow`, `prefer`, or none) connects in plain text — fine on loopback or a
//! private network, not across the internet.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::store::StoreError;

/// A `--postgres-url` that cannot be used; says what is wrong, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--postgres-url: {0}")]
pub struct InvalidUrl(String);

/// How the connection is secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Plain TCP (or a Unix socket).
    Off,
    /// Encrypted; the certificate is not checked (libpq `require`).
    Encrypted,
    /// Encrypted and verified: the web PKI roots, or the CA certificates in this PEM file.
    Verified { root_cert: Option<String> },
}

/// A parsed `--postgres-url`.
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: Tls,
}

impl std::fmt::Debug for Target {
    // Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("user", &self.config.get_user())
            .field("tls", &self.tls)
            .finish()
    }
}

/// `host:port/dbname` (never the user's password), for messages.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use tokio_postgres::config::Host;
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(name)) => name.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self.config.get_dbname().unwrap_or("");
        write!(f, "{host}:{port}/{db}")
    }
}

impl Target {
    /// Parse a libpq URL; the error names what is wrong (never the password).
    pub fn parse(url: &str) -> Result<Self, InvalidUrl> {
        let invalid = InvalidUrl;
        let (rest, params) = split_params(url.trim());
        let mut tls = Tls::Off;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for (key, value) in params {
            match key.as_str() {
                "sslmode" => {
                    tls = match value.as_str() {
                        "disable" | "allow" | "prefer" => Tls::Off,
                        "require" => Tls::Encrypted,
                        "verify-ca" | "verify-full" => Tls::Verified { root_cert: None },
                        other => {
                            return Err(invalid(format!(
                                "sslmode '{other}' is not one of disable, allow, prefer, require, verify-ca, verify-full"
                            )));
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(value),
                _ => kept.push((key, value)),
            }
        }
        if let Tls::Verified { root_cert: slot } = &mut tls {
            *slot = root_cert;
        }
        let text = join_params(&rest, &kept);
        let mut config: tokio_postgres::Config = text
            .parse()
            .map_err(|e| invalid(format!("not a PostgreSQL URL ({e})")))?;
        if config.get_hosts().is_empty() {
            return Err(invalid("no host".into()));
        }
        // TLS is decided here, not by tokio-postgres's default (`prefer`).
        config.ssl_mode(if tls == Tls::Off {
            tokio_postgres::config::SslMode::Disable
        } else {
            tokio_postgres::config::SslMode::Require
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("relaybox");
        }
        Ok(Self { config, tls })
    }

    /// The same server, another database (tests; creating a database).
    #[must_use]
    pub fn with_dbname(&self, dbname: &str) -> Self {
        let mut next = self.clone();
        next.config.dbname(dbname);
        next
    }

    /// The rustls configuration for [`Tls::Encrypted`] and [`Tls::Verified`].
    pub(crate) fn rustls_config(&self) -> Result<Option<rustls::ClientConfig>, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Backend(format!("TLS setup: {e}")))?;
        let config = match &self.tls {
            Tls::Off => return Ok(None),
            Tls::Encrypted => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(crate::tls::AnyCertificate(provider)))
                .with_no_client_auth(),
            Tls::Verified { root_cert } => {
                let mut roots = rustls::RootCertStore::empty();
                match root_cert {
                    None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                    Some(path) => {
                        let certs = CertificateDer::pem_file_iter(path)
                            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                            .map_err(|e| {
                                StoreError::Backend(format!(
                                    "--postgres-url: sslrootcert {path} cannot be read: {e}"
                                ))
                            })?;
                        let (added, _) = roots.add_parsable_certificates(certs);
                        if added == 0 {
                            return Err(StoreError::Backend(format!(
                                "--postgres-url: sslrootcert {path} holds no usable certificate"
                            )));
                        }
                    }
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        Ok(Some(config))
    }
}

/// `postgres://…?a=1&b=2` → (`postgres://…`, [(a, 1), (b, 2)]); `host=h sslmode=x` → (`host=h`,
/// [(sslmode, x)]) for the keys this module handles.
fn split_params(url: &str) -> (String, Vec<(String, String)>) {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_string(), Vec::new());
        };
        let params = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (pair.to_string(), String::new()),
            })
            .collect();
        (base.to_string(), params)
    } else {
        // key=value form: take out ours, leave the rest to tokio-postgres (quoted values with
        // spaces are not split here; sslmode and sslrootcert values never need them).
        let mut rest = Vec::new();
        let mut params = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some((k @ ("sslmode" | "sslrootcert"), v)) => {
                    params.push((k.to_string(), v.to_string()));
                }
                _ => rest.push(word),
            }
        }
        (rest.join(" "), params)
    }
}

fn join_params(base: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return base.to_string();
    }
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if base.contains("://") {
        format!("{base}?{}", query.join("&"))
    } else {
        format!("{base} {}", query.join(" "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use tokio_postgres::config::{Host, SslMode};

    #[test]
    fn sslmode_decides_tls() {
        let cases = [
            ("postgres://u@db.example:5432/relay", Tls::Off),
            ("postgres://u@db.example/relay?sslmode=disable", Tls::Off),
            ("postgres://u@db.example/relay?sslmode=prefer", Tls::Off),
            (
                "postgres://u@db.example/relay?sslmode=require",
                Tls::Encrypted,
            ),
            (
                "postgresql://u:p@db.example/relay?application_name=x&sslmode=verify-full",
                Tls::Verified { root_cert: None },
            ),
            (
                "postgres://u@db.example/relay?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
                Tls::Verified {
                    root_cert: Some("/etc/ca.pem".into()),
                },
            ),
            ("host=db.example user=u sslmode=require", Tls::Encrypted),
        ];
        for (url, want) in cases {
            let target = Target::parse(url).unwrap();
            assert_eq!(target.tls, want, "{url}");
            let mode = if want == Tls::Off {
                SslMode::Disable
            } else {
                SslMode::Require
            };
            assert_eq!(target.config.get_ssl_mode(), mode, "{url}");
            assert_eq!(
                target.config.get_hosts(),
                &[Host::Tcp("db.example".into())],
                "{url}"
            );
        }
        // Other parameters survive the sslmode handling.
        let target = Target::parse(
            "postgresql://u:p@db.example/relay?application_name=x&sslmode=verify-full",
        )
        .unwrap();
        assert_eq!(target.config.get_application_name(), Some("x"));
        assert_eq!(target.config.get_dbname(), Some("relay"));
        assert_eq!(target.config.get_password(), Some(&b"p"[..]));
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        let err = Target::parse("postgres://u:s3cret@db.example/relay?sslmode=always")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslmode 'always'"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = Target::parse("postgres://u:s3cret@db.example:notaport/relay")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a PostgreSQL URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let debug = format!(
            "{:?}",
            Target::parse("postgres://u:s3cret@db.example/relay").unwrap()
        );
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn tls_configs_build() {
        for url in [
            "postgres://u@db.example/relay?sslmode=require",
            "postgres://u@db.example/relay?sslmode=verify-full",
        ] {
            assert!(
                Target::parse(url)
                    .unwrap()
                    .rustls_config()
                    .unwrap()
                    .is_some()
            );
        }
        assert!(
            Target::parse("postgres://u@db.example/relay")
                .unwrap()
                .rustls_config()
                .unwrap()
                .is_none()
        );
        let err = Target::parse(
            "postgres://u@db.example/r?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap()
        .rustls_config()
        .unwrap_err()
        .to_string();
        assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
    }
}
