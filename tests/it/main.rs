//! The runner's integration tests: one binary, shared helpers (docs/design.md §9, layer 2).
//!
//! Each test starts its own `moto_server` on a free loopback port (nextest runs every test in its
//! own process), seeds it through the SDK and runs the runner in-process or as the CLI binary.

mod channels;
mod chaos;
mod cli;
mod continuation;
mod copies;
mod coverage;
mod demo;
mod docs;
mod examples;
mod filters;
mod fleet;
mod golden;
mod iam;
mod lambda;
mod links;
mod migrate;
mod mocks;
mod modern;
mod moto;
mod plugin;
mod proxy;
mod release;
mod restore;
mod runner;
mod safety;
mod terraform;
mod tf;
mod tickets;
mod trust;
mod validation;
