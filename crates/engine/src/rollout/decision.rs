//! What the rollout gate decides, and how a watched rollout ends: enums, never sentences;
//! each has a `Display` sentence for people and, where scripts need one, a stable code.

/// Why the gate holds a planned redeploy back. `Display` is the sentence for people;
/// [`Wait::code`] the stable identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Wait {
    /// The cluster's coverage has not been on for `settleTime` yet.
    Settling,
    /// The service's own rollout, started by this process, is in progress.
    Rolling,
    /// `maxConcurrent` rollouts are in progress.
    MaxConcurrent,
    /// `maxPerHour` redeploys started in the last hour.
    MaxPerHour,
    /// Outside every `windows` entry.
    Window,
    /// A FAILED rollout halted redeploys (`stopOnFailure`) until the desired state
    /// changes.
    Halted,
}

impl Wait {
    /// A stable snake_case identifier.
    pub fn code(self) -> &'static str {
        match self {
            Wait::Settling => "settling",
            Wait::Rolling => "rolling",
            Wait::MaxConcurrent => "max_concurrent",
            Wait::MaxPerHour => "max_per_hour",
            Wait::Window => "window",
            Wait::Halted => "halted",
        }
    }

    /// The wait ends by itself soon — a slot frees, a rollout or a settle time ends —
    /// so a pass is worth making before the next interval. Windows, `maxPerHour` and a
    /// halt wait for the interval.
    pub fn ends_soon(self) -> bool {
        matches!(self, Wait::Settling | Wait::Rolling | Wait::MaxConcurrent)
    }

    /// Policy, not failure: the redeploy is deferred by the rollout rules and will start
    /// on its own. Only a halt needs a person.
    pub fn is_policy(self) -> bool {
        self != Wait::Halted
    }
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Wait::Settling => "waiting for redeploy.settleTime after coverage turned on",
            Wait::Rolling => "its redeploy is rolling",
            Wait::MaxConcurrent => "redeploy.maxConcurrent rollouts are in progress",
            Wait::MaxPerHour => "redeploy.maxPerHour reached for the last hour",
            Wait::Window => "outside the redeploy.windows",
            Wait::Halted => {
                "a rollout FAILED; redeploys are halted until the desired state changes (redeploy.stopOnFailure)"
            }
        })
    }
}

/// Whether a planned redeploy starts now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it: a slot is reserved; report the outcome with [`Rollouts::started`].
    Start,
    /// Not now, and why.
    Wait(Wait),
}

/// How a watched rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Settled {
    /// `COMPLETED`, or the only deployment left.
    Completed,
    /// `FAILED`.
    Failed,
    /// Superseded, or the service was deleted.
    Gone,
}

impl Settled {
    /// `COMPLETED`, `FAILED` or `GONE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Settled::Completed => "COMPLETED",
            Settled::Failed => "FAILED",
            Settled::Gone => "GONE",
        }
    }
}

impl std::fmt::Display for Settled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
