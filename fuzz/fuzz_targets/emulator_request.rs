//! The EC2 emulator's request pipeline (form parsing, credential scope, parameters,
//! pagination tokens, the store, XML answers) on arbitrary requests. The input is split into
//! the Authorization header, the query string and the form body at the first two 0xff bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let authorization = parts.next().and_then(|a| std::str::from_utf8(a).ok());
    let query = parts.next().and_then(|q| std::str::from_utf8(q).ok());
    let body = parts.next().unwrap_or_default();
    ec2_emulator::fuzzing::handle_request(query, body, authorization);
});
