//! HS256 JSON Web Tokens, signed and verified with the project's secret.
//!
//! Written by hand (HMAC-SHA256 over `header.payload`) so that every refusal is explicit and
//! carries the text Supabase's services use: a token whose header names any algorithm other
//! than `HS256` (`none` included) is refused before its signature is looked at, and the
//! signature is compared in constant time. Callers (GoTrue, PostgREST, Realtime) map
//! [`JwtError`] to their own wire errors.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, or a part is not JSON.
    #[error("The token provided is not a valid JWT")]
    Malformed,
    /// The header names an algorithm other than HS256 (including `none`).
    #[error("unsupported JWT algorithm {0:?}")]
    Algorithm(String),
    /// The signature does not match the project's secret.
    #[error("Failed to validate JWT signature")]
    Signature,
    /// `exp` is in the past; carries how many seconds ago.
    #[error("Token has expired {0} seconds ago")]
    Expired(i64),
    /// `role` or `exp` is missing or of the wrong type.
    #[error("Fields `role` and `exp` are required in JWT")]
    MissingClaims,
}

/// The claims this backend reads; all others are kept in `extra` so a token round-trips.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub role: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Signs `claims` with HS256.
pub fn sign(claims: &Claims, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    // Serialising a struct of strings, numbers and JSON values cannot fail.
    let body = serde_json::to_vec(claims).expect("claims serialise to JSON");
    let payload = URL_SAFE_NO_PAD.encode(body);
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, signing_input.as_bytes()).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Verifies signature, algorithm and expiry (`now` in Unix seconds) and returns the claims.
pub fn verify(token: &str, secret: &[u8], now: i64) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Value = decode_json(h)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "HS256" {
        return Err(JwtError::Algorithm(alg.to_string()));
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let m = mac(secret, format!("{h}.{p}").as_bytes());
    m.verify_slice(&signature).map_err(|_| JwtError::Signature)?;
    let payload: Value = decode_json(p)?;
    let role_ok = payload.get("role").is_some_and(Value::is_string);
    let exp = payload.get("exp").and_then(Value::as_i64);
    let (true, Some(exp)) = (role_ok, exp) else {
        return Err(JwtError::MissingClaims);
    };
    if exp <= now {
        return Err(JwtError::Expired(now - exp));
    }
    serde_json::from_value(payload).map_err(|_| JwtError::MissingClaims)
}

fn mac(secret: &[u8], input: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(input);
    m
}

fn decode_json(part: &str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| JwtError::Malformed)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(JwtError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Some("u".into()),
            role: "authenticated".into(),
            exp,
            iat: Some(0),
            session_id: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn signed_token_verifies_and_round_trips() {
        let t = sign(&claims(100), b"secret");
        assert_eq!(verify(&t, b"secret", 50).expect("valid token"), claims(100));
    }

    #[test]
    fn wrong_secret_is_a_signature_error() {
        let t = sign(&claims(100), b"secret");
        assert_eq!(verify(&t, b"other", 50), Err(JwtError::Signature));
    }

    #[test]
    fn expired_token_reports_seconds_ago() {
        let t = sign(&claims(100), b"secret");
        assert_eq!(verify(&t, b"secret", 112), Err(JwtError::Expired(12)));
    }

    #[test]
    fn alg_none_is_refused_even_without_signature() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(br#"{"role":"service_role","exp":9999999999}"#);
        assert_eq!(verify(&format!("{h}.{p}."), b"secret", 0), Err(JwtError::Algorithm("none".into())));
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(verify("abc", b"s", 0), Err(JwtError::Malformed));
        assert_eq!(verify("a.b.c", b"s", 0), Err(JwtError::Malformed));
    }

    #[test]
    fn missing_role_is_refused() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(br#"{"exp":9999999999}"#);
        let input = format!("{h}.{p}");
        let s = URL_SAFE_NO_PAD.encode(mac(b"s", input.as_bytes()).finalize().into_bytes());
        assert_eq!(verify(&format!("{input}.{s}"), b"s", 0), Err(JwtError::MissingClaims));
    }
}
