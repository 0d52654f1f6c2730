//! Content hashes: how a re-sent row is told from a changed one.
//!
//! A record's content hash is HMAC-SHA256 under the deployment's secret
//! [`ContentKey`] of its validated fields, each part's UTF-8 bytes followed
//! by a 0xFF byte (which never occurs in UTF-8, so `["ab", "c"]` and
//! `["a", "bc"]` differ), truncated to its first 8 bytes read big-endian
//! (the stored width). Without the key, nobody holding the database can test
//! guesses of the fields that were discarded (coordinates, postcode,
//! description), and no uploader can make a changed row collide with the
//! stored one so that its correction counts as a duplicate.
//!
//! Records stored before keyed hashes carry the legacy hash: unkeyed
//! FNV-1a 64 over the same bytes ([`legacy_content_hash`]). A
//! [`ContentHasher`] computes both in one pass, so that a re-send of such a
//! record is compared under the scheme it was stored with.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The deployment's secret key of content hashes (32 bytes).
#[derive(Clone)]
pub struct ContentKey {
    /// The MAC keyed once, cloned per record.
    mac: Hmac<Sha256>,
}

/// A key that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentKeyError {
    /// Not 64 hexadecimal digits.
    #[error("a content key is 64 hexadecimal digits (32 bytes); this one is not")]
    Malformed,
}

impl ContentKey {
    /// The key's length in bytes.
    pub const LEN: usize = 32;

    /// The key of these bytes.
    pub fn new(bytes: [u8; ContentKey::LEN]) -> ContentKey {
        ContentKey {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&bytes)
                .expect("HMAC takes a key of any length"),
        }
    }

    /// Reads a key written as 64 hexadecimal digits (surrounding
    /// whitespace ignored), as [`ContentKey::hex`] writes it.
    pub fn from_hex(text: &str) -> Result<ContentKey, ContentKeyError> {
        let text = text.trim().as_bytes();
        if text.len() != 2 * ContentKey::LEN {
            return Err(ContentKeyError::Malformed);
        }
        let digit = |b: u8| (b as char).to_digit(16).ok_or(ContentKeyError::Malformed);
        let mut bytes = [0u8; ContentKey::LEN];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            bytes[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Ok(ContentKey::new(bytes))
    }

    /// The bytes as 64 lowercase hexadecimal digits.
    pub fn hex(bytes: &[u8; ContentKey::LEN]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret.
        f.write_str("ContentKey(..)")
    }
}

/// A record's content hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHashes {
    /// HMAC-SHA256 under the deployment's key, truncated: what is stored.
    pub keyed: u64,
    /// The legacy unkeyed FNV-1a: compared with records stored before
    /// keyed hashes only.
    pub legacy: u64,
}

/// The keyed content hash of a record given as its fields in a fixed order.
pub fn content_hash(key: &ContentKey, parts: &[&str]) -> u64 {
    let mut h = ContentHasher::new(key);
    for part in parts {
        h.part(part);
    }
    h.finish().keyed
}

/// The legacy content hash: FNV-1a 64 of the same bytes as
/// [`content_hash`], unkeyed. Fixed forever: records stored before keyed
/// hashes carry it. Not a secret, so fit only to tell a re-send of such a
/// record from a change and for values that need no secrecy.
pub fn legacy_content_hash(parts: &[&str]) -> u64 {
    let mut fnv = FNV_OFFSET;
    for part in parts {
        for &b in part.as_bytes().iter().chain(&[0xFF]) {
            fnv = fnv_step(fnv, b);
        }
    }
    fnv
}

fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
}

/// Both content hashes, a part at a time: a part may be written in pieces
/// with `write!`, so nothing needs to be formatted into a string first.
#[derive(Clone)]
pub struct ContentHasher {
    mac: Hmac<Sha256>,
    fnv: u64,
}

impl ContentHasher {
    /// Hashes of no parts yet, under `key`.
    pub fn new(key: &ContentKey) -> Self {
        ContentHasher {
            mac: key.mac.clone(),
            fnv: FNV_OFFSET,
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.mac.update(bytes);
        for &b in bytes {
            self.fnv = fnv_step(self.fnv, b);
        }
    }

    /// Ends the part written so far (with `write!`, or nothing: an empty
    /// part).
    pub fn end_part(&mut self) {
        self.bytes(&[0xFF]);
    }

    /// Adds a whole part.
    pub fn part(&mut self, part: &str) {
        self.bytes(part.as_bytes());
        self.end_part();
    }

    /// The hashes of the bytes added.
    pub fn finish(self) -> ContentHashes {
        let tag = self.mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag[..8]);
        ContentHashes {
            keyed: u64::from_be_bytes(first),
            legacy: self.fnv,
        }
    }
}

impl std::fmt::Debug for ContentHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentHasher(..)")
    }
}

