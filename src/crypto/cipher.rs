//! Keys and the cipher. XChaCha20-Poly1305: authenticated (a changed byte is detected, never
//! decrypted to something else) and with 192-bit nonces, so random nonces never collide in practice.
//!
//! A sealed `personal` value is stored as a small JSON envelope in the same JSONB column:
//! `{"sealed": "xchacha20poly1305", "g": <key generation>, "n": <nonce>, "c": <ciphertext>}` (base64).
//! The associated data binds the ciphertext to its event id, data subject and key generation, so a
//! sealed value copied onto another event or person does not open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Key length of every key here (256 bits).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// The envelope's marker field and its value (the algorithm).
const SEALED: &str = "sealed";
const ALGORITHM: &str = "xchacha20poly1305";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The value is not an envelope, or one whose fields do not decode.
    #[error("the sealed value is malformed")]
    Malformed,
    /// Authentication failed: wrong key, or the stored bytes were changed.
    #[error("the sealed value does not open with this key (wrong key or altered data)")]
    Authentication,
    #[error("a master key must be {KEY_LEN} bytes, base64-encoded; this one is not")]
    BadMasterKey,
}

/// The key that wraps every subject key. Lives outside the database (see `master`).
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

impl MasterKey {
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&key);
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        // A fingerprint, not the key: a one-way hash with a label of its own, shortened. It tells
        // which master key wrapped a subject key, and says nothing about the key itself.
        let digest = Sha256::new()
            .chain_update(b"cim master key id\0")
            .chain_update(bytes.as_slice())
            .finalize();
        let id = format!("mk-{}", hex::encode(&digest[..8]));
        Self { bytes, id }
    }

    /// A key from its base64 text (surrounding white space ignored).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let decoded = Zeroizing::new(
            B64.decode(text.trim())
                .map_err(|_| CryptoError::BadMasterKey)?,
        );
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        if decoded.len() != KEY_LEN {
            return Err(CryptoError::BadMasterKey);
        }
        bytes.copy_from_slice(&decoded);
        Ok(Self::from_bytes(bytes))
    }

    /// The key as base64 text, for writing a key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.bytes.as_slice()))
    }

    /// A secret of its own for `purpose`, derived from this key (HMAC-SHA-256 with the purpose as
    /// the message): the credential issuer's signing key is one (`credential::issuer`), so it is
    /// never stored, and it cannot be turned back into the master key.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; KEY_LEN]> {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.bytes.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(b"cim derived key\0");
        mac.update(purpose.as_bytes());
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// The fingerprint stored beside every key it wraps (`mk-` and 16 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes.as_slice().into())
    }

    /// Wraps a subject key: nonce followed by ciphertext. Bound to the subject, so a wrapped key
    /// moved onto another person's row does not unwrap.
    pub fn wrap(&self, subject: Uuid, key: &DataKey) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = wrap_aad(subject);
        let sealed = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: key.bytes.as_slice(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption of 32 bytes cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn unwrap(&self, subject: Uuid, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        if wrapped.len() <= NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        let aad = wrap_aad(subject);
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| CryptoError::Authentication)?,
        );
        if plain.len() != KEY_LEN {
            return Err(CryptoError::Malformed);
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&plain);
        Ok(DataKey { bytes })
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MasterKey").field(&self.id).finish()
    }
}

fn wrap_aad(subject: Uuid) -> Vec<u8> {
    let mut aad = b"cim subject key v1\0".to_vec();
    aad.extend_from_slice(subject.as_bytes());
    aad
}

/// One data subject's key. Deleting its wrapped form from the database is the erasure.
pub struct DataKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl DataKey {
    /// HMAC-SHA256 of `data` under this key: equal inputs give equal tags (so a table can be
    /// searched by them), and without the key a tag cannot be tested against guessed inputs.
    pub fn keyed_hash(&self, data: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.bytes.as_slice())
            .expect("HMAC accepts keys of any length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// What a sealed value is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext {
    pub event_id: Uuid,
    pub subject: Uuid,
    pub generation: i32,
}

impl SealContext {
    fn aad(&self) -> Vec<u8> {
        let mut aad = b"cim personal v1\0".to_vec();
        aad.extend_from_slice(self.event_id.as_bytes());
        aad.extend_from_slice(self.subject.as_bytes());
        aad.extend_from_slice(&self.generation.to_be_bytes());
        aad
    }
}

impl DataKey {
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&key);
        Self { bytes }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes.as_slice().into())
    }

    /// Seals a JSON value into its envelope.
    pub fn seal(&self, context: SealContext, plain: &Value) -> Value {
        let text =
            Zeroizing::new(serde_json::to_vec(plain).expect("a JSON value always serialises"));
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = context.aad();
        let sealed = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: &text,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for inputs below 256 GiB");
        json!({
            SEALED: ALGORITHM,
            "g": context.generation,
            "n": B64.encode(nonce),
            "c": B64.encode(sealed),
        })
    }

    /// Opens an envelope made by [`seal`](Self::seal) with the same context.
    pub fn open(&self, context: SealContext, envelope: &Value) -> Result<Value, CryptoError> {
        let field = |name: &str| {
            envelope
                .get(name)
                .and_then(Value::as_str)
                .and_then(|s| B64.decode(s).ok())
                .ok_or(CryptoError::Malformed)
        };
        let nonce = field("n")?;
        if nonce.len() != NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let sealed = field("c")?;
        let aad = context.aad();
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| CryptoError::Authentication)?,
        );
        serde_json::from_slice(&plain).map_err(|_| CryptoError::Malformed)
    }
}

