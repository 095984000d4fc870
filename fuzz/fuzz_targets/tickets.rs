//! Tickets, prepared-statement handles, their parameter batches and the session cookie,
//! decoded from arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aws_flightsql::flight::fuzzing::decode_ticket(data);
});
