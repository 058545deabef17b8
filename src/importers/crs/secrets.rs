//! claude-relay-service's secret encryption (format notes §4).
//!
//! Every platform but Bedrock: AES-256-CBC with PKCS#7 padding, key =
//! `scrypt(ENCRYPTION_KEY, <platform salt>, N=16384, r=8, p=1, 32 bytes)`, stored as
//! `hex(iv) ":" hex(ciphertext)`. Bedrock: key = `SHA-256(ENCRYPTION_KEY)`, stored as
//! `{"encrypted": hex, "iv": hex}`.
//!
//! A wrong `ENCRYPTION_KEY` shows as a padding error (or, rarely, bytes that are not UTF-8); the
//! importer counts successes and failures to tell a wrong key from one damaged value.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Per-platform scrypt salts (format notes §3).
pub mod salt {
    pub const CLAUDE_OAUTH: &str = "salt";
    pub const CLAUDE_CONSOLE: &str = "claude-console-salt";
    pub const CCR: &str = "ccr-account-salt";
    pub const GEMINI_OAUTH: &str = "gemini-account-salt";
    pub const GEMINI_API: &str = "gemini-api-salt";
    pub const OPENAI_OAUTH: &str = "openai-account-salt";
    pub const OPENAI_RESPONSES: &str = "openai-responses-salt";
    pub const AZURE_OPENAI: &str = "azure-openai-account-default-salt";
    pub const DROID: &str = "droid-account-salt";
}

/// Why one value did not decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("not in claude-relay-service's encrypted form ({0})")]
    Format(&'static str),
    #[error("bad padding after decryption (the ENCRYPTION_KEY does not fit this value)")]
    Padding,
    #[error("decrypts to bytes that are not UTF-8 text (the ENCRYPTION_KEY does not fit)")]
    NotUtf8,
    #[error("decrypts to text that is not the expected JSON")]
    NotJson,
}

/// Decrypts with one `ENCRYPTION_KEY`; derives each salt's key once.
pub struct Decryptor {
    password: Zeroizing<String>,
    keys: RefCell<HashMap<&'static str, Zeroizing<[u8; 32]>>>,
    ok: Cell<u64>,
    failed: Cell<u64>,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("ok", &self.ok.get())
            .field("failed", &self.failed.get())
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    #[must_use]
    pub fn new(encryption_key: &str) -> Self {
        Self {
            password: Zeroizing::new(encryption_key.to_string()),
            keys: RefCell::new(HashMap::new()),
            ok: Cell::new(0),
            failed: Cell::new(0),
        }
    }

    /// The `ENCRYPTION_KEY` (also the salt of the API-key hashes).
    #[must_use]
    pub fn encryption_key(&self) -> &str {
        &self.password
    }

    /// Values that decrypted / did not.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        (self.ok.get(), self.failed.get())
    }

    fn key_for(&self, salt: &'static str) -> Zeroizing<[u8; 32]> {
        if let Some(key) = self.keys.borrow().get(salt) {
            return key.clone();
        }
        let mut key = Zeroizing::new([0u8; 32]);
        // N = 2^14, r = 8, p = 1: Node's `crypto.scryptSync` defaults. Both calls only fail
        // for parameters or lengths that are fixed here and valid.
        if let Ok(params) = scrypt::Params::new(14, 8, 1) {
            let _ = scrypt::scrypt(
                self.password.as_bytes(),
                salt.as_bytes(),
                &params,
                &mut *key,
            );
        }
        self.keys.borrow_mut().insert(salt, key.clone());
        key
    }

    fn count<T>(&self, result: Result<T, DecryptError>) -> Result<T, DecryptError> {
        match &result {
            Ok(_) => self.ok.set(self.ok.get() + 1),
            Err(_) => self.failed.set(self.failed.get() + 1),
        }
        result
    }

    /// Decrypt `hex(iv):hex(ciphertext)` with the key of `salt`.
    pub fn decrypt(
        &self,
        salt: &'static str,
        stored: &str,
    ) -> Result<Zeroizing<String>, DecryptError> {
        let result = (|| {
            let (iv, ciphertext) = stored
                .split_once(':')
                .ok_or(DecryptError::Format("no ':' between IV and ciphertext"))?;
            let key = self.key_for(salt);
            cbc_decrypt(&key, iv, ciphertext)
        })();
        self.count(result)
    }

    /// Decrypt and parse a JSON object (OAuth token blocks).
    pub fn decrypt_json(
        &self,
        salt: &'static str,
        stored: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, DecryptError> {
        let text = self.decrypt(salt, stored)?;
        let parsed = parse_object(&text);
        if parsed.is_err() {
            // It decrypted, but not to what this field holds.
            self.ok.set(self.ok.get().saturating_sub(1));
            self.failed.set(self.failed.get() + 1);
        }
        parsed
    }

    /// Bedrock: `{encrypted, iv}` with key `SHA-256(ENCRYPTION_KEY)`, holding a JSON object.
    pub fn decrypt_bedrock(
        &self,
        encrypted: &str,
        iv: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, DecryptError> {
        let result = (|| {
            let mut key = Zeroizing::new([0u8; 32]);
            key.copy_from_slice(&Sha256::digest(self.password.as_bytes()));
            let text = cbc_decrypt(&key, iv, encrypted)?;
            parse_object(&text)
        })();
        self.count(result)
    }
}

fn parse_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, DecryptError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(DecryptError::NotJson),
    }
}

