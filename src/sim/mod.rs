//! The deterministic simulator: the real workflow code (request, decide, lifecycle, sweep,
//! reconcile) run by 2-3 replicas against the in-memory adapters ([`crate::memory`]) on a paused tokio clock, with
//! people acting at random, faults injected into every adapter call, crashes and restarts, and
//! clocks skewed within [`SKEW_BOUND`]. Everything random comes from one seed, and a paused
//! current-thread runtime runs tasks in a fixed order, so a seed replays exactly.
//!
//! [`run`] plays one schedule and checks the invariants ([`invariants`]) once the world is quiet.

mod exec;
pub mod fixes;
mod invariants;
mod people;
mod replica;
pub mod rng;
pub mod scale;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::config::Config;
pub use exec::{Executor, Spawner};

use crate::memory::{BastionWorld, FaultRates, Faults, GrantWorld, SlackWorld, StoreWorld, VirtualTime};

use people::Action;
use replica::Replicas;
pub use replica::SkewedClock;
use rng::Rng;

/// Replicas' clocks differ from true time by at most this (each is skewed by a fixed amount in
/// `-SKEW_BOUND..=SKEW_BOUND`). Leases stay exclusive while skew stays under a third of the
/// shortest lease (see ARCHITECTURE.md); the simulator stays well inside that.
pub const SKEW_BOUND: Duration = Duration::from_secs(5);

/// How long after its deadline (expiry, or the end or revoke that cut it short) a session's
/// account may still exist when no teardown step failed: both clocks' skew, the index lag, a
/// sweeper tick, the teardown leases left by two workers that crashed mid-teardown in a row (the
/// teardown lease is `provisioning_lease`, 30 s here, renewed while the worker runs), and the time
/// the calls take.
pub const USABLE_BOUND: Duration = Duration::from_secs(2 * 5 + 3 + 30 + 2 * 30 + 60);

/// People act during this window; then faults stop and the world runs until quiet.
const ACTIVE: Duration = Duration::from_secs(15 * 60);
const QUIET: Duration = Duration::from_secs(32 * 60);

/// The configuration every replica runs (durations are short so a schedule covers whole lives).
pub const CONFIG: &str = r#"
[scheduler]
tick = "30s"
warning_lead = "1m"
pending_timeout = "5m"
teardown_alert_after = "5m"
provisioning_lease = "30s"
reconcile_every = "2m"
reconcile_grace = "3m"

[bastion]
ssm_online_timeout = "2m"

[access]
home_domains = ["example.com"]

[deployment]
id = "test"

[targets.billing]
description = "Billing"
writer_endpoint = "billing.cluster-abc.eu-west-1.rds.amazonaws.com"
reader_endpoint = "billing.cluster-ro-abc.eu-west-1.rds.amazonaws.com"
instance_endpoints = ["billing-1.abc.eu-west-1.rds.amazonaws.com", "billing-2.abc.eu-west-1.rds.amazonaws.com"]
schemas = ["billing"]
admin_secret = "powerpole/billing-admin"
subnet_id = "subnet-0123"
security_group_id = "sg-0123"
approvers = ["U0BOB", "U0CAROL"]
required_approvals = 1
approvals_channel = "C0APPROVALS"
max_duration = "20m"
oncall_group = "S0ONCALL"
breakglass_max_duration = "10m"

# The policy layer in play: Alice's short READs are auto-approved (one at a time); DDL is open to
# Alice only, so Dave's DDL requests are refused before anything is stored.
[targets.billing.policy]
max_auto_sessions = 1
[targets.billing.policy.READ]
auto_approve_users = ["U0ALICE"]
auto_approve_max = "5m"
[targets.billing.policy.DDL]
eligible_users = ["U0ALICE"]
"#;

/// The on-call group of `billing` (break-glass): Dave is in it, Alice is not.
const ONCALL: (&str, &[&str]) = ("S0ONCALL", &["U0DAVE"]);

