//! Log output without AWS access key ids. The SDK logs its configuration, endpoint
//! parameters, resolved identity and requests to sign at debug and trace level, several of
//! which print the access key id; filtering each of those lines by target would miss the
//! next one a new SDK version adds. Instead every log line passes through [`Redacting`],
//! which masks anything shaped like an access key id (`AKIA`/`ASIA`... and 16 more
//! characters) before it is written. Secret keys, session tokens and passwords never reach
//! a log line in the first place (the SDK redacts them; the server never logs them).

use std::io::Write;
use std::sync::LazyLock;

use regex::bytes::Regex;
use tracing_subscriber::fmt::MakeWriter;

/// The prefixes AWS gives key ids: AKIA (long-term), ASIA (temporary), and the other
/// unique-id prefixes that name a principal.
static KEY_ID: LazyLock<Regex> = LazyLock::new(|| {
    // Not after a letter or digit (but after `%3D`, `=`, quotes, ...): a key id starts there.
    Regex::new(r"(^|[^A-Za-z0-9])(AKIA|ASIA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA|ABIA|ACCA)[A-Z0-9]{16}")
        .expect("a valid pattern")
});

/// Masks access key ids in `line`, keeping the prefix (which tells the kind of key).
pub fn redact(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    KEY_ID.replace_all(line, &b"${1}${2}****************"[..])
}

/// A `MakeWriter` for tracing's fmt layer: writes to stderr with access key ids masked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Redacting;

/// The writer of one log event.
#[derive(Debug)]
pub struct RedactingWriter(std::io::Stderr);

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> RedactingWriter {
        RedactingWriter(std::io::stderr())
    }
}

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // tracing's fmt layer formats a whole event, then writes it in one call, so a key
        // id is never split between two writes.
        self.0.write_all(&redact(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_masked_and_other_text_kept() {
        let line = b"identity=Credentials { access_key_id: \"AKIASECRETSTEST00001\", ASIAABCDEFGHIJKLMNOP }";
        let out = redact(line);
        let out = String::from_utf8_lossy(&out);
        assert!(!out.contains("SECRETSTEST"), "{out}");
        assert!(!out.contains("ABCDEFGHIJKLMNOP"), "{out}");
        assert!(out.contains("AKIA****************"), "{out}");
        assert_eq!(
            &*redact(b"ami-0123456789abcdef0 AKIA short"),
            b"ami-0123456789abcdef0 AKIA short"
        );
    }
}