/// Whether a stored `personal` value is an envelope (rather than plaintext written before sealing
/// existed).
pub fn is_sealed(value: &Value) -> bool {
    value.get(SEALED).and_then(Value::as_str) == Some(ALGORITHM)
}

/// The key generation an envelope was sealed with.
pub fn envelope_generation(value: &Value) -> Option<i32> {
    value
        .get("g")
        .and_then(Value::as_i64)
        .and_then(|g| i32::try_from(g).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> SealContext {
        SealContext {
            event_id: Uuid::from_u128(1),
            subject: Uuid::from_u128(2),
            generation: 1,
        }
    }

    #[test]
    fn sealed_values_open_with_the_same_key_and_context_only() {
        let key = DataKey::generate();
        let plain = json!({"name": "Ada Lovelace", "identity_number": "191512109876"});
        let sealed = key.seal(context(), &plain);
        assert!(is_sealed(&sealed));
        assert_eq!(envelope_generation(&sealed), Some(1));
        let text = sealed.to_string();
        assert!(!text.contains("Ada") && !text.contains("1915"));
        assert_eq!(key.open(context(), &sealed).unwrap(), plain);

        let other_key = DataKey::generate();
        assert_eq!(
            other_key.open(context(), &sealed),
            Err(CryptoError::Authentication)
        );
        for moved in [
            SealContext {
                event_id: Uuid::from_u128(9),
                ..context()
            },
            SealContext {
                subject: Uuid::from_u128(9),
                ..context()
            },
            SealContext {
                generation: 2,
                ..context()
            },
        ] {
            assert_eq!(key.open(moved, &sealed), Err(CryptoError::Authentication));
        }
        let mut altered = sealed.clone();
        altered["c"] = json!(B64.encode(b"not the ciphertext at all, no....."));
        assert_eq!(
            key.open(context(), &altered),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            key.open(context(), &json!({"sealed": ALGORITHM})),
            Err(CryptoError::Malformed)
        );
        assert!(!is_sealed(&plain));
    }

    #[test]
    fn subject_keys_unwrap_with_their_master_key_and_subject_only() {
        let master = MasterKey::generate();
        let key = DataKey::generate();
        let subject = Uuid::from_u128(5);
        let wrapped = master.wrap(subject, &key);
        let unwrapped = master.unwrap(subject, &wrapped).unwrap();
        let sealed = key.seal(context(), &json!("x"));
        assert_eq!(unwrapped.open(context(), &sealed).unwrap(), json!("x"));
        assert_eq!(
            master.unwrap(Uuid::from_u128(6), &wrapped).err(),
            Some(CryptoError::Authentication)
        );
        assert_eq!(
            MasterKey::generate().unwrap(subject, &wrapped).err(),
            Some(CryptoError::Authentication)
        );
    }

    #[test]
    fn master_keys_round_trip_through_base64_and_never_show_in_debug() {
        let master = MasterKey::generate();
        let text = master.to_base64();
        let again = MasterKey::from_base64(&format!(" {}\n", text.as_str())).unwrap();
        assert_eq!(again.id(), master.id());
        assert!(master.id().starts_with("mk-") && master.id().len() == 19);
        let debug = format!("{master:?} {:?}", DataKey::generate());
        assert!(!debug.contains(text.as_str()), "{debug}");
        assert_eq!(
            MasterKey::from_base64("c2hvcnQ=").err(),
            Some(CryptoError::BadMasterKey)
        );
        assert_eq!(
            MasterKey::from_base64("not base64!").err(),
            Some(CryptoError::BadMasterKey)
        );
    }
}
