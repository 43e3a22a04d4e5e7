//! Revocation at scale on virtual time: `live` active sessions, `due` of them expiring in the
//! same second, swept by the real sweeper loop ([`crate::workflow::sweep_loop`]) and lifecycle
//! over the in-memory adapters, with a Slack that takes one message per second per channel.
//! `tests/revocation_scale.rs` asserts on a small world; `benches/revocation.rs` prints the
//! figure for 10,000 / 1,000.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::{Executor, SkewedClock, World, CONFIG};
use crate::bastion::LaunchSpec;
use crate::config::Config;
use crate::domain::{AccessDuration, Actor, AuditEvent, AuditKind, DbUsername, Requester, Role, Session, SessionId, SlackUserId, State, TargetName};
use crate::grants::AccountRequest;
use crate::memory::{BastionWorld, Faults, GrantWorld, MemBastions, MemGrants, MemNotifier, MemStore, Node, SlackWorld, StoreWorld};
use crate::notify::Message;
use crate::workflow::{sweep_loop, Lifecycle, Workflow};

/// How big the world is.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub live: usize,
    pub due: usize,
}

/// What happened, for assertions and the figure.
pub struct ScaleReport {
    pub world: Arc<World>,
    /// Each dropped account's delay after its deadline, sorted.
    pub lags: Vec<Duration>,
    /// Due accounts never dropped.
    pub undropped: Vec<String>,
    pub terminated: usize,
    pub terminated_before_drop: usize,
    /// Due-index reads before any deadline was within the lookahead, and the items they read.
    pub idle_reads: usize,
    pub idle_items: u64,
    /// The most items one due-index read returned.
    pub max_items_per_read: u32,
}

impl ScaleReport {
    /// The 99th percentile of [`ScaleReport::lags`].
    pub fn p99(&self) -> Duration {
        if self.lags.is_empty() {
            return Duration::MAX;
        }
        let i = ((self.lags.len() as f64) * 0.99).ceil() as usize;
        self.lags[i.clamp(1, self.lags.len()) - 1]
    }
}

/// The deadline: this long after the world starts.
const DEADLINE_AFTER: Duration = Duration::from_secs(5 * 60);
/// How long the world runs after the deadline (enough for every notice at one per second).
fn settle(due: usize) -> Duration {
    Duration::from_secs(20 * 60 + 4 * due as u64)
}

/// Plays the world of `scale` to the end.
pub fn run(scale: Scale) -> ScaleReport {
    let config = Arc::new(Config::from_toml_str(CONFIG).expect("the simulator's configuration is valid"));
    run_with(scale, config, |_| {})
}

/// As [`run`], with another configuration (it must have a `billing` target), and `prepare` to
/// change the world before it starts (e.g. switch a fix off in [`GrantWorld`]).
pub fn run_with(scale: Scale, config: Arc<Config>, prepare: impl FnOnce(&World)) -> ScaleReport {
    let executor = Executor::new();
    let (time, spawner) = (executor.time.clone(), executor.spawner());
    let start_utc: DateTime<Utc> = DateTime::from_timestamp(1_772_528_400, 0).unwrap_or_else(Utc::now);
    let world = Arc::new(World {
        config: config.clone(),
        store: StoreWorld::new(Duration::ZERO, time.clone()),
        bastions: BastionWorld::new(Duration::ZERO, Duration::from_secs(1), time.clone()),
        grants: GrantWorld::new(time.clone()),
        slack: SlackWorld::new(),
        faults: Faults::none(time.clone()),
        time: time.clone(),
        spawner: spawner.clone(),
        start_utc,
    });
    prepare(&world);
    let node = Node::new("scale", world.faults.clone());
    let wake = Arc::new(Notify::new());
    let lifecycle = Lifecycle {
        workflow: Workflow {
            config: config.clone(),
            store: Arc::new(MemStore::new(world.store.clone(), node.clone())),
            clock: Arc::new(SkewedClock::new(time.clone(), start_utc, 0)),
            wake: wake.clone(),
        },
        bastions: Arc::new(MemBastions::new(world.bastions.clone(), node.clone())),
        grants: Arc::new(MemGrants::new(world.grants.clone(), node.clone())),
        notifier: Arc::new(MemNotifier::new(world.slack.clone(), node)),
        region: "eu-west-1".into(),
        transcripts: None,
        claims: Default::default(),
        dependencies: Default::default(),
    };
    let w = world.clone();
    executor.block_on(async move {
        populate(&lifecycle, scale).await;
        let setup_reads = crate::memory::lock(&w.store.due_reads).len();
        w.slack.per_channel_per_sec.store(1, std::sync::atomic::Ordering::SeqCst);
        let tick = config.scheduler.tick.to_std();
        let lookahead = chrono::Duration::from_std(tick).unwrap_or_default();
        let (sweeping, steps) = (lifecycle.clone(), w.spawner.clone());
        w.spawner.detach(sweep_loop(sweeping, lookahead, wake.clone(), Arc::new(|| {}), move |_, step| steps.detach(step)));
        // The scheduler job's periodic tick.
        let (periodic, clock) = (wake.clone(), w.time.clone());
        w.spawner.detach(async move {
            loop {
                clock.sleep(tick).await;
                periodic.notify_one();
            }
        });
        // Idle ticks: until the deadline comes within the lookahead.
        w.time.sleep_until(DEADLINE_AFTER - tick - Duration::from_secs(1)).await;
        let idle: Vec<u32> = crate::memory::lock(&w.store.due_reads)[setup_reads..].to_vec();
        w.time.sleep_until(DEADLINE_AFTER + settle(scale.due)).await;
        measure(w, scale, idle)
    })
}

