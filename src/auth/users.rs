//! The users file (`--users-file`): who may connect, with which password, and whether they
//! may write. Passwords are stored as argon2 PHC strings (`aws-flightsql hash-password`
//! makes one); the file never holds a password.
//!
//! ```toml
//! [[users]]
//! name = "analyst"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."
//! role = "read"
//! ```

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::Deserialize;

use super::Role;

/// The shortest password `hash-password` accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The users the server knows, by name.
#[derive(Clone)]
pub struct Users {
    by_name: HashMap<String, User>,
    /// A hash checked when the name is unknown, so that a wrong name takes as long to refuse
    /// as a wrong password and names cannot be probed by timing.
    decoy: String,
}

#[derive(Clone)]
struct User {
    password_hash: String,
    role: Role,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names and roles only: never the hashes.
        let mut names: Vec<_> = self
            .by_name
            .iter()
            .map(|(name, u)| format!("{name}:{:?}", u.role))
            .collect();
        names.sort();
        f.debug_struct("Users").field("users", &names).finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    users: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    password_hash: String,
    role: Role,
}

impl Users {
    /// Reads and checks a users file: every entry has a name, an argon2 hash and a role,
    /// no name twice, at least one user.
    pub fn load(path: &Path) -> anyhow::Result<Users> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the users file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid users file {}", path.display()))
    }

    /// Parses the text of a users file.
    pub fn parse(text: &str) -> anyhow::Result<Users> {
        let file: File = toml::from_str(text)?;
        if file.users.is_empty() {
            bail!("it names no user: add [[users]] entries with name, password_hash and role");
        }
        let mut by_name = HashMap::new();
        for (i, entry) in file.users.into_iter().enumerate() {
            let which = format!("user {} (`{}`)", i + 1, entry.name);
            if entry.name.is_empty() || entry.name.contains(':') {
                bail!("{which}: a name must be non-empty and must not contain `:`");
            }
            let parsed = PasswordHash::new(&entry.password_hash).map_err(|e| {
                anyhow::anyhow!(
                    "{which}: password_hash is not a PHC hash string ({e}); make one with \
                     `aws-flightsql hash-password`"
                )
            })?;
            if !parsed.algorithm.as_str().starts_with("argon2") {
                bail!(
                    "{which}: password_hash uses {}, expected argon2 (`aws-flightsql \
                     hash-password`)",
                    parsed.algorithm
                );
            }
            let user = User {
                password_hash: entry.password_hash,
                role: entry.role,
            };
            if by_name.insert(entry.name.clone(), user).is_some() {
                bail!("{which}: the name appears twice");
            }
        }
        Ok(Users {
            by_name,
            decoy: hash_password("decoy password, never matched")?,
        })
    }

    /// The role of `name` if `password` is theirs. Slow on purpose (argon2): call it off the
    /// async threads.
    pub fn verify(&self, name: &str, password: &str) -> Option<Role> {
        let (hash, role) = match self.by_name.get(name) {
            Some(user) => (user.password_hash.as_str(), Some(user.role)),
            None => (self.decoy.as_str(), None),
        };
        let matches = PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        if matches {
            role
        } else {
            None
        }
    }

    /// The role of a known user (for bearer tokens, which prove the name).
    pub fn role(&self, name: &str) -> Option<Role> {
        self.by_name.get(name).map(|u| u.role)
    }
}

/// An argon2id hash of `password` (PHC string, random salt, the crate's default cost).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes)
        .map_err(|e| anyhow::anyhow!("cannot make a password salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[(&str, &str, &str)]) -> String {
        entries
            .iter()
            .map(|(name, hash, role)| {
                format!(
                    "[[users]]\nname = \"{name}\"\npassword_hash = '{hash}'\nrole = \"{role}\"\n"
                )
            })
            .collect()
    }

    #[test]
    fn passwords_verify_against_their_hash_and_roles_come_back() {
        let alice = hash_password("alice-password").unwrap();
        let bob = hash_password("bob-password").unwrap();
        assert!(alice.starts_with("$argon2id$"), "{alice}");
        let users =
            Users::parse(&file(&[("alice", &alice, "write"), ("bob", &bob, "read")])).unwrap();
        assert_eq!(users.verify("alice", "alice-password"), Some(Role::Write));
        assert_eq!(users.verify("bob", "bob-password"), Some(Role::Read));
        assert_eq!(users.verify("bob", "alice-password"), None);
        assert_eq!(users.verify("carol", "alice-password"), None);
        assert_eq!(users.role("bob"), Some(Role::Read));
        let debug = format!("{users:?}");
        assert!(!debug.contains("argon2"), "{debug}");
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let hash = hash_password("password1").unwrap();
        let err = |text: &str| format!("{:#}", Users::parse(text).unwrap_err());
        assert!(err("").contains("no user"));
        assert!(err(&file(&[("a", "plain", "read")])).contains("PHC"));
        assert!(err(&file(&[("a", &hash, "admin")])).contains("admin"));
        assert!(err(&file(&[("a", &hash, "read"), ("a", &hash, "write")])).contains("twice"));
        assert!(err(&file(&[("a:b", &hash, "read")])).contains("`:`"));
        assert!(
            err("[[users]]\nname = \"a\"\npassword = \"x\"\nrole = \"read\"\n")
                .contains("password")
        );
    }
}
