//! Placeholder: filled in by the writes hardening work.
