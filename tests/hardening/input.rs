//! Placeholder: filled in by the input hardening work.
