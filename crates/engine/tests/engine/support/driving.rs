//! The engine's loop ([`Driver`]) over in-memory clouds: [`Clouds`] by region, and a
//! host that starts a round every tick for a while, as the daemon's timer would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gec_engine::{Clock, Clouds, Context, Driver, Host, Mode, Report, Round, Settings, TargetPass};
use gec_model::desired::{DesiredState, Target};
use tokio::time::Instant;

use crate::support::FakeCloud;

/// In-memory clouds by region.
#[derive(Debug, Clone, Default)]
pub struct FakeClouds(BTreeMap<String, Arc<FakeCloud>>);

impl FakeClouds {
    /// One cloud for the region of every target.
    pub fn one(cloud: Arc<FakeCloud>) -> Self {
        FakeClouds(BTreeMap::from([(String::new(), cloud)]))
    }

    /// These clouds, by target label (`account/region`) or region.
    pub fn by_region<'a>(clouds: impl IntoIterator<Item = (&'a str, Arc<FakeCloud>)>) -> Self {
        FakeClouds(clouds.into_iter().map(|(r, c)| (r.to_owned(), c)).collect())
    }
}

impl Clouds for FakeClouds {
    type Cloud = FakeCloud;

    async fn cloud(&self, target: &Target) -> Arc<FakeCloud> {
        let cloud = self
            .0
            .get(&target.label())
            .or_else(|| self.0.get(&target.region))
            .or_else(|| self.0.get(""))
            .unwrap_or_else(|| panic!("no fake cloud for {}", target.label()));
        Arc::clone(cloud)
    }
}

/// A round every `tick` until `until`; keeps every report. Each round tries every target
/// unless `timer` (then the engine skips the ones in backoff).
pub struct Ticks {
    pub round: Round,
    pub tick: Duration,
    pub until: Instant,
    pub timer: bool,
    pub reports: Vec<Report>,
}

impl Host for Ticks {
    async fn next_round(&mut self, due: Option<Instant>) -> Option<Round> {
        if due.is_some() {
            tokio::time::sleep(self.tick).await;
        }
        (Instant::now() < self.until).then(|| Round {
            every_target: !self.timer,
            ..self.round.clone()
        })
    }

    fn finished(&mut self, _round: &Round, report: Report) {
        self.reports.push(report);
    }
}

/// Engine state that lives across rounds, as in the daemon: the context, and the
/// desired state's generation, bumped when a run is given a different desired state.
pub struct Controller {
    pub ctx: Context,
    pub settings: Settings,
    last: Mutex<Option<(DesiredState, u64)>>,
}

impl Controller {
    pub fn new(clock: Clock) -> Self {
        Controller {
            ctx: Context {
                clock,
                ..Context::default()
            },
            settings: Settings {
                max_concurrent_targets: 1,
                ..Settings::new(Mode::Apply)
            },
            last: Mutex::new(None),
        }
    }

    fn round_of(&self, desired: &DesiredState) -> Round {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let generation = match &*last {
            Some((d, g)) if d == desired => *g,
            Some((_, g)) => g + 1,
            None => 1,
        };
        *last = Some((desired.clone(), generation));
        Round {
            desired: Arc::new(desired.clone()),
            generation,
            every_target: true,
        }
    }

    /// One round over every target.
    pub async fn pass(&self, cloud: &Arc<FakeCloud>, desired: &DesiredState) -> TargetPass {
        let round = self.round_of(desired);
        let mut driver = Driver::new(
            FakeClouds::one(Arc::clone(cloud)),
            self.ctx.clone(),
            self.settings.clone(),
        );
        let mut report = driver.round(&round).await;
        report.passes.remove(0)
    }

    /// Rounds every `tick` for `total` through the engine's loop; every pass, in order.
    pub async fn run(
        &self,
        clouds: FakeClouds,
        desired: &DesiredState,
        tick: Duration,
        total: Duration,
        timer: bool,
    ) -> Vec<Report> {
        let mut host = Ticks {
            round: self.round_of(desired),
            tick,
            until: Instant::now() + total,
            timer,
            reports: Vec::new(),
        };
        Driver::new(clouds, self.ctx.clone(), self.settings.clone())
            .run(&mut host)
            .await;
        host.reports
    }
}
