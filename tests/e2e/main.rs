//! The end-to-end tests: one binary, one module per area, the harness in [`kit`]. Every
//! test starts its own sandbox (sandbox/) and runs the real controller binary against it.

mod kit;

mod cli_input;
mod cli_tools;
mod conflicts;
mod controllers;
mod coverage;
mod daemon;
mod emf;
mod events;
mod faults;
mod hardening;
mod iam_policy;
mod iam_readonly;
mod lease;
mod multi_account;
mod observability;
mod organization;
mod plan_apply;
mod plan_markdown;
mod prometheus;
mod reconcile;
mod rollout;
mod workload;