impl std::fmt::Write for ContentHasher {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    /// A key of fewer than 32 bytes, zero-padded: HMAC pads every key
    /// shorter than SHA-256's 64-byte block with zeros (RFC 2104), so this
    /// is the same MAC as the short key itself.
    fn padded(short: &[u8]) -> ContentKey {
        let mut bytes = [0u8; ContentKey::LEN];
        bytes[..short.len()].copy_from_slice(short);
        ContentKey::new(bytes)
    }

    /// The hashes of exactly `bytes` (no part separator).
    fn raw(key: &ContentKey, text: &str) -> ContentHashes {
        let mut h = ContentHasher::new(key);
        h.write_str(text).unwrap();
        h.finish()
    }

    #[test]
    fn keyed_hashes_are_rfc_4231_hmac_sha256_truncated() {
        // RFC 4231 test case 1: key 0x0b x 20, "Hi There", HMAC-SHA-256 =
        // b0344c61d8db3853 5ca8afceaf0bf12b 881dc200c9833da7 26e9376c2e32cff7.
        let key = padded(&[0x0b; 20]);
        assert_eq!(raw(&key, "Hi There").keyed, 0xb034_4c61_d8db_3853);
        // Test case 2: key "Jefe", "what do ya want for nothing?" =
        // 5bdcc146bf60754e 6a042426089575c7 5a003f089d273983 9dec58b964ec3843.
        let jefe = padded(b"Jefe");
        assert_eq!(
            raw(&jefe, "what do ya want for nothing?").keyed,
            0x5bdc_c146_bf60_754e
        );
        // Written in pieces, the same.
        let mut h = ContentHasher::new(&jefe);
        let verb = "want";
        write!(h, "what do ya {verb} for ").unwrap();
        h.write_str("nothing?").unwrap();
        assert_eq!(h.finish().keyed, 0x5bdc_c146_bf60_754e);
    }

    #[test]
    fn parts_are_separated_and_keys_differ() {
        let a = ContentKey::new([1; 32]);
        let b = ContentKey::new([2; 32]);
        let fields = ["RJ1", "A-1", "1717198200000", "t"];
        assert_ne!(content_hash(&a, &fields), content_hash(&b, &fields));
        assert_eq!(content_hash(&a, &fields), content_hash(&a, &fields));
        assert_ne!(
            content_hash(&a, &["ab", "c"]),
            content_hash(&a, &["a", "bc"])
        );
        assert_ne!(content_hash(&a, &["", "x"]), content_hash(&a, &["x", ""]));
        // A part is its bytes then 0xFF: "ab" then "c" is the raw bytes
        // "ab\u{ff}c\u{ff}" (0xFF written as the byte, not as UTF-8).
        let mut h = ContentHasher::new(&a);
        h.part("ab");
        h.part("c");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[1; 32]).unwrap();
        mac.update(b"ab\xffc\xff");
        let tag = mac.finalize().into_bytes();
        let want = u64::from_be_bytes(tag[..8].try_into().unwrap());
        assert_eq!(h.finish().keyed, want);
        // 100 random-looking keys: 100 different hashes of one record.
        let hashes: std::collections::HashSet<u64> = (0..100u8)
            .map(|i| content_hash(&ContentKey::new([i; 32]), &fields))
            .collect();
        assert_eq!(hashes.len(), 100);
    }

    #[test]
    fn the_legacy_hash_is_the_stored_fnv_1a() {
        // Fixed values: stored records carry them.
        assert_eq!(legacy_content_hash(&[]), FNV_OFFSET);
        assert_eq!(legacy_content_hash(&["a"]), 0x089b_c907_b544_c769);
        assert_eq!(legacy_content_hash(&["RJ1", "A-1"]), 0x80a2_385f_e226_8f47);
        // The hasher computes it beside the keyed hash, whatever the key.
        for key in [ContentKey::new([0; 32]), ContentKey::new([9; 32])] {
            let mut h = ContentHasher::new(&key);
            let letter = 'J';
            write!(h, "R{letter}1").unwrap();
            h.end_part();
            h.part("A-1");
            assert_eq!(h.finish().legacy, 0x80a2_385f_e226_8f47);
        }
    }

    #[test]
    fn keys_read_from_hex() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let text = ContentKey::hex(&bytes);
        assert_eq!(&text[..8], "00070e15");
        let fields = ["x"];
        let read = ContentKey::from_hex(&format!("  {text}\n")).unwrap();
        assert_eq!(
            content_hash(&read, &fields),
            content_hash(&ContentKey::new(bytes), &fields)
        );
        for bad in ["", "00", &text[1..], &format!("{}g", &text[1..])] {
            assert_eq!(
                ContentKey::from_hex(bad).unwrap_err(),
                ContentKeyError::Malformed
            );
        }
        assert_eq!(format!("{read:?}"), "ContentKey(..)");
    }
}
