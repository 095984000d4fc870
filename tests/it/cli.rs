//! The binary as a user runs it: `serve --demo` on port 0 and its banner, then the `sql`
//! client in each output format (large results streamed whole, tables in windows), and
//! errors.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::common::{Fixture, REGIONS};

const BIN: &str = env!("CARGO_BIN_EXE_aws-flightsql");

/// `serve --demo`, killed on drop.
struct Demo {
    child: Child,
    uri: String,
    banner: Vec<String>,
}

impl Demo {
    fn start() -> Demo {
        Demo::start_with_path(None)
    }

    /// `serve --demo` with `PATH` set to `path` (the banner's commands depend on whether
    /// the binary is on it).
    fn start_with_path(path: Option<&str>) -> Demo {
        let mut command = Command::new(BIN);
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let mut child = command
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
    assert!(
        banner.contains("AMIs you can store with INSERT"),
        "{banner}"
    );
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
    // The row count is printed once, after the table, with the time taken.
    let last = table.trim_end().lines().last().unwrap();
    assert!(last.starts_with("3 rows in "), "{table}");
    assert_eq!(table.matches("3 rows").count(), 1, "{table}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
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

impl Demo {
    /// A bucket of `region` and its first `n` storable AMIs, from the emulator's listing
    /// the banner names (the banner shows only a few).
    fn storable(&self, region: &str, n: usize) -> (String, Vec<String>) {
        let state = self.emulator_state();
        let region = &state["regions"][region];
        let amis: Vec<String> = region["amis"]
            .as_array()
            .unwrap_or_else(|| panic!("no AMIs in {state}"))
            .iter()
            .take(n)
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(amis.len(), n, "{state}");
        (region["buckets"][0].as_str().unwrap().to_owned(), amis)
    }

    /// What the emulator's listing URL in the banner (`curl -s URL`) answers.
    fn emulator_state(&self) -> serde_json::Value {
        let url = self
            .banner
            .iter()
            .find_map(|l| {
                l.split_once("curl -s ")
                    .map(|(_, url)| url.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no listing URL in {:?}", self.banner));
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { reqwest::get(&url).await?.json().await })
            .expect("the listing URL answers JSON")
    }

    /// How many tasks the server lists for `ami`.
    fn tasks_of(&self, ami: &str) -> usize {
        let out = self.sql(&[
            "--format",
            "csv",
            &format!("SELECT count(*) AS n FROM store_image_tasks WHERE amiId = '{ami}'"),
        ]);
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn dry_run_set_and_several_statements_in_one_call() {
    let demo = Demo::start();
    let (bucket, amis) = demo.storable("us-east-1", 5);
    let insert = |ami: &str| {
        format!(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('us-east-1', '{ami}', \
             '{bucket}')"
        )
    };
    let before = demo.tasks_of(&amis[0]);

    // --dry-run: the rows that would be created, then a line saying nothing was.
    let out = demo.sql(&["--dry-run", &insert(&amis[0])]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("| outcome"), "{stdout}");
    assert!(stdout.contains("would_create"), "{stdout}");
    assert!(stdout.contains(&amis[0]), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("dry run: nothing was created; 1 of 1 rows would be created"),
        "{stdout}"
    );
    assert_eq!(demo.tasks_of(&amis[0]), before, "nothing was created");

    // Several statements run in order in one session; SET and RESET print a line each.
    let out = demo.sql(&[&format!(
        "SET aws.dry_run = true; SHOW aws.dry_run; {}; RESET aws.dry_run; SHOW aws.dry_run;",
        insert(&amis[1])
    )]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "SET aws.dry_run = true", "{stdout}");
    let dry = lines
        .iter()
        .position(|l| l.starts_with("dry run: nothing was created; 1 of 1"))
        .expect(&stdout);
    let reset = lines
        .iter()
        .position(|l| *l == "RESET aws.dry_run")
        .expect(&stdout);
    assert!(dry < reset, "{stdout}");
    assert!(
        lines[..dry]
            .iter()
            .any(|l| l.contains("| aws.dry_run | true")),
        "{stdout}"
    );
    assert!(
        lines[reset..]
            .iter()
            .any(|l| l.contains("| aws.dry_run | false")),
        "{stdout}"
    );
    assert_eq!(demo.tasks_of(&amis[1]), 0);

    // --set applies any allowed option for the call; a bad one fails before the SQL runs.
    let out = demo.sql(&[
        "--set",
        "aws.cache=off",
        "--set",
        "datafusion.format.null=-",
        "SHOW aws.cache",
    ]);
    assert!(
        text(&out.stdout).contains("| aws.cache | off"),
        "{}",
        text(&out.stdout)
    );
    let out = demo.sql(&[
        "--set",
        "datafusion.execution.target_partitions=10000",
        "SELECT 1",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("between 1 and 16"), "{err}");

    // A real INSERT says how many tasks it created, and where.
    let out = demo.sql(&[&insert(&amis[2])]);
    assert_eq!(
        text(&out.stdout).trim(),
        "1 task created in us-east-1",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(demo.tasks_of(&amis[2]), 1);
    // One that names no region says which region it used; CSV keeps the result row.
    let out = demo.sql(&[&format!(
        "INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{}', '{bucket}')",
        amis[3]
    )]);
    assert_eq!(
        text(&out.stdout).trim(),
        "1 task created in us-east-1 (the server's default region: the INSERT named none)",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(demo.tasks_of(&amis[3]), 1);
    let out = demo.sql(&[
        "--format",
        "csv",
        &format!(
            "INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{}', '{bucket}')",
            amis[4]
        ),
    ]);
    assert_eq!(text(&out.stdout), "count,regions\n1,us-east-1\n");
    assert!(
        text(&out.stderr).contains("1 task created in us-east-1 (the server's default region"),
        "{}",
        text(&out.stderr)
    );

    // The first statement that fails stops the rest, and says which it was.
    let out = demo.sql(&["SELECT 1 AS a; SELECT nope FROM store_image_tasks; SELECT 3 AS c"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("statement 2 of 3 failed"), "{err}");
    assert!(err.contains("nope"), "{err}");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("| a "), "{stdout}");
    assert!(!stdout.contains("| c "), "{stdout}");
}

/// Runs the `sql` client against `uri`, off the runtime the servers run on.
async fn sql_at(uri: &str, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(["sql", "--connect", uri]).args(args);
    tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("sql client runs")
}

/// The emulator's tasks: each region's AMI ids, sorted.
fn emulator_amis(fx: &Fixture) -> BTreeMap<String, Vec<String>> {
    REGIONS
        .iter()
        .map(|region| {
            let mut amis: Vec<String> = fx
                .emulator
                .tasks(region)
                .into_iter()
                .map(|t| t.ami_id)
                .collect();
            amis.sort();
            (region.to_string(), amis)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_and_json_stream_a_large_result_whole() {
    let fx = Fixture::start(4_000).await;
    let uri = fx.server.uri();
    let want = emulator_amis(&fx);
    let total: usize = want.values().map(Vec::len).sum();
    assert!(total >= 12_000, "{total}");
    let sql = "SELECT region, amiId FROM store_image_tasks";

    let out = sql_at(&uri, &["--format", "csv", sql]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("region,amiId"));
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        let (region, ami) = line.split_once(',').expect(line);
        got.entry(region.to_owned())
            .or_default()
            .push(ami.to_owned());
    }
    got.values_mut().for_each(|amis| amis.sort());
    assert!(got == want, "the CSV's rows differ from the emulator's");
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("{total} rows in ")), "{err}");

    let out = sql_at(&uri, &["--format", "json", sql]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<BTreeMap<String, String>> =
        serde_json::from_slice(&out.stdout).expect("one valid JSON array");
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        got.entry(row["region"].clone())
            .or_default()
            .push(row["amiId"].clone());
    }
    got.values_mut().for_each(|amis| amis.sort());
    assert!(got == want, "the JSON's rows differ from the emulator's");

    // Empty results stay valid: a CSV header, an empty JSON array.
    let none = "SELECT region, amiId FROM store_image_tasks WHERE progressPercentage > 100";
    let out = sql_at(&uri, &["--format", "csv", none]).await;
    assert_eq!(text(&out.stdout), "region,amiId\n");
    assert!(text(&out.stderr).starts_with("0 rows in "));
    let out = sql_at(&uri, &["--format", "json", none]).await;
    assert_eq!(text(&out.stdout), "[]\n");
}

/// The tables of a table-format output: each one's data rows.
fn tables(stdout: &str) -> Vec<Vec<&str>> {
    let mut tables = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    let mut borders = 0;
    for line in stdout.lines() {
        if line.starts_with('+') {
            borders += 1;
            match borders % 3 {
                1 => current = Some(Vec::new()),
                0 => tables.extend(current.take()),
                _ => {}
            }
        } else if line.starts_with('|') && borders % 3 == 2 {
            current.as_mut().unwrap().push(line);
        }
    }
    tables
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_past_its_row_limit_says_so_and_continues_in_windows() {
    let fx = Fixture::start(40).await;
    let uri = fx.server.uri();
    let total: usize = emulator_amis(&fx).values().map(Vec::len).sum();
    assert_eq!(total, 120);
    let sql = "SELECT region, amiId FROM store_image_tasks";

    let out = sql_at(&uri, &["--max-table-rows", "50", sql]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let sizes: Vec<usize> = tables(&stdout).iter().map(Vec::len).collect();
    assert_eq!(sizes, [50, 50, 20], "{stdout}");
    assert_eq!(
        stdout
            .matches("(more than 50 rows: the rest follows")
            .count(),
        1,
        "{stdout}"
    );
    assert!(stdout.contains("--max-table-rows"), "{stdout}");
    let last = stdout.trim_end().lines().last().unwrap();
    assert!(last.starts_with("120 rows in "), "{stdout}");

    // A result that fits is one table, without the note.
    let out = sql_at(&uri, &["--max-table-rows", "120", sql]).await;
    let stdout = text(&out.stdout);
    let sizes: Vec<usize> = tables(&stdout).iter().map(Vec::len).collect();
    assert_eq!(sizes, [120], "{stdout}");
    assert!(!stdout.contains("more than"), "{stdout}");

    // The limit is a positive number.
    let out = sql_at(&uri, &["--max-table-rows", "0", sql]).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--max-table-rows"));
}

/// The AMIs a banner line of a region shows (`  REGION (bucket B): AMI AMI AMI (N in all)`).
fn shown_amis(line: &str) -> Vec<&str> {
    let (_, amis) = line.split_once("): ").expect(line);
    amis.split_whitespace()
        .filter(|w| w.starts_with("ami-"))
        .collect()
}

/// The command prefix the banner prints for this test's binary when it is not on the PATH.
fn cargo_prefix() -> &'static str {
    match Path::new(BIN)
        .parent()
        .and_then(|dir| dir.file_name())
        .and_then(|name| name.to_str())
    {
        Some("release") => "cargo run --release --",
        Some("debug") => "cargo run --",
        _ => BIN,
    }
}

#[test]
fn the_demo_banner_is_short_and_its_commands_work_as_printed() {
    // Not on the PATH, as after `cargo run --release -- serve --demo`.
    let demo = Demo::start_with_path(Some("/usr/bin:/bin"));
    let banner = demo.banner.join("\n");
    assert!(demo.banner.len() <= 12, "{banner}");
    for region in ["us-east-1", "us-west-2", "eu-west-1"] {
        let line = demo
            .banner
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{region} (bucket ")))
            .expect(&banner);
        assert_eq!(shown_amis(line).len(), 3, "{line}");
        assert!(line.ends_with(" in all)"), "{line}");
    }

    // How to list every storable AMI: a URL that lists them, the banner's first.
    let state = demo.emulator_state();
    let line = demo
        .banner
        .iter()
        .find(|l| l.trim_start().starts_with("eu-west-1 (bucket "))
        .unwrap();
    let shown = shown_amis(line);
    let all: Vec<&str> = state["regions"]["eu-west-1"]["amis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(all.len() > 3, "{state}");
    assert_eq!(shown, all[..3], "{line}");
    assert!(line.contains(&format!("({} in all)", all.len())), "{line}");

    // Each command works as printed, with the prefix the banner chose.
    let prefix = format!("  {} sql --connect {} ", cargo_prefix(), demo.uri);
    let commands: Vec<&String> = demo
        .banner
        .iter()
        .skip_while(|l| *l != "Try:")
        .skip(1)
        .collect();
    assert!(commands.len() >= 3, "{banner}");
    for command in commands {
        let rest = command.strip_prefix(&prefix).expect(command);
        let shell = format!("'{BIN}' sql --connect {} {rest}", demo.uri);
        let out = Command::new("sh").args(["-c", &shell]).output().unwrap();
        assert!(
            out.status.success(),
            "{command}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("| "),
            "{command}: {}",
            text(&out.stdout)
        );
    }
    drop(demo);

    // On the PATH, the commands name the binary.
    let dir = Path::new(BIN).parent().unwrap().to_str().unwrap();
    let demo = Demo::start_with_path(Some(&format!("{dir}:/usr/bin:/bin")));
    let try_line = demo
        .banner
        .iter()
        .skip_while(|l| *l != "Try:")
        .nth(1)
        .unwrap();
    assert!(
        try_line.starts_with(&format!("  aws-flightsql sql --connect {} ", demo.uri)),
        "{try_line}"
    );
}
