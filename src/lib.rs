//! aws-flightsql: an Apache Arrow Flight SQL server that queries AWS resources with SQL.
//!
//! The flow follows the folder tree: [`flight`] (thin Flight SQL glue) → [`catalog`] (the
//! DataFusion session with catalog `aws`, schema `ec2`) → [`table`] (the
//! `store_image_tasks` provider and scan) → [`ec2`] (the AWS side). [`server`] wires them
//! to a listening socket, behind [`auth`] (who may connect and write), [`limits`] and
//! [`tls`]; [`cli`] is the command line.
#![warn(missing_docs)]

pub mod auth;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
/// The AWS side, its own crate (`ec2/`).
pub use aws_flightsql_ec2 as ec2;
pub mod error;
pub mod flight;
pub mod limits;
pub mod metrics;
pub mod observe;
pub mod redact;
pub mod rpc_layer;
pub mod server;
/// Limits on a statement's text: the Flight layer's admission measures them.
pub use flight::sql_limits;
pub mod table;
pub mod tls;
