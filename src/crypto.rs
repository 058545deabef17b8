//! Secrets at rest and client-key hashing.
//!
//! Upstream secrets use envelope encryption: a random data key (DEK) encrypts every secret with
//! AES-256-GCM; the DEK is stored wrapped by a key-encryption key (KEK) derived from the master
//! secret (`RELAYBOX_ENCRYPTION_KEY` or `data/secret.key`). A key check (HMAC of the KEK) lets
//! start-up refuse a wrong master secret instead of failing later at decrypt time.
//!
//! Client keys are 256-bit random secrets, so one SHA-256 is enough; comparisons are constant time.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const SEALED_PREFIX: &str = "enc:v1:";
const KEK_INFO: &[u8] = b"relaybox/v1/kek";
const KEYCHECK_LABEL: &[u8] = b"relaybox-keycheck";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the encryption key does not match this data dir (its key check differs)")]
    WrongKey,
    #[error("a secret could not be decrypted: {0}")]
    Decrypt(&'static str),
    #[error("the system random generator failed: {0}")]
    Random(String),
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// A secret as stored: `enc:v1:<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(String);

impl SealedSecret {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A placeholder shown instead of a sealed value that must never leave the server.
    #[must_use]
    pub fn redacted() -> Self {
        Self("(redacted)".to_string())
    }

    /// Whether the text has the sealed form (used to tell sealed from plaintext input).
    #[must_use]
    pub fn looks_sealed(text: &str) -> bool {
        text.starts_with(SEALED_PREFIX)
    }
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSecret(…)")
    }
}

/// How the KEK is derived from the master secret; stored in the keyring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kdf {
    /// The master secret is 32 random bytes: HKDF-SHA256.
    Hkdf,
    /// The master secret is a passphrase: Argon2id (64 MiB, t=3, p=1).
    Argon2id,
}

/// The keyring record kept in the config store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyringRecord {
    pub kid: String,
    pub kdf: Kdf,
    /// base64 of the 32-byte install salt.
    pub salt: String,
    /// base64url of nonce ‖ wrapped DEK ‖ tag.
    pub wrapped_dek: String,
    /// hex HMAC-SHA256(KEK, "relaybox-keycheck").
    pub keycheck: String,
    pub created_at: String,
}

/// The master secret as given by the operator. Never printed.
pub struct MasterSecret(Zeroizing<Vec<u8>>);

impl MasterSecret {
    #[must_use]
    pub fn from_text(text: &str) -> Self {
        Self(Zeroizing::new(text.trim().as_bytes().to_vec()))
    }

    /// 32 random bytes, base64 — the content of a generated `secret.key`.
    pub fn generate_text() -> Result<Zeroizing<String>, CryptoError> {
        let bytes = random_array::<32>()?;
        Ok(Zeroizing::new(STANDARD.encode(bytes)))
    }

    /// The 32 raw bytes when the secret is base64 or hex of exactly 32 bytes.
    fn as_random_bytes(&self) -> Option<Zeroizing<Vec<u8>>> {
        let text = std::str::from_utf8(&self.0).ok()?;
        let decoded = STANDARD
            .decode(text)
            .ok()
            .or_else(|| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok())
            .or_else(|| hex::decode(text).ok())?;
        (decoded.len() == 32).then(|| Zeroizing::new(decoded))
    }

    #[must_use]
    pub fn is_passphrase(&self) -> bool {
        self.as_random_bytes().is_none()
    }

    fn derive_kek(&self, kdf: &Kdf, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let mut kek = Zeroizing::new([0u8; 32]);
        match kdf {
            Kdf::Hkdf => {
                let ikm = self.as_random_bytes().ok_or(CryptoError::WrongKey)?;
                hkdf::Hkdf::<Sha256>::new(Some(salt), &ikm)
                    .expand(KEK_INFO, kek.as_mut())
                    .map_err(|e| CryptoError::Kdf(e.to_string()))?;
            }
            Kdf::Argon2id => {
                let params = argon2::Params::new(64 * 1024, 3, 1, Some(32))
                    .map_err(|e| CryptoError::Kdf(e.to_string()))?;
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                    .hash_password_into(&self.0, salt, kek.as_mut())
                    .map_err(|e| CryptoError::Kdf(e.to_string()))?;
            }
        }
        Ok(kek)
    }
}

