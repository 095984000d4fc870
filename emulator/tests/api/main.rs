//! Integration tests: a real emulator on 127.0.0.1:0, spoken to over HTTP like an SDK would.

mod client;
mod create;
mod describe;
mod faults;
mod hooks;
mod org;
