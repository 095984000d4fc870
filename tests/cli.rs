//! The binary as a user runs it: `serve --demo` on port 0, then the `sql` client in each
//! output format, and an error.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_aws-flightsql");

/// `serve --demo`, killed on drop.
struct Demo {
    child: Child,
    uri: String,
    banner: Vec<String>,
}

impl Demo {
    fn start() -> Demo {
        let mut child = Command::new(BIN)
            .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut banner = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(uri) = line.strip_prefix("aws-flightsql listening on ") {
                let uri = uri.trim().to_owned();
                return Demo { child, uri, banner };
            }
            banner.push(line);
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve --demo exited before it was ready; printed {banner:?}");
    }

    fn sql(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(["sql", "--connect", &self.uri])
            .args(args)
            .output()
            .expect("sql client runs")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn demo_serves_sample_data_to_the_sql_client() {
    let demo = Demo::start();
    assert!(demo.uri.starts_with("grpc://127.0.0.1:"), "{}", demo.uri);
    let banner = demo.banner.join("\n");
    assert!(banner.contains("AMIs available for INSERT"), "{banner}");
    assert!(banner.contains("ami-"), "{banner}");

    let out = demo.sql(&[
        "--format",
        "csv",
        "SELECT region, count(*) AS tasks, count(DISTINCT storeTaskState) AS states \
         FROM store_image_tasks GROUP BY region ORDER BY region",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "region,tasks,states");
    assert_eq!(lines.len(), 4, "{csv}");
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        assert!(
            fields[1].parse::<u32>().unwrap() > 200,
            "paging happens: {line}"
        );
        assert_eq!(fields[2], "3", "all three states present: {line}");
    }

    let out = demo.sql(&["--format", "json", "SELECT 1 AS one"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        r#"[{"one":1}]"#
    );

    let out = demo.sql(&["SELECT amiId FROM store_image_tasks WHERE region = 'eu-west-1' LIMIT 3"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("| amiId"), "{table}");
    assert!(table.trim_end().ends_with("3 rows"), "{table}");
}

#[test]
fn sql_errors_exit_non_zero_with_the_server_message() {
    let demo = Demo::start();
    let out = demo.sql(&["SELECT nope FROM store_image_tasks"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("InvalidArgument"), "{err}");
    assert!(err.contains("nope"), "{err}");

    let out = Command::new(BIN)
        .args(["sql", "--connect", "grpc://127.0.0.1:1", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("cannot connect"));
}