/// What the world is made of, shared by every replica and the invariant checks.
pub struct World {
    pub config: Arc<Config>,
    pub store: Arc<StoreWorld>,
    pub bastions: Arc<BastionWorld>,
    pub grants: Arc<GrantWorld>,
    pub slack: Arc<SlackWorld>,
    pub faults: Arc<Faults>,
    pub time: Arc<VirtualTime>,
    pub spawner: Spawner,
    /// True time when the world started.
    pub start_utc: DateTime<Utc>,
}

impl World {
    /// True UTC time at `at` (time since the start).
    pub fn utc(&self, at: Duration) -> DateTime<Utc> {
        self.start_utc + chrono::Duration::from_std(at).unwrap_or_default()
    }
}

/// What one schedule did and found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    /// The planned schedule (people's actions, replicas, skews, fault rates), one line each.
    pub schedule: Vec<String>,
    pub violations: Vec<String>,
    pub crashes: u64,
    pub faults: u64,
    /// A digest of everything that happened: equal digests for equal seeds prove replay.
    pub digest: u64,
    /// Each session's trail, one line each (what `--seed` prints).
    pub trails: Vec<String>,
    /// The work the schedule did (a schedule that files nothing proves nothing).
    pub coverage: Coverage,
}

/// How much of each kind of work schedules did, from the world (instances, accounts, DMs) and the
/// stored trails. `tests/sim.rs` asserts a floor for each over its batch; `make simulate` prints
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Sessions whose requester got a hand-over DM with a working password.
    pub handovers: u64,
    pub expiries: u64,
    pub ends: u64,
    pub revokes: u64,
    pub extensions: u64,
    /// Break-glass sessions taken (stored approved).
    pub breakglass: u64,
    /// Planted strays (bastions and accounts no session owns) that reconcile removed.
    pub reconcile_removals: u64,
    /// Schedules that planted a stray.
    pub stray_schedules: u64,
    /// Sessions whose bastion was launched before any approver clicked Approve.
    pub launched_on_request: u64,
}

impl Coverage {
    pub fn add(&mut self, o: &Coverage) {
        self.handovers += o.handovers;
        self.expiries += o.expiries;
        self.ends += o.ends;
        self.revokes += o.revokes;
        self.extensions += o.extensions;
        self.breakglass += o.breakglass;
        self.reconcile_removals += o.reconcile_removals;
        self.stray_schedules += o.stray_schedules;
        self.launched_on_request += o.launched_on_request;
    }
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "hand-overs {}, expiries {}, ends {}, revokes {}, extensions {}, break-glass sessions {}, reconcile removals {} (in {} schedules with a stray), launched on request {}",
            self.handovers, self.expiries, self.ends, self.revokes, self.extensions, self.breakglass, self.reconcile_removals, self.stray_schedules, self.launched_on_request
        )
    }
}

impl Outcome {
    /// The seed, the schedule and the violations, for a failure message.
    pub fn report(&self) -> String {
        format!(
            "seed {} violated {} invariant(s):\n  {}\nschedule:\n  {}\nreplay: make simulate SEED={}",
            self.seed,
            self.violations.len(),
            self.violations.join("\n  "),
            self.schedule.join("\n  "),
            self.seed
        )
    }
}

/// Plays the schedule of `seed` and checks the invariants; the outcome has the digest and the
/// trails.
pub fn run(seed: u64) -> Outcome {
    play(seed, true)
}

/// The stack a schedule is played on: the workflow's futures, polled unoptimised in a debug build,
/// nest deeper than a thread's default 2 MB allows.
const STACK: usize = 256 * 1024 * 1024;

