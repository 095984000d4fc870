//! Self-contained tickets and prepared-statement handles (`proto/aws_flightsql.proto`): the
//! statement and its settings travel inside, so any replica can serve any ticket, the same
//! ticket can be fetched twice, and closing a prepared statement frees nothing.

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use prost::Message;

use crate::error::Error;

#[allow(missing_docs)]
mod proto {
    include!(concat!(env!("OUT_DIR"), "/aws_flightsql.v1.rs"));
}

pub use proto::{PreparedStatementHandle, Settings, StatementTicket};

/// Decodes a statement ticket.
pub fn decode_statement(bytes: &[u8]) -> Result<StatementTicket, Error> {
    StatementTicket::decode(bytes)
        .map_err(|e| Error::bad_request(format!("invalid statement ticket: {e}")))
}

/// Decodes a prepared-statement handle.
pub fn decode_prepared(bytes: &[u8]) -> Result<PreparedStatementHandle, Error> {
    PreparedStatementHandle::decode(bytes).map_err(|e| {
        Error::bad_request(format!(
            "invalid prepared statement handle: {e}; prepare the statement again"
        ))
    })
}

/// Encodes parameter batches as an Arrow IPC stream for a handle.
pub fn encode_parameters(batches: &[RecordBatch]) -> Result<Vec<u8>, Error> {
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
pub fn decode_parameters(bytes: &[u8]) -> Result<Vec<RecordBatch>, Error> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    check_ipc_framing(bytes).map_err(|e| {
        Error::bad_request(format!(
            "invalid parameters in prepared statement handle: {e}"
        ))
    })?;
    let reader = StreamReader::try_new(bytes, None).map_err(|e| {
        Error::bad_request(format!(
            "invalid parameters in prepared statement handle: {e}"
        ))
    })?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// Checks that every message of an Arrow IPC stream fits in `bytes` before the stream
/// reader sees it: the reader allocates what a message's header declares (up to 2 GiB of
/// metadata, any body length) before it finds the input shorter, so a forged handle of a
/// hundred bytes could make the server allocate gigabytes, or abort it.
fn check_ipc_framing(bytes: &[u8]) -> Result<(), String> {
    const CONTINUATION: [u8; 4] = [0xff; 4];
    let mut rest = bytes;
    let word = |rest: &mut &[u8]| -> Option<[u8; 4]> {
        let (head, tail) = rest.split_first_chunk::<4>()?;
        *rest = tail;
        Some(*head)
    };
    loop {
        let Some(mut length) = word(&mut rest) else {
            return Ok(()); // the end of the stream without an end marker
        };
        if length == CONTINUATION {
            length = word(&mut rest).ok_or("truncated message length")?;
        }
        let length = i32::from_le_bytes(length);
        if length == 0 {
            return Ok(()); // the end-of-stream marker
        }
        let length = usize::try_from(length).map_err(|_| "negative message length")?;
        if length > rest.len() {
            return Err(format!(
                "a message declares {length} bytes of metadata, {} remain",
                rest.len()
            ));
        }
        let (metadata, tail) = rest.split_at(length);
        let message = arrow::ipc::root_as_message(metadata)
            .map_err(|e| format!("invalid message metadata: {e}"))?;
        let body = usize::try_from(message.bodyLength()).map_err(|_| "negative body length")?;
        if body > tail.len() {
            return Err(format!(
                "a message declares a body of {body} bytes, {} remain",
                tail.len()
            ));
        }
        rest = &tail[body..];
    }
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
    fn parameters_declaring_more_than_they_hold_are_refused_before_any_allocation() {
        let batch =
            RecordBatch::try_from_iter([("$1", Arc::new(Int64Array::from(vec![1, 2])) as _)])
                .unwrap();
        let good = encode_parameters(std::slice::from_ref(&batch)).unwrap();
        assert!(check_ipc_framing(&good).is_ok());
        // A metadata length of 2 GiB - 1.
        let mut huge = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        huge.extend_from_slice(&[0; 16]);
        let err = decode_parameters(&huge).unwrap_err().to_string();
        assert!(err.contains("2147483647 bytes of metadata"), "{err}");
        // The fuzzer's find: a handle whose parameters are a few bytes of SQL.
        assert!(decode_parameters(b"\x1a\x13\x0a\x0baws.dr_yurn\x12\x04true").is_err());
        // Every truncation of a good stream is refused or read, never over-allocated.
        for cut in 0..good.len() {
            let _ = decode_parameters(&good[..cut]);
        }
    }

    #[test]
    fn garbage_is_a_bad_request() {
        let err = decode_statement(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)));
    }
}
