//! The end-to-end tests: one binary, one module per area, the harness in [`kit`]. Every
//! test starts its own sandbox (sandbox/) and runs the real controller binary against it.

mod kit;

mod cli_input;
mod conflicts;
mod controllers;
mod coverage;
mod daemon;
mod events;
mod faults;
mod hardening;
mod iam_policy;
mod lease;
mod multi_account;
mod observability;
mod organization;
mod plan_apply;
mod prometheus;
mod rollout;
mod status_page;
mod workload;
