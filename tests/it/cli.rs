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

impl Demo {
    /// The bucket and the first `n` storable AMIs the banner lists for `region`.
    fn storable(&self, region: &str, n: usize) -> (String, Vec<String>) {
        let line = self
            .banner
            .iter()
            .find_map(|l| l.trim().strip_prefix(&format!("{region} (bucket ")))
            .unwrap_or_else(|| panic!("no AMIs of {region} in {:?}", self.banner));
        let (bucket, amis) = line.split_once("): ").unwrap();
        let amis = amis.split_whitespace().take(n).map(str::to_owned).collect();
        (bucket.to_owned(), amis)
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
    let (bucket, amis) = demo.storable("us-east-1", 3);
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

    // A real INSERT says how many tasks it created.
    let out = demo.sql(&[&insert(&amis[2])]);
    assert_eq!(
        text(&out.stdout).trim(),
        "1 task created",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(demo.tasks_of(&amis[2]), 1);

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
