//! Security, one module per concern: who may connect and who may write ([`auth`]: the
//! users file, the handshake and its bearer tokens, Basic credentials, roles, the login
//! throttle, the unauthenticated-exposure refusal), TLS and mutual TLS ([`tls`]), and the
//! limits that keep one client from taking the server ([`limits`]: concurrent queries,
//! query timeout, stalled clients, SQL, message and header sizes). The users and helpers
//! they share are here.

mod auth;
mod limits;
mod tls;

use arrow::array::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use ec2_emulator::EmulatorOptions;
use tonic::transport::Channel;

use crate::common::{self, to_status};

/// Alice writes.
const ALICE: (&str, &str) = ("alice", "alice-password-1");
/// Bob reads.
const BOB: (&str, &str) = ("bob", "bob-password-1");

/// Three frozen regions of 5 tasks each.
fn small() -> EmulatorOptions {
    EmulatorOptions {
        regions: common::REGIONS.iter().map(|r| r.to_string()).collect(),
        tasks_per_region: 5,
        freeze_time: true,
        ..EmulatorOptions::default()
    }
}

/// The rows `sql` returns to `client`.
async fn count_rows(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> usize {
    let (_, batches) = aws_flightsql::client::query(client, sql)
        .await
        .map_err(to_status)
        .unwrap();
    batches.iter().map(RecordBatch::num_rows).sum()
}
