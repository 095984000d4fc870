//! `serve --demo`: an in-process EC2 emulator with sample data (an organization of three
//! accounts, three regions, more tasks than one API page holds) that the server is pointed
//! at, reaching the two member accounts through a role, and the banner that tells a new user
//! what to try. Only built with the `demo` feature (on by default): a deployment that never
//! runs the demo can leave the emulator out with `--no-default-features`.

use std::net::SocketAddr;

use ec2_emulator::{Emulator, EmulatorOptions};

use crate::ec2::{AccountSpec, AwsConfig, Credentials};
use crate::server::{Regions, ServerOptions};

/// The running emulator of the demo.
pub struct Demo {
    emulator: Emulator,
}

/// Accounts of the demo's organization: the server's own and two members.
const DEMO_ACCOUNTS: usize = 3;

/// The role the demo server assumes in each member account.
const DEMO_ROLE: &str = "flightsql-reader";

/// Sample data of the demo: three accounts, three regions, more tasks than one API page
/// holds; the tasks an INSERT creates take [`DEMO_TASK_DURATION`].
fn demo_options() -> EmulatorOptions {
    EmulatorOptions {
        regions: vec!["us-east-1".into(), "us-west-2".into(), "eu-west-1".into()],
        tasks_per_region: 250,
        accounts: DEMO_ACCOUNTS,
        task_duration: DEMO_TASK_DURATION,
        ..EmulatorOptions::default()
    }
}

/// How long a store task created in the demo takes: long enough to watch its progress,
/// short enough that `INSERT /*+ AWAIT */` (polling every 5 s) returns within a minute.
pub const DEMO_TASK_DURATION: std::time::Duration = std::time::Duration::from_secs(30);

/// The member accounts, as the server's configuration lists them.
fn demo_members() -> Vec<AccountSpec> {
    (1..DEMO_ACCOUNTS)
        .map(|i| {
            let id = ec2_emulator::account_id(i);
            AccountSpec {
                role_arn: format!("arn:aws:iam::{id}:role/{DEMO_ROLE}"),
                id,
                external_id: None,
                regions: None,
            }
        })
        .collect()
}

impl Demo {
    /// Starts the emulator on 127.0.0.1 and points `options` at it (its endpoint, static
    /// demo credentials, its regions unless regions were configured).
    pub async fn start(options: &mut ServerOptions) -> anyhow::Result<Demo> {
        let emulator =
            Emulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), demo_options()).await?;
        options.aws = AwsConfig {
            endpoint_url: Some(emulator.endpoint_url()),
            credentials: Credentials::Static {
                access_key_id: "AKIDEMO".into(),
                secret_access_key: "demo-secret".into(),
            },
            default_region: Some("us-east-1".into()),
            accounts: demo_members(),
            ..options.aws.clone()
        };
        if options.regions == Regions::Default {
            options.regions = Regions::List(emulator.regions());
        }
        Ok(Demo { emulator })
    }

    /// Prints what the demo serves and what to try against the server at `uri`: a few
    /// storable AMIs per region (and how to list them all), and commands that work as
    /// printed for however this binary was started (`command_prefix`).
    pub fn print_banner(&self, uri: &str) {
        let emu = &self.emulator;
        let url = emu.endpoint_url();
        let url = url.trim_end_matches('/');
        println!(
            "Demo mode: an in-process EC2 emulator at {url} serves regions {} with sample \
             data.",
            emu.regions().join(", ")
        );
        println!(
            "An organization: the server's own account {} and members {}, read through role \
             {DEMO_ROLE}.",
            ec2_emulator::HOME_ACCOUNT,
            demo_members()
                .iter()
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "AMIs you can store with INSERT (CreateStoreImageTask), the first \
             {BANNER_AMIS} of each region, and a bucket of that region:"
        );
        let mut insert_example = None;
        for region in emu.regions() {
            let amis = emu.storable_amis(&region);
            let bucket = emu.buckets(&region).into_iter().next().unwrap_or_default();
            let shown: Vec<&str> = amis.iter().take(BANNER_AMIS).map(String::as_str).collect();
            println!(
                "  {region} (bucket {bucket}): {} ({} in all)",
                shown.join(" "),
                amis.len()
            );
            // The INSERT to try names no region: it goes to the default region (see `start`).
            if region == "us-east-1" {
                insert_example = shown
                    .first()
                    .map(|ami| (region.clone(), ami.to_string(), bucket));
            }
        }
        println!("  all of them, with every bucket: curl -s {url}/_emulator/state");
        let run = command_prefix();
        println!("Try:");
        println!(
            "  {run} sql --connect {uri} \"SELECT account, region, count(*) AS tasks \
             FROM store_image_tasks GROUP BY account, region ORDER BY 1, 2\""
        );
        println!(
            "  {run} sql --connect {uri} \"SELECT region, storeTaskState, count(*) AS tasks \
             FROM store_image_tasks GROUP BY region, storeTaskState ORDER BY 1, 2\""
        );
        println!(
            "  {run} sql --connect {uri} \"SELECT amiId, bucket, progressPercentage FROM \
             aws.ec2.store_image_tasks WHERE region = 'eu-west-1' AND storeTaskState = \
             'InProgress'\""
        );
        if let Some((region, ami, bucket)) = insert_example {
            println!(
                "  {run} sql --connect {uri} --dry-run \"INSERT INTO store_image_tasks \
                 (amiId, bucket) VALUES ('{ami}', '{bucket}')\"  # no region: {region}; \
                 without --dry-run it creates the task"
            );
        }
    }

    /// Stops the emulator.
    pub async fn shutdown(self) {
        self.emulator.shutdown().await;
    }
}

/// How many storable AMIs of each region the banner shows.
const BANNER_AMIS: usize = 3;

/// How to run this binary from a shell: `aws-flightsql` when it is on the PATH; `cargo run
/// --release --` (`cargo run --` for a debug build) when it is a cargo build's output (in
/// a `release` or `debug` folder), as after `cargo run --release -- serve --demo`;
/// otherwise its own path.
fn command_prefix() -> String {
    const NAME: &str = env!("CARGO_PKG_NAME");
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            dir.join(NAME).is_file()
                || dir
                    .join(format!("{NAME}{}", std::env::consts::EXE_SUFFIX))
                    .is_file()
        })
    });
    if on_path {
        return NAME.to_owned();
    }
    let Ok(exe) = std::env::current_exe() else {
        return NAME.to_owned();
    };
    let profile = exe
        .parent()
        .and_then(|dir| dir.file_name())
        .and_then(|name| name.to_str());
    match profile {
        Some("release") => "cargo run --release --".to_owned(),
        Some("debug") => "cargo run --".to_owned(),
        _ => shell_quoted(&exe.to_string_lossy()),
    }
}

/// `word` as one shell word.
fn shell_quoted(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
