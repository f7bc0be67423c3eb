//! Identifiers of the bind protocol, defined once: [`base62`] (export source-spec hashes, the
//! backend's identity hashes) and [`cluster_id`] (the consumer cluster's id in `kubectl bind`).

use sha2::{Digest, Sha224};

const BASE62: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Writes a big-endian unsigned integer in base 62 (digits `0-9`, `a-z`, `A-Z`, no padding).
pub fn base62(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut digits = Vec::new();
    while !number.is_empty() {
        let mut remainder: u32 = 0;
        let mut quotient = Vec::with_capacity(number.len());
        for byte in &number {
            let acc = (remainder << 8) | u32::from(*byte);
            let q = acc / 62;
            remainder = acc % 62;
            if !(quotient.is_empty() && q == 0) {
                quotient.push(u8::try_from(q).expect("a quotient digit fits a byte"));
            }
        }
        digits.push(BASE62[remainder as usize]);
        number = quotient;
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("base-62 digits are ASCII")
}

/// The cluster id `cid`: SHA-224 of the UID of the consumer's `klutch-bind` namespace, read as a
/// big-endian integer, in base 62, first 6 characters. Part of the identity `<sub>#<cid>` that
/// finds an existing binding space again, so it must match Klutch exactly.
///
/// ```
/// let cid = klutch_sdk::api::ids::cluster_id("0a1b2c3d-0000-4000-8000-000000000000");
/// assert_eq!(cid.len(), 6);
/// ```
pub fn cluster_id(namespace_uid: &str) -> String {
    let digest = Sha224::digest(namespace_uid.as_bytes());
    base62(&digest).chars().take(6).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_matches_arbitrary_precision_arithmetic() {
        assert_eq!(base62(&[]), "0");
        assert_eq!(base62(&[0, 0]), "0");
        assert_eq!(base62(&[61]), "Z");
        assert_eq!(base62(&[62]), "10");
        assert_eq!(base62(&[0x01, 0x00]), "48"); // 256 = 4*62 + 8
        // u128 check across many values against a straightforward conversion.
        for n in [1u128, 61, 62, 3843, 3844, 1 << 64, u128::MAX / 7, u128::MAX] {
            let mut expected = Vec::new();
            let mut m = n;
            while m > 0 {
                expected.push(BASE62[(m % 62) as usize]);
                m /= 62;
            }
            expected.reverse();
            assert_eq!(
                base62(&n.to_be_bytes()),
                String::from_utf8(expected).unwrap(),
                "{n}"
            );
        }
    }

    #[test]
    fn cluster_id_is_the_base62_sha224_prefix() {
        let uid = "5f0c1e55-8f8e-4a8e-9a53-3e5b2f6f7c10";
        let digest = Sha224::digest(uid.as_bytes());
        let full = base62(&digest);
        assert_eq!(cluster_id(uid), full[..6]);
        assert_ne!(cluster_id(uid), cluster_id("another-uid"));
        assert!(cluster_id(uid).chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
