//! The expression-depth measure the server applies to SQL before parsing it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        aws_flightsql::flight::fuzzing::expression_depth(sql);
    }
});
