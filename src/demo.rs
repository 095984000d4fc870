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
/// holds.
fn demo_options() -> EmulatorOptions {
    EmulatorOptions {
        regions: vec!["us-east-1".into(), "us-west-2".into(), "eu-west-1".into()],
        tasks_per_region: 250,
        accounts: DEMO_ACCOUNTS,
        ..EmulatorOptions::default()
    }
}

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

    /// Prints what the demo serves and what to try against the server at `uri`.
    pub fn print_banner(&self, uri: &str) {
        let emu = &self.emulator;
        println!(
            "Demo mode: an in-process EC2 emulator at {} serves regions {} with sample data.",
            emu.endpoint_url(),
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
            "AMIs available for INSERT (CreateStoreImageTask), with a bucket of their region:"
        );
        for region in emu.regions() {
            let amis = emu.storable_amis(&region);
            let bucket = emu.buckets(&region).into_iter().next().unwrap_or_default();
            println!("  {region} (bucket {bucket}): {}", amis.join(" "));
        }
        println!("Try:");
        println!(
            "  aws-flightsql sql --connect {uri} \"SELECT account, region, count(*) AS tasks \
             FROM store_image_tasks GROUP BY account, region ORDER BY 1, 2\""
        );
        println!(
            "  aws-flightsql sql --connect {uri} \"SELECT region, storeTaskState, count(*) AS tasks \
             FROM store_image_tasks GROUP BY region, storeTaskState ORDER BY 1, 2\""
        );
        println!(
            "  aws-flightsql sql --connect {uri} \"SELECT amiId, bucket, progressPercentage FROM \
             aws.ec2.store_image_tasks WHERE region = 'eu-west-1' AND storeTaskState = 'InProgress'\""
        );
    }

    /// Stops the emulator.
    pub async fn shutdown(self) {
        self.emulator.shutdown().await;
    }
}
