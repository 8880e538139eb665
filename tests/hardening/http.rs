//! Placeholder: filled in by the http hardening work.
