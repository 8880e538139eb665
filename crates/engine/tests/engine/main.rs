//! The engine's integration tests, in one binary: the support code (an in-memory cloud,
//! its fleet of services, the engine's loop over it) compiles once for all of them.

mod churn;
mod clock_overflow;
mod conflicts;
mod controllers;
mod driver;
mod fake_cloud;
mod fence;
mod fleet_limits;
mod observe;
mod organization;
mod rollout;
mod support;
mod writes;
