//! Pagination tokens: an opaque base64 of the cursor (the last listed task's start time and id)
//! and a hash of what the listing was for (region and filters). A cursor rather than an offset
//! keeps later pages stable while tasks are created; the hash makes a token useless for any
//! other listing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::sample::fnv1a;
use crate::store::Cursor;

const VERSION: &str = "v1";

/// The token continuing a listing of `region` with these filters after `cursor`.
pub fn encode(cursor: Cursor, region: &str, filters_fingerprint: &str) -> String {
    let plain = format!(
        "{VERSION}:{}:{}:{:016x}",
        cursor.start_ms,
        cursor.id,
        scope_hash(region, filters_fingerprint)
    );
    URL_SAFE_NO_PAD.encode(plain)
}

/// The cursor of a token, if it is one this emulator made for the same region and filters.
pub fn decode(token: &str, region: &str, filters_fingerprint: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    let plain = String::from_utf8(bytes).ok()?;
    let mut parts = plain.split(':');
    let (Some(VERSION), Some(start), Some(id), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let start_ms = start.parse().ok()?;
    let id = id.parse().ok()?;
    let hash = u64::from_str_radix(hash, 16).ok()?;
    (hash == scope_hash(region, filters_fingerprint)).then_some(Cursor { start_ms, id })
}

fn scope_hash(region: &str, filters_fingerprint: &str) -> u64 {
    fnv1a(format!("{region}\u{0}{filters_fingerprint}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let cursor = Cursor {
            start_ms: 1_800_000_000_123,
            id: 42,
        };
        let token = encode(cursor, "us-east-1", "bucket=b");
        assert_eq!(decode(&token, "us-east-1", "bucket=b"), Some(cursor));
        assert_eq!(decode(&token, "us-west-2", "bucket=b"), None);
        assert_eq!(decode(&token, "us-east-1", ""), None);
        assert_eq!(decode("garbage!", "us-east-1", "bucket=b"), None);
        assert_eq!(decode("", "us-east-1", "bucket=b"), None);
        let forged = URL_SAFE_NO_PAD.encode("v1:1:2:zz");
        assert_eq!(decode(&forged, "us-east-1", "bucket=b"), None);
    }
}