/// Opens and seals upstream secrets with the unwrapped data key.
pub struct Cipher {
    kid: String,
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Cipher {
    /// A new keyring for an empty data dir: random DEK, wrapped under the KEK.
    pub fn create(master: &MasterSecret) -> Result<(Cipher, KeyringRecord), CryptoError> {
        let kdf = if master.is_passphrase() {
            Kdf::Argon2id
        } else {
            Kdf::Hkdf
        };
        let salt = random_array::<32>()?;
        let kek = master.derive_kek(&kdf, &salt)?;
        let dek = Zeroizing::new(random_array::<32>()?);
        let kid = hex::encode(random_array::<4>()?);
        let wrapped = seal_raw(&aead_for(&kek[..])?, wrap_aad(&kid).as_bytes(), &dek[..])?;
        let record = KeyringRecord {
            keycheck: keycheck(&kek),
            kid: kid.clone(),
            kdf,
            salt: STANDARD.encode(salt),
            wrapped_dek: wrapped,
            created_at: time::OffsetDateTime::now_utc().to_string(),
        };
        Ok((
            Cipher {
                kid,
                aead: aead_for(&dek[..])?,
            },
            record,
        ))
    }

    /// Unwrap the DEK of an existing keyring; a wrong master secret is refused by the key check.
    pub fn open_keyring(
        master: &MasterSecret,
        record: &KeyringRecord,
    ) -> Result<Cipher, CryptoError> {
        let salt = STANDARD
            .decode(&record.salt)
            .map_err(|_| CryptoError::Decrypt("keyring salt"))?;
        let kek = match master.derive_kek(&record.kdf, &salt) {
            Ok(kek) => kek,
            Err(CryptoError::WrongKey) => return Err(CryptoError::WrongKey),
            Err(other) => return Err(other),
        };
        let expected = keycheck(&kek);
        if !bool::from(expected.as_bytes().ct_eq(record.keycheck.as_bytes())) {
            return Err(CryptoError::WrongKey);
        }
        let dek = Zeroizing::new(open_raw(
            &aead_for(&kek[..])?,
            wrap_aad(&record.kid).as_bytes(),
            &record.wrapped_dek,
        )?);
        Ok(Cipher {
            kid: record.kid.clone(),
            aead: aead_for(&dek)?,
        })
    }

    /// Seal `plaintext`, bound to `aad` (e.g. `channel/<id>/apiKey`): a ciphertext copied to
    /// another record does not open.
    pub fn seal(&self, aad: &str, plaintext: &str) -> Result<SealedSecret, CryptoError> {
        let body = seal_raw(&self.aead, aad.as_bytes(), plaintext.as_bytes())?;
        Ok(SealedSecret(format!("{SEALED_PREFIX}{}:{body}", self.kid)))
    }

    pub fn open(&self, aad: &str, sealed: &SealedSecret) -> Result<Zeroizing<String>, CryptoError> {
        let rest = sealed
            .0
            .strip_prefix(SEALED_PREFIX)
            .ok_or(CryptoError::Decrypt("not sealed"))?;
        let (kid, body) = rest
            .split_once(':')
            .ok_or(CryptoError::Decrypt("malformed"))?;
        if kid != self.kid {
            return Err(CryptoError::Decrypt("sealed under an unknown key id"));
        }
        let bytes = Zeroizing::new(open_raw(&self.aead, aad.as_bytes(), body)?);
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt("not UTF-8"))
    }
}

fn wrap_aad(kid: &str) -> String {
    format!("keyring/{kid}/dek")
}

fn keycheck(kek: &[u8; 32]) -> String {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(kek).expect_hmac();
    mac.update(KEYCHECK_LABEL);
    hex::encode(mac.finalize().into_bytes())
}

/// HMAC accepts keys of any length, so construction cannot fail.
trait ExpectHmac<T> {
    fn expect_hmac(self) -> T;
}
impl<T, E> ExpectHmac<T> for Result<T, E> {
    fn expect_hmac(self) -> T {
        match self {
            Ok(v) => v,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        }
    }
}

fn aead_for(key: &[u8]) -> Result<Aes256Gcm, CryptoError> {
    Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::Kdf("bad key length".into()))
}

fn seal_raw(aead: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Result<String, CryptoError> {
    let nonce_bytes = random_array::<12>()?;
    let nonce = Nonce::from(nonce_bytes);
    let ciphertext = aead
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Decrypt("encryption failed"))?;
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&ciphertext);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

