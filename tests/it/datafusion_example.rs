//! The DataFusion embedding example (`examples/datafusion_embedded.rs`) run as a user runs
//! it, against the test emulator: its join and its totals must match the emulator's tasks.

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use common::{Fixture, REGIONS};

/// `target/debug/examples/datafusion_embedded`, which `cargo test` builds with the tests.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug");
    let path = debug.join("examples").join("datafusion_embedded");
    assert!(
        path.exists(),
        "{} is missing: cargo test builds examples (cargo build --examples)",
        path.display()
    );
    path
}

#[tokio::test]
async fn the_embedding_example_joins_the_table_with_a_local_one() {
    let fx = Fixture::start(230).await;
    let mut command = Command::new(example_binary());
    command
        .args([
            "--endpoint-url",
            &fx.emulator.endpoint_url(),
            "--regions",
            &REGIONS.join(","),
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example-secret");
    // The emulator serves from this runtime: wait for the example off its thread.
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let total: usize = REGIONS.iter().map(|r| fx.emulator.tasks(r).len()).sum();
    assert!(
        stdout.contains(&format!("total tasks: {total}")),
        "{stdout}"
    );

    // One line per (team, region, state), with the emulator's counts.
    let mut want: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (i, region) in REGIONS.iter().enumerate() {
        for task in fx.emulator.tasks(region) {
            *want
                .entry((
                    format!("team-{}", i + 1),
                    region.to_string(),
                    task.store_task_state,
                ))
                .or_default() += 1;
        }
    }
    for ((team, region, state), count) in want {
        let line = stdout
            .lines()
            .find(|l| l.contains(&team) && l.contains(region.as_str()) && l.contains(&state))
            .unwrap_or_else(|| panic!("no line for {team} {region} {state}:\n{stdout}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cells[4], count.to_string(), "{line}");
    }
}
