//! Hardening (issue 11): hostile files, a hostile network and a bad day, each case with
//! its exact input, against the real binary and a private sandbox.

mod common;

#[path = "hardening/http.rs"]
mod http;
#[path = "hardening/input.rs"]
mod input;
#[path = "hardening/limits.rs"]
mod limits;
#[path = "hardening/writes.rs"]
mod writes;
