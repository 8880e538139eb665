//! The write fence: with a lease (`run --lease-table`), a replica writes to AWS only while
//! it holds the lease, and checks that before **every** write, not only at the start of a
//! pass.
//!
//! # The arithmetic
//!
//! The lease is a record-version-number lease (see `gec_aws::LeaseTable`): the holder
//! rewrites the item's RVN every heartbeat; a contender takes over only after it has seen
//! one RVN unchanged for a whole lease duration `L`, measured on its own monotonic clock,
//! and only by a write conditional on that RVN. No clock is compared across hosts.
//!
//! Say the holder sent the renew request that wrote RVN `v` at `t_send` (its clock) and
//! saw it succeed. A contender can first see `v` no earlier than the moment it was
//! written, which is after `t_send`; so it cannot take over before `t_send + L` (assuming
//! both clocks run at the same rate; they are not compared). The holder is granted
//!
//! ```text
//!     valid_until = t_send + L - margin,   margin >= the longest one write call can take
//! ```
//!
//! and starts a write only while `now < valid_until`. A write started at `t < valid_until`
//! ends (lands or fails) before `t + margin < t_send + L`: before any contender can take
//! over. A renew that fails changes nothing: the grant stays what the last successful
//! renew gave, and the fence closes by itself at `valid_until`. The daemon's margin is the
//! AWS operation timeout of every call (`--aws-operation-timeout`, all attempts and
//! backoff included; `write_once`'s single attempts are bounded by the attempt timeout,
//! which is shorter), and with a lease that timeout is capped at `L / 2`, so `margin <= L / 2`
//! and the fence stays open for `L / 2` after each renew (heartbeats come every `L / 4`).
//!
//! # Caveats
//! A request AWS holds longer than the client's timeout before applying it can still land
//! later; AWS gives no bound (the same caveat as `write_once`'s settle time).

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

/// Whether this replica may write now. Cheap to clone; clones share the grant.
/// [`Fence::default`] (no lease) always permits.
#[derive(Debug, Clone, Default)]
pub struct Fence(Option<Arc<Mutex<Option<Instant>>>>);

impl Fence {
    /// A fence of a leased replica: closed until [`Fence::grant`].
    pub fn leased() -> Self {
        Fence(Some(Arc::new(Mutex::new(None))))
    }

    /// Whether this fence belongs to a lease (false: it always permits).
    pub fn is_leased(&self) -> bool {
        self.0.is_some()
    }

    /// Open until `until` (see the module docs for how the elector computes it). A grant
    /// never shortens a later one already given.
    pub fn grant(&self, until: Instant) {
        if let Some(g) = &self.0 {
            if let Ok(mut g) = g.lock() {
                *g = Some(g.map_or(until, |old| old.max(until)));
            }
        }
    }

    /// Closed from now on, until the next [`Fence::grant`].
    pub fn revoke(&self) {
        if let Some(g) = &self.0 {
            if let Ok(mut g) = g.lock() {
                *g = None;
            }
        }
    }

    /// Until when writes may start, for a leased fence that is open.
    pub fn valid_until(&self) -> Option<Instant> {
        let g = self.0.as_ref()?;
        let until = g.lock().ok().and_then(|g| *g)?;
        (Instant::now() < until).then_some(until)
    }

    /// Whether a write may start now.
    pub fn permits(&self) -> bool {
        match &self.0 {
            None => true,
            Some(_) => self.valid_until().is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_grant_expires_by_itself_and_a_revoke_closes_at_once() {
        assert!(Fence::default().permits(), "no lease: always");
        let f = Fence::leased();
        assert!(!f.permits(), "closed until granted");
        f.grant(Instant::now() + Duration::from_secs(10));
        assert!(f.clone().permits());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!f.permits(), "closed at valid_until");
        f.grant(Instant::now() + Duration::from_secs(10));
        f.grant(Instant::now() + Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(f.permits(), "an older, shorter grant does not shorten it");
        f.revoke();
        assert!(!f.permits());
    }
}
