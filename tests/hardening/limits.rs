//! Placeholder: filled in by the limits hardening work.