/// Plays `seed` on a thread of its own with a large stack, carrying the fixes switched off on
/// this one.
fn play(seed: u64, detail: bool) -> Outcome {
    let off = fixes::current();
    std::thread::Builder::new()
        .name(format!("sim-{seed}"))
        .stack_size(STACK)
        .spawn(move || {
            fixes::set(off);
            play_here(seed, detail)
        })
        .expect("a thread for the schedule")
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn play_here(seed: u64, detail: bool) -> Outcome {
    let executor = Executor::new();
    let (time, spawner) = (executor.time.clone(), executor.spawner());
    // A panic that escapes the schedule itself (the executor's, or one an awaited handle passed
    // on) is a violation of this seed like any other.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| executor.block_on(simulate(seed, time, spawner, detail)))) {
        Ok(outcome) => outcome,
        Err(panic) => Outcome {
            seed,
            schedule: vec!["(the schedule panicked before it could be reported; replay it for its plan)".into()],
            violations: vec![format!("the schedule panicked: {}", exec::panic_message(panic.as_ref()))],
            crashes: 0,
            faults: 0,
            digest: 0,
            trails: Vec::new(),
            coverage: Coverage::default(),
        },
    }
}

/// What [`run_seeds`] found.
#[derive(Debug, Default)]
pub struct Batch {
    pub schedules: u64,
    /// The schedules that violated an invariant, in seed order, each with its trails.
    pub failures: Vec<Outcome>,
    pub crashes: u64,
    pub faults: u64,
    pub coverage: Coverage,
}

/// Plays `count` schedules from seed `first` on every core. Each schedule is a world of its own
/// on its own executor, so how the seeds are spread over threads changes nothing in any of
/// them. The digest and trails are kept only for failures (they cost a third of a run).
pub fn run_seeds(first: u64, count: u64) -> Batch {
    run_seeds_without(first, count, &[])
}

/// As [`run_seeds`], with `broken` fixes switched off in every schedule ([`fixes`]): how many
/// schedules each fix holds.
pub fn run_seeds_without(first: u64, count: u64, broken: &[fixes::Fix]) -> Batch {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, count.max(1) as usize) as u64;
    let parts: Vec<Batch> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut part = Batch::default();
                    for seed in (first + t..first + count).step_by(threads as usize) {
                        let outcome = fixes::without(broken, || play(seed, false));
                        part.schedules += 1;
                        part.crashes += outcome.crashes;
                        part.faults += outcome.faults;
                        part.coverage.add(&outcome.coverage);
                        if !outcome.violations.is_empty() {
                            part.failures.push(fixes::without(broken, || play(seed, true)));
                        }
                    }
                    part
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let mut batch = Batch::default();
    for part in parts {
        batch.schedules += part.schedules;
        batch.crashes += part.crashes;
        batch.faults += part.faults;
        batch.coverage.add(&part.coverage);
        batch.failures.extend(part.failures);
    }
    batch.failures.sort_by_key(|o| o.seed);
    batch
}

/// The configuration of `seed`: one seed in four runs `billing` with launch on request (chosen by
/// the seed itself, not the RNG, so the other seeds' schedules stay as they were).
fn config(seed: u64) -> Arc<Config> {
    static CONFIG_ONCE: std::sync::OnceLock<[Arc<Config>; 2]> = std::sync::OnceLock::new();
    let [plain, early] = CONFIG_ONCE.get_or_init(|| {
        let parse = |text: &str| Arc::new(Config::from_toml_str(text).expect("the simulator's configuration is valid"));
        [parse(CONFIG), parse(&CONFIG.replace("[targets.billing]\n", "[targets.billing]\nlaunch_on_request = true\n"))]
    });
    if launches_on_request(seed) {
        early.clone()
    } else {
        plain.clone()
    }
}

fn launches_on_request(seed: u64) -> bool {
    seed % 4 == 2
}

