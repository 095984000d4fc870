//! Entry points for the fuzz targets (`fuzz/`, `scripts/fuzz.sh`): everything the server
//! decodes from bytes a client controls before any planning, the way the RPCs decode it.
//! Nothing here may panic, whatever the bytes.

use tonic::metadata::{MetadataMap, MetadataValue};

use super::command::{Command, Rpc};
use super::session::{SessionSlot, SESSION_COOKIE};
use super::tickets;

/// Decodes `bytes` as a DoGet ticket (the `Any`, the command, the statement ticket or
/// prepared-statement handle inside, and its parameter batches), as a bare statement ticket
/// and handle, and as the value of the session cookie.
pub fn decode_ticket(bytes: &[u8]) {
    match Command::decode(bytes, Rpc::DoGet) {
        Ok(Command::StatementTicket(ticket)) => {
            let _ = tickets::decode_parameters(&ticket.parameters);
        }
        Ok(Command::PreparedStatement(query)) => prepared(&query.prepared_statement_handle),
        _ => {}
    }
    statement(bytes);
    prepared(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(value) = MetadataValue::try_from(format!("{SESSION_COOKIE}={text}")) {
            let mut metadata = MetadataMap::new();
            metadata.insert("cookie", value);
            let _ = SessionSlot::from_metadata(&metadata);
        }
    }
}

fn statement(bytes: &[u8]) {
    if let Ok(statement) = tickets::decode_statement(bytes) {
        let _ = tickets::decode_parameters(&statement.parameters);
    }
}

fn prepared(bytes: &[u8]) {
    if let Ok(handle) = tickets::decode_prepared(bytes) {
        let _ = tickets::decode_parameters(&handle.parameters);
    }
}

/// Measures the shape of `sql` (the check made before parsing).
pub fn expression_depth(sql: &str) {
    let _ = crate::sql_limits::SqlShape::measure(
        sql,
        &datafusion::sql::sqlparser::dialect::GenericDialect {},
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_decodes_to_nothing_without_panicking() {
        for bytes in [
            &b""[..],
            b"\xff\xff\xff",
            b"\x0a\x05abc",
            b"zz",
            b"\x12\x02\xff\xff",
        ] {
            decode_ticket(bytes);
        }
        expression_depth("SELECT ((((");
    }
}
