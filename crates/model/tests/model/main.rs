//! The model's integration tests, in one binary: reading desired-state files (examples,
//! mistakes, hostile input, random damage) and the `accounts` form of `targets`.

mod accounts_targets;
mod desired_files;
mod error_language;
mod hostile_input;
mod mutations;
mod organization;
