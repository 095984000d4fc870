//! Bearer tokens: what a Flight handshake with good Basic credentials answers, and what
//! clients send on every later call. A token is a JWT (HS256) naming the user, signed with
//! the server's key and expiring after `--token-ttl`. The key is random per start unless
//! `--token-secret-file` gives one, which replicas behind one load balancer must share.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The issuer claim of the server's tokens.
const ISSUER: &str = "aws-flightsql";
/// The shortest signing key accepted from a file.
pub const MIN_SECRET_BYTES: usize = 32;

/// Signs and checks bearer tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Tokens").field("ttl", &self.ttl).finish()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    iat: u64,
    exp: u64,
}

/// Why a token was refused (the text goes to the client: it names no secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Past its expiry.
    #[error("the bearer token has expired; authenticate again (Flight handshake)")]
    Expired,
    /// Not signed by this server's key, or not a token at all.
    #[error(
        "the bearer token is not valid for this server; authenticate again (Flight handshake)"
    )]
    Invalid,
}

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Tokens {
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        }
    }

    /// Tokens signed with a random key: they stop working when the server restarts.
    pub fn random(ttl: Duration) -> Tokens {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Tokens::new(&secret, ttl)
    }

    /// Tokens signed with the key in `path` (its bytes, surrounding whitespace trimmed).
    pub fn from_file(path: &Path, ttl: Duration) -> anyhow::Result<Tokens> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the token secret file {}", path.display()))?;
        let secret = bytes.trim_ascii();
        if secret.len() < MIN_SECRET_BYTES {
            bail!(
                "the token secret file {} holds {} bytes; it needs at least {MIN_SECRET_BYTES} \
                 (for example: head -c 48 /dev/urandom | base64 > FILE)",
                path.display(),
                secret.len()
            );
        }
        Ok(Tokens::new(secret, ttl))
    }

    /// A token for `user`, expiring after the TTL.
    pub fn issue(&self, user: &str) -> String {
        let now = now_secs();
        let claims = Claims {
            sub: user.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + self.ttl.as_secs().max(1),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    /// The user a token names, if this server signed it and it has not expired.
    pub fn verify(&self, token: &str) -> Result<String, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => Ok(data.claims.sub),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(TokenError::Expired),
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A token signed with `secret` that expired `ago` (for tests of expiry).
#[doc(hidden)]
pub fn expired_token(secret: &[u8], user: &str, ago: Duration) -> String {
    let exp = now_secs().saturating_sub(ago.as_secs().max(1));
    let claims = Claims {
        sub: user.to_owned(),
        iss: ISSUER.to_owned(),
        iat: exp.saturating_sub(60),
        exp,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing with an in-memory key cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_user_until_they_expire() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let tokens = Tokens::new(secret, Duration::from_secs(60));
        let token = tokens.issue("alice");
        assert_eq!(tokens.verify(&token), Ok("alice".to_owned()));
        let expired = expired_token(secret, "alice", Duration::from_secs(5));
        assert_eq!(tokens.verify(&expired), Err(TokenError::Expired));
        let other = Tokens::random(Duration::from_secs(60));
        assert_eq!(other.verify(&token), Err(TokenError::Invalid));
        assert_eq!(tokens.verify("not a token"), Err(TokenError::Invalid));
        // Tampering with the payload breaks the signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert_eq!(tokens.verify(&parts.join(".")), Err(TokenError::Invalid));
    }

    #[test]
    fn short_secret_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("aws-flightsql-token-{}", std::process::id()));
        std::fs::write(&dir, "short\n").unwrap();
        let err = Tokens::from_file(&dir, Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("at least 32"), "{err}");
        std::fs::write(&dir, format!("{}\n", "k".repeat(40))).unwrap();
        assert!(Tokens::from_file(&dir, Duration::from_secs(1)).is_ok());
        std::fs::remove_file(&dir).unwrap();
    }
}
