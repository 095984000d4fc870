//! Entry point for the `describe_answer` fuzz target (`fuzz/`, `scripts/fuzz.sh`): the
//! server's decoder of `DescribeStoreImageTasks` answers, held to the SDK's own. It may
//! decline any bytes, but never panic, and what it accepts it must read as the SDK does.

/// Decodes `body` as a successful `DescribeStoreImageTasks` answer with the server's decoder
/// and, when that accepts it, with the SDK's; panics if the two differ.
pub fn describe_answer(body: &[u8]) {
    super::decode::check_against_sdk(body);
}