/// Creates `scale.live` active sessions; the first `scale.due` expire at [`DEADLINE_AFTER`] and
/// have a real instance, account and approval card, the rest expire an hour later.
async fn populate(lifecycle: &Lifecycle, scale: Scale) {
    let wf = &lifecycle.workflow;
    let Some(target) = wf.config.target(&TargetName::parse("billing").expect("a valid name")).cloned() else { return };
    let now = wf.clock.now();
    let deadline = now + chrono::Duration::from_std(DEADLINE_AFTER).unwrap_or_default();
    for n in 0..scale.live {
        let (Ok(slack_id), Ok(db_user), Ok(ten)) = (SlackUserId::parse(&format!("U{n:08}")), DbUsername::parse(&format!("person{n}")), AccessDuration::from_minutes(10)) else {
            continue;
        };
        let requester = Requester { slack_id, email: format!("person{n}@example.com"), db_user, tz: None };
        let id = SessionId::derived_from(&format!("scale-{n}"));
        let mut s = Session::new(id.clone(), requester, target.name.clone(), Role::Read, ten, "INC-1".into(), now, ten);
        s.state = State::Active;
        s.approved_at = Some(now);
        s.handed_over_at = Some(now);
        let expires = if n < scale.due { deadline } else { deadline + chrono::Duration::hours(1) };
        (s.expires_at, s.warn_at, s.warned) = (Some(expires), Some(expires), true);
        if n < scale.due {
            let spec = LaunchSpec::new(id.clone(), s.requester.slack_id.clone(), &s.requester.email, &target);
            let Ok(instance) = lifecycle.bastions.launch(&spec).await else { continue };
            let host = instance.private_ip.to_string();
            let request = AccountRequest { earlier_attempt: false, user: s.requester.db_user.clone(), host: host.clone(), role: Role::Read };
            if lifecycle.grants.create_account(&target, &request).await.is_err() {
                continue;
            }
            (s.instance_id, s.private_ip, s.account_host) = (Some(instance.id), Some(host.clone()), Some(host));
            if let Ok(card) = lifecycle.notifier.post(&target.approvals_channel, &Message::plain(format!("card of {id}"))).await {
                (s.slack.approval_channel, s.slack.approval_ts) = (Some(card.channel), Some(card.ts));
            }
        }
        let event = AuditEvent::ok(AuditKind::Requested, Actor::System, now, "scale world");
        let _ = wf.store.create(&s, &event).await;
    }
}

fn measure(world: Arc<World>, scale: Scale, idle: Vec<u32>) -> ScaleReport {
    let instances = world.bastions.instances();
    let lives = world.grants.lives();
    let mut lags = Vec::new();
    let mut undropped = Vec::new();
    let (mut terminated, mut terminated_before_drop) = (0, 0);
    for s in world.store.all().iter().filter(|s| s.expires_at.is_some_and(|e| e <= world.utc(DEADLINE_AFTER))) {
        let ips: Vec<String> = instances.iter().filter(|i| i.session == s.id).map(|i| i.ip.to_string()).collect();
        let dropped = lives.iter().find(|l| l.user == s.requester.db_user.as_str() && ips.contains(&l.host)).and_then(|l| l.dropped);
        match dropped {
            Some(at) => lags.push(at.saturating_sub(DEADLINE_AFTER)),
            None => undropped.push(s.id.to_string()),
        }
        for i in instances.iter().filter(|i| i.session == s.id) {
            if let Some(at) = i.terminated_at {
                terminated += 1;
                if dropped.is_none_or(|d| at < d) {
                    terminated_before_drop += 1;
                }
            }
        }
    }
    lags.sort();
    let reads = crate::memory::lock(&world.store.due_reads).clone();
    let _ = scale;
    ScaleReport {
        lags,
        undropped,
        terminated,
        terminated_before_drop,
        idle_reads: idle.len(),
        idle_items: idle.iter().map(|n| u64::from(*n)).sum(),
        max_items_per_read: reads.into_iter().max().unwrap_or(0),
        world,
    }
}
