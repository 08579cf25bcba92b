//! ebssnap: scheduled EBS snapshots managed from Terraform.
//!
//! - [`core`]: the pure rules and plain data (documents, selection, tags, retention, schedules,
//!   tickets, the run report), shared by the runner and the provider; no AWS, no Terraform.
//! - [`aws`]: every AWS call, behind intent-level wrappers that count calls and classify errors,
//!   and the table of operations the runner calls (the IAM policy is generated from it).
//! - [`runner`]: a target run and a policy sweep, over the AWS layer and the core.
//! - [`webhook`]: delivering failure tickets; [`receiver`]: `webhook serve`, a local receiver.
//! - [`error`]: the runner's error type, exit codes and Lambda error types.
//! - [`cli`] and [`lambda`]: the two thin shells of the `ebssnap` binary.
//! - [`provider`]: the Terraform provider (feature `provider`).

pub mod aws;
pub mod cli;
pub mod core;
pub mod error;
pub mod lambda;
pub mod migrate;
#[cfg(feature = "provider")]
pub mod provider;
pub mod receiver;
pub mod runner;
pub mod webhook;