async fn simulate(seed: u64, time: Arc<VirtualTime>, spawner: Spawner, detail: bool) -> Outcome {
    let mut rng = Rng::new(seed);
    let rates = FaultRates {
        error: rng.below(40) as u32,
        timeout: rng.below(15) as u32,
        lost_reply: rng.below(25) as u32,
        crash: rng.below(6) as u32,
        max_latency_ms: 1 + rng.below(400),
    };
    let store_lag = Duration::from_millis(rng.below(3000));
    let tag_lag = Duration::from_millis(rng.below(45_000));
    let boot = Duration::from_secs(rng.between(10, 90) as u64);
    let world = Arc::new(World {
        config: config(seed),
        store: StoreWorld::new(store_lag, time.clone()),
        bastions: BastionWorld::new(tag_lag, boot, time.clone()),
        grants: GrantWorld::new(time.clone()),
        slack: SlackWorld::new(),
        faults: Faults::new(rng.next_u64(), rates, time.clone()),
        time: time.clone(),
        spawner: spawner.clone(),
        start_utc: Utc.with_ymd_and_hms(2026, 3, 3, 9, 0, 0).single().unwrap_or_else(Utc::now),
    });
    world.bastions.set_epoch(world.start_utc);
    crate::memory::lock(&world.slack.groups).insert(ONCALL.0.into(), ONCALL.1.iter().filter_map(|u| crate::domain::SlackUserId::parse(u).ok()).collect());
    let answer_delay = Duration::from_secs(rng.below(30));
    *crate::memory::lock(&world.bastions.answer_delay) = answer_delay;
    let replica_count = rng.between(2, 3) as usize;
    let skews: Vec<i64> = (0..replica_count).map(|_| rng.between(-(SKEW_BOUND.as_millis() as i64), SKEW_BOUND.as_millis() as i64)).collect();
    let mut actions = people::plan(&mut rng, ACTIVE, replica_count);
    // Break-glass and strays from a stream of their own: the rest of each seed's plan stays.
    actions.extend(people::plan_extra(&mut Rng::new(seed ^ 0xb7ea_c6a5), ACTIVE));
    actions.sort_by_key(|(at, _)| *at);

    let mut schedule = vec![
        format!("faults per mille: error {} timeout {} lost reply {} crash {}; latency up to {} ms", rates.error, rates.timeout, rates.lost_reply, rates.crash, rates.max_latency_ms),
        format!("index lag {store_lag:?}, tag lag {tag_lag:?}, boot {boot:?}, RunInstances answers after {answer_delay:?}"),
        format!("{replica_count} replicas, clock skews (ms) {skews:?}"),
        format!("launch on request: {}", if launches_on_request(seed) { "on" } else { "off" }),
    ];
    schedule.extend(actions.iter().map(|(at, a)| format!("t+{:>4}s {a}", at.as_secs())));

    let replicas = Replicas::start(world.clone(), skews);
    let people = Arc::new(Mutex::new(people::People::default()));
    let restarter = replicas.clone().restart_dead(seed);
    for (at, action) in actions {
        time.sleep_until(at).await;
        match action {
            Action::Crash { replica } => replicas.crash(replica),
            action => {
                let Some(lifecycle) = replicas.any_live(&mut rng) else { continue };
                spawner.detach(people::act(world.clone(), lifecycle, people.clone(), action));
            }
        }
    }
    time.sleep_until(ACTIVE).await;
    // Quiescence: no more faults, every replica alive, and enough time for every deadline.
    world.faults.set_rates(FaultRates { max_latency_ms: rates.max_latency_ms, ..FaultRates::default() });
    replicas.revive_all();
    time.sleep(QUIET).await;
    drop(restarter);
    replicas.stop();

    let counts = &world.faults.counts;
    let crashes = counts.crashes.load(std::sync::atomic::Ordering::Relaxed) + replicas.scheduled_crashes();
    let people = crate::memory::lock(&people);
    let mut violations = invariants::check(&world, &people, crashes > 0);
    violations.extend(spawner.panics().into_iter().map(|p| format!("a task panicked: {p}")));
    Outcome {
        seed,
        schedule,
        violations,
        crashes,
        faults: counts.faults(),
        digest: if detail { invariants::digest(&world) } else { 0 },
        trails: if detail { invariants::trails(&world) } else { Vec::new() },
        coverage: invariants::coverage(&world, &people),
    }
}
