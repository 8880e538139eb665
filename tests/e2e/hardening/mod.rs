//! Hardening (issue 11): hostile files, a hostile network and a bad day, each case with
//! its exact input, against the real binary and a private sandbox.

mod http;
mod input;
mod limits;
mod writes;
