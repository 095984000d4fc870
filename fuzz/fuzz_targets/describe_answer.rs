//! DescribeStoreImageTasks answers from arbitrary bytes: the server's one-pass decoder never
//! panics, and whatever it accepts it reads exactly as aws-sdk-ec2's own decoder does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    aws_flightsql::ec2::fuzzing::describe_answer(data);
});