fn open_raw(aead: &Aes256Gcm, aad: &[u8], body: &str) -> Result<Vec<u8>, CryptoError> {
    let raw = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CryptoError::Decrypt("not base64"))?;
    if raw.len() < 12 + 16 {
        return Err(CryptoError::Decrypt("too short"));
    }
    let (nonce, ciphertext) = raw.split_at(12);
    let nonce: [u8; 12] = nonce
        .try_into()
        .map_err(|_| CryptoError::Decrypt("nonce"))?;
    aead.decrypt(
        &Nonce::from(nonce),
        Payload {
            msg: ciphertext,
            aad,
        },
    )
    .map_err(|_| CryptoError::Decrypt("authentication failed (wrong key or moved ciphertext)"))
}

fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(out)
}

// ---- client keys ----------------------------------------------------------------------------

/// A new client key: `prefix` + 32 random bytes as 64 hex characters.
pub fn generate_client_key(prefix: &str) -> Result<Zeroizing<String>, CryptoError> {
    let bytes = Zeroizing::new(random_array::<32>()?);
    Ok(Zeroizing::new(format!(
        "{prefix}{}",
        hex::encode(&bytes[..])
    )))
}

/// SHA-256 of the whole key, lowercase hex (the same as cc-bridge's `key_hash`).
#[must_use]
pub fn hash_client_key(key: &str) -> String {
    let mut hex = [0u8; 64];
    client_key_hash_hex(key, &mut hex).to_string()
}

/// [`hash_client_key`] written into `out`, for lookups that need no owned string.
pub fn client_key_hash_hex<'a>(key: &str, out: &'a mut [u8; 64]) -> &'a str {
    // 32 digest bytes always fit 64 hex digits, and hex digits are ASCII.
    let _ = hex::encode_to_slice(Sha256::digest(key.as_bytes()), out);
    std::str::from_utf8(out).unwrap_or_default()
}

/// claude-relay-service's hash: `sha256(key + salt)`, lowercase hex.
#[must_use]
pub fn legacy_hash(key: &str, salt: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(key.as_bytes());
    hasher.update(salt.as_bytes());
    hex::encode(hasher.finalize())
}

/// Constant-time equality of two hex digests.
#[must_use]
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The part of a key shown in lists: its prefix and a few characters, never enough to use it.
#[must_use]
pub fn display_prefix(key: &str) -> String {
    let shown: String = key.chars().take(10).collect();
    format!("{shown}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_aad_binding() {
        let master = MasterSecret::from_text(&MasterSecret::generate_text().unwrap());
        let (cipher, record) = Cipher::create(&master).unwrap();
        assert_eq!(record.kdf, Kdf::Hkdf);
        let sealed = cipher.seal("channel/a/apiKey", "sk-ant-secret").unwrap();
        assert!(!sealed.as_str().contains("sk-ant-secret"));
        assert_eq!(
            cipher.open("channel/a/apiKey", &sealed).unwrap().as_str(),
            "sk-ant-secret"
        );
        assert!(
            cipher.open("channel/b/apiKey", &sealed).is_err(),
            "moved ciphertext must not open"
        );

        let reopened = Cipher::open_keyring(&master, &record).unwrap();
        assert_eq!(
            reopened.open("channel/a/apiKey", &sealed).unwrap().as_str(),
            "sk-ant-secret"
        );
    }

    #[test]
    fn wrong_master_secret_is_refused_by_keycheck() {
        let master = MasterSecret::from_text(&MasterSecret::generate_text().unwrap());
        let (_, record) = Cipher::create(&master).unwrap();
        let other = MasterSecret::from_text(&MasterSecret::generate_text().unwrap());
        assert!(matches!(
            Cipher::open_keyring(&other, &record),
            Err(CryptoError::WrongKey)
        ));
        let passphrase = MasterSecret::from_text("correct horse battery staple");
        assert!(matches!(
            Cipher::open_keyring(&passphrase, &record),
            Err(CryptoError::WrongKey)
        ));
    }

    #[test]
    fn client_key_format_and_hashes() {
        let key = generate_client_key("cr_").unwrap();
        assert_eq!(key.len(), 3 + 64);
        assert!(key.starts_with("cr_") && key[3..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            hash_client_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(legacy_hash("ab", "c"), hash_client_key("abc"));
        assert!(digests_equal(&hash_client_key("x"), &hash_client_key("x")));
        assert!(!digests_equal(&hash_client_key("x"), &hash_client_key("y")));
    }
}
