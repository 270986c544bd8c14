//! API key and session tokens.
//!
//! A key is `sb_<id>_<secret>`: `id` is 12 hex digits, public (listed, logged, audited), and
//! `secret` 64 hex digits of the OS's CSPRNG (256 bits). Only the SHA-256 of the whole token
//! is stored: with that much entropy a slow password hash would add nothing but latency to
//! every request. A presented token is found by its id and compared by hash in constant time,
//! so neither the lookup nor the comparison tells an attacker how close a guess was.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every API key starts with, so a leaked one is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "sb_";
/// What every session cookie value starts with.
pub const SESSION_PREFIX: &str = "sbs_";
/// The id under which `SWITCHBOARD_ADMIN_KEY` authenticates (it is never stored).
pub const ADMIN_KEY_ID: &str = "env-admin";

const ID_HEX: usize = 12;
const SECRET_HEX: usize = 64;

/// The OS could not give us random bytes.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct KeyError(String);

/// A key just made: the token is shown once and never again.
#[derive(Clone)]
pub struct IssuedKey {
    pub id: String,
    /// The whole key, `sb_<id>_<secret>`.
    pub token: String,
    /// Hex SHA-256 of `token`: what is stored.
    pub hash: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A new API key.
///
/// # Errors
/// The OS's random number generator failed.
pub fn issue_key() -> Result<IssuedKey, KeyError> {
    let id = random_hex(ID_HEX / 2)?;
    let secret = random_hex(SECRET_HEX / 2)?;
    let token = format!("{KEY_PREFIX}{id}_{secret}");
    let hash = hash_token(&token);
    Ok(IssuedKey { id, token, hash })
}

/// A new session token (the cookie value) and its hash (what is stored).
///
/// # Errors
/// The OS's random number generator failed.
pub fn issue_session() -> Result<(String, String), KeyError> {
    let token = format!("{SESSION_PREFIX}{}", random_hex(SECRET_HEX / 2)?);
    let hash = hash_token(&token);
    Ok((token, hash))
}

/// The public id of a token shaped like one of our keys, else `None` (no lookup is made for a
/// token that cannot be a key).
pub fn key_id_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, ID_HEX) && hex(secret, SECRET_HEX)).then_some(id)
}

/// Hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `token` hashes to `stored` (hex), compared in constant time.
pub fn token_matches(stored: &str, token: &str) -> bool {
    let presented = hash_token(token);
    presented.as_bytes().ct_eq(stored.as_bytes()).into()
}

fn random_hex(bytes: usize) -> Result<String, KeyError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|err| KeyError(err.to_string()))?;
    Ok(hex(&buffer))
}

/// SHA-256 of `bytes` in lower-case hex: what binds an approval to the exact arguments it was
/// given for, as well as what a key's secret is kept as.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_recognisable_unique_and_checked_by_hash() {
        let key = issue_key().unwrap();
        assert!(key.token.starts_with("sb_"));
        assert_eq!(key.token.len(), 3 + 12 + 1 + 64);
        assert_eq!(key_id_of(&key.token), Some(key.id.as_str()));
        assert!(token_matches(&key.hash, &key.token));
        // One character changed (to one it is not: the last one is random and may be `0`).
        let (head, last) = key.token.split_at(key.token.len() - 1);
        let other = if last == "0" { "1" } else { "0" };
        assert!(!token_matches(&key.hash, &format!("{head}{other}")));
        assert_ne!(issue_key().unwrap().token, key.token);
        assert!(
            !format!("{key:?}").contains(&key.token[16..]),
            "Debug hides the secret"
        );
    }

    #[test]
    fn malformed_tokens_have_no_id() {
        let key = issue_key().unwrap();
        for bad in [
            "",
            "sb_",
            "sk-openai",
            &key.token[..key.token.len() - 1],
            &format!("{}a", key.token),
            &key.token.replace("sb_", "sx_"),
            &format!("sb_{}_{}", "g".repeat(12), "0".repeat(64)),
        ] {
            assert_eq!(key_id_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn sessions_are_distinct_from_keys() {
        let (token, hash) = issue_session().unwrap();
        assert!(token.starts_with(SESSION_PREFIX));
        assert_eq!(key_id_of(&token), None);
        assert!(token_matches(&hash, &token));
    }
}
