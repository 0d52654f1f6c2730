//! Identifiers and secrets: upload ids, site tokens and their hashes.

use crate::StoreError;
use sha2::{Digest, Sha256};

/// The id of an upload: a ULID (48-bit milliseconds since the Unix epoch,
/// then 80 random bits, in Crockford base32), so ids sort by time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl UploadId {
    /// A new id for an upload received now.
    pub fn generate() -> Result<UploadId, StoreError> {
        let millis = chrono::Utc::now().timestamp_millis().max(0) as u128;
        let mut random = [0u8; 10];
        getrandom::fill(&mut random).map_err(|e| StoreError::Random(e.to_string()))?;
        let mut value = millis << 80;
        for (i, b) in random.iter().enumerate() {
            value |= u128::from(*b) << (8 * (9 - i));
        }
        let mut text = String::with_capacity(26);
        for i in (0..26).rev() {
            text.push(CROCKFORD[((value >> (5 * i)) & 31) as usize] as char);
        }
        Ok(UploadId(text))
    }

    /// Reads an id given back by a client: 26 Crockford base32 characters
    /// (upper case, as issued).
    pub fn parse(text: &str) -> Option<UploadId> {
        (text.len() == 26 && text.bytes().all(|b| CROCKFORD.contains(&b)))
            .then(|| UploadId(text.to_owned()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// A new site token: 32 bytes from the operating system's CSPRNG, as 64 hex
/// digits.
pub(crate) fn new_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(hex(&bytes))
}

/// The stored form of a token. A token has 256 random bits, so a plain
/// SHA-256 (no salt, no slow hash) is enough: there is nothing to guess.
pub(crate) fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_are_26_crockford_characters_and_distinct() {
        let a = UploadId::generate().unwrap();
        let b = UploadId::generate().unwrap();
        assert_eq!(a.as_str().len(), 26);
        assert_ne!(a, b);
        assert_eq!(UploadId::parse(a.as_str()), Some(a));
        assert_eq!(UploadId::parse("not-an-id"), None);
    }

    #[test]
    fn tokens_are_random_hex_and_hash_to_sha256() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(t, new_token().unwrap());
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
