//! ebssnap: scheduled EBS snapshots managed from Terraform.
//!
//! - [`core`]: the pure rules (documents, selection, tags, retention), shared by the runner and
//!   the provider.
//! - [`aws`]: every AWS call, behind intent-level wrappers that count calls and classify errors.
//! - [`documents`]: where a run's documents come from and which source is trusted.
//! - [`engine`]: a target run and a policy sweep, over the AWS layer and the core.
//! - [`cli`] and [`lambda`]: the two thin shells of the `ebssnap` binary.

pub mod aws;
pub mod cli;
pub mod core;
pub mod documents;
pub mod engine;
pub mod error;
pub mod lambda;
#[cfg(feature = "provider")]
pub mod provider;
pub mod report;
pub mod webhook;
