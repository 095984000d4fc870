//! Self-contained tickets and prepared-statement handles (`proto/aws_flightsql.proto`): the
//! statement and its settings travel inside, so any replica can serve any ticket, the same
//! ticket can be fetched twice, and closing a prepared statement frees nothing.

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use prost::Message;

use super::status::ServiceError;

#[allow(missing_docs)]
mod proto {
    include!(concat!(env!("OUT_DIR"), "/aws_flightsql.v1.rs"));
}

pub use proto::{PreparedStatementHandle, Settings, StatementTicket};

/// Decodes a statement ticket.
pub fn decode_statement(bytes: &[u8]) -> Result<StatementTicket, ServiceError> {
    StatementTicket::decode(bytes)
        .map_err(|e| ServiceError::bad_request(format!("invalid statement ticket: {e}")))
}

/// Decodes a prepared-statement handle.
pub fn decode_prepared(bytes: &[u8]) -> Result<PreparedStatementHandle, ServiceError> {
    PreparedStatementHandle::decode(bytes).map_err(|e| {
        ServiceError::bad_request(format!(
            "invalid prepared statement handle: {e}; prepare the statement again"
        ))
    })
}

/// Encodes parameter batches as an Arrow IPC stream for a handle.
pub fn encode_parameters(batches: &[RecordBatch]) -> Result<Vec<u8>, ServiceError> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let mut writer = StreamWriter::try_new(Vec::new(), &first.schema())?;
    for batch in batches {
        writer.write(batch)?;
    }
    Ok(writer.into_inner()?)
}

/// Decodes the parameter batches of a handle (none when unbound).
pub fn decode_parameters(bytes: &[u8]) -> Result<Vec<RecordBatch>, ServiceError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let reader = StreamReader::try_new(bytes, None).map_err(|e| {
        ServiceError::bad_request(format!(
            "invalid parameters in prepared statement handle: {e}"
        ))
    })?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use std::sync::Arc;

    #[test]
    fn handle_round_trips_with_parameters() {
        let batch =
            RecordBatch::try_from_iter([("$1", Arc::new(Int64Array::from(vec![1, 2])) as _)])
                .unwrap();
        let handle = PreparedStatementHandle {
            sql: "SELECT $1".into(),
            settings: Some(Settings::default()),
            parameters: encode_parameters(std::slice::from_ref(&batch)).unwrap(),
        };
        let decoded = decode_prepared(&handle.encode_to_vec()).unwrap();
        assert_eq!(decoded.sql, "SELECT $1");
        assert_eq!(decode_parameters(&decoded.parameters).unwrap(), vec![batch]);
    }

    #[test]
    fn garbage_is_a_bad_request() {
        let err = decode_statement(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(matches!(err, ServiceError::BadRequest(_)));
    }
}