fn cbc_decrypt(
    key: &[u8; 32],
    iv_hex: &str,
    ciphertext_hex: &str,
) -> Result<Zeroizing<String>, DecryptError> {
    let iv = hex::decode(iv_hex.trim()).map_err(|_| DecryptError::Format("IV is not hex"))?;
    if iv.len() != 16 {
        return Err(DecryptError::Format("IV is not 16 bytes"));
    }
    let mut buffer = Zeroizing::new(
        hex::decode(ciphertext_hex.trim())
            .map_err(|_| DecryptError::Format("ciphertext is not hex"))?,
    );
    if buffer.is_empty() || buffer.len() % 16 != 0 {
        return Err(DecryptError::Format(
            "ciphertext is not a whole number of blocks",
        ));
    }
    let decryptor = Aes256CbcDec::new_from_slices(key, &iv)
        .map_err(|_| DecryptError::Format("key or IV length"))?;
    let plaintext = decryptor
        .decrypt_padded::<Pkcs7>(&mut buffer)
        .map_err(|_| DecryptError::Padding)?;
    let text = std::str::from_utf8(plaintext).map_err(|_| DecryptError::NotUtf8)?;
    Ok(Zeroizing::new(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "CRS-fixture-encryption-key-32chr";
    const IV: &str = "000102030405060708090a0b0c0d0e0f";
    const PLAIN: &str = "sk-ant-oat01-EXAMPLE-access-token";

    /// The worked examples of the format notes §4.
    #[test]
    fn decrypts_the_documented_examples() {
        let d = Decryptor::new(KEY);
        for (salt, ct) in [
            (
                salt::CLAUDE_OAUTH,
                "d3acd9b145b5054807799e598f5adff9911dac0e609543dd3ad988b8117da6488d03529ab82b899b18c353fa131e53d2",
            ),
            (
                salt::CLAUDE_CONSOLE,
                "2312acb3d944f68248a2b3d0cd29fb0c6dea1741bc4c0518c5f201c835a6186159378a6217f1d6b225494de701944330",
            ),
            (
                salt::DROID,
                "60a8fb49b4ce69d3007020c89694804cf6d7ddc86f859975238020b3b38eb395b7cce9ecbe199e4b70d62c95d8cb7316",
            ),
        ] {
            let plain = d.decrypt(salt, &format!("{IV}:{ct}")).unwrap();
            assert_eq!(plain.as_str(), PLAIN, "salt {salt}");
        }
        let bedrock = d
            .decrypt_bedrock(
                "59b5bab845d1d3fa64f261541c739231d99cdcfc0f7bd42a0e620ef55726920f37f57993f8fb919af01d154edcb86f783b994fad9367238e494842c8428f8fd4",
                IV,
            )
            .unwrap();
        assert_eq!(bedrock["accessKeyId"], "AKIAEXAMPLE");
        assert_eq!(d.counts(), (4, 0));
    }

    #[test]
    fn a_wrong_key_fails_and_is_counted() {
        let d = Decryptor::new("not-the-key");
        let stored = format!(
            "{IV}:d3acd9b145b5054807799e598f5adff9911dac0e609543dd3ad988b8117da6488d03529ab82b899b18c353fa131e53d2"
        );
        assert!(d.decrypt(salt::CLAUDE_OAUTH, &stored).is_err());
        assert!(matches!(
            d.decrypt(salt::CLAUDE_OAUTH, "plaintext"),
            Err(DecryptError::Format(_))
        ));
        assert_eq!(d.counts(), (0, 2));
    }
}
