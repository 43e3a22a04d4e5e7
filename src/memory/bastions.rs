//! EC2 and SSM in memory: `RunInstances` honours the `ClientToken` (the session id), the tag lookup
//! lags behind launches by `lag`, and an instance's agent comes online `boot` after its launch.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{lock, Injected, Node};
use crate::bastion::{BastionError, Bastions, Instance, InstanceState, LaunchSpec, ManagedInstance};
use crate::domain::SessionId;

/// One instance as the world knows it.
#[derive(Debug, Clone)]
pub struct SimInstance {
    pub id: String,
    pub session: SessionId,
    pub ip: Ipv4Addr,
    /// When it was launched (time since the world started).
    pub launched: Duration,
    pub terminated: bool,
    /// The identity tag: who may enter (set at launch, or at approval for launch on request).
    pub identity: Option<String>,
    /// When the identity tag was set (time since the world started).
    pub identity_at: Option<Duration>,
    /// When it was first terminated.
    pub terminated_at: Option<Duration>,
}

/// The region, shared by every node.
pub struct BastionWorld {
    inner: Mutex<BTreeMap<String, SimInstance>>,
    /// Tag lookups do not see an instance until this long after its launch.
    pub lag: Duration,
    /// The agent is online this long after launch.
    pub boot: Duration,
    /// `RunInstances` answers this long after the instance exists (a slow API answer: the window
    /// in which a session can end while its worker does not know its instance yet).
    pub answer_delay: Mutex<Duration>,
    time: Arc<super::VirtualTime>,
    /// True UTC time when the world started: once set, instances carry their launch time (what
    /// reconcile needs to spare young ones); without it they carry none, and reconcile spares all.
    epoch: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

impl BastionWorld {
    pub fn new(lag: Duration, boot: Duration, time: Arc<super::VirtualTime>) -> Arc<BastionWorld> {
        Arc::new(BastionWorld { inner: Mutex::default(), lag, boot, answer_delay: Mutex::default(), time, epoch: Mutex::default() })
    }

    /// Gives instances launch times, counted from `start` (true time when the world started).
    pub fn set_epoch(&self, start: chrono::DateTime<chrono::Utc>) {
        *lock(&self.epoch) = Some(start);
    }

    fn launched_at(&self, i: &SimInstance) -> Option<chrono::DateTime<chrono::Utc>> {
        lock(&self.epoch).map(|start| start + chrono::Duration::from_std(i.launched).unwrap_or_default())
    }

    fn to_instance(&self, i: &SimInstance) -> Instance {
        let state = if i.terminated { InstanceState::Terminated } else { InstanceState::Running };
        Instance { id: i.id.clone(), private_ip: i.ip, state, launched_at: self.launched_at(i) }
    }

    /// Every instance ever launched (for invariant checks).
    pub fn instances(&self) -> Vec<SimInstance> {
        lock(&self.inner).values().cloned().collect()
    }

    fn by_token(&self, session: &SessionId) -> Option<SimInstance> {
        lock(&self.inner).values().find(|i| &i.session == session).cloned()
    }

    fn by_tag(&self, session: &SessionId) -> Option<SimInstance> {
        lock(&self.inner).values().find(|i| &i.session == session && i.launched + self.lag <= self.time.now()).cloned()
    }
}

/// One node's EC2 and SSM clients.
#[derive(Clone)]
pub struct MemBastions {
    pub world: Arc<BastionWorld>,
    pub node: Node,
}

impl MemBastions {
    pub fn new(world: Arc<BastionWorld>, node: Node) -> MemBastions {
        MemBastions { world, node }
    }

    async fn call<T>(&self, action: &'static str, effect: impl FnOnce(&BastionWorld) -> Result<T, BastionError>) -> Result<T, BastionError> {
        let world = self.world.clone();
        match self.node.call(move || effect(&world)).await {
            Ok(done) => done,
            Err(e @ (Injected::Error | Injected::Timeout)) => Err(BastionError::Ec2 { action, message: e.to_string() }),
        }
    }
}

#[async_trait]
impl Bastions for MemBastions {
    async fn launch(&self, spec: &LaunchSpec) -> Result<Instance, BastionError> {
        if let Some(found) = self.find(&spec.session).await? {
            return Ok(found);
        }
        let session = spec.session.clone();
        let identity_at_launch = spec.identity_at_launch.then(|| spec.requester.to_string());
        let launched = self
            .call("RunInstances", move |w| {
                // The ClientToken: the same session gets the same instance, terminated or not.
                if let Some(existing) = w.by_token(&session) {
                    return Ok(existing);
                }
                let mut all = lock(&w.inner);
                let n = all.len() as u32 + 1;
                let instance = SimInstance {
                    id: format!("i-{n:017x}"),
                    session,
                    ip: Ipv4Addr::from(0x0a00_0000 + n),
                    launched: w.time.now(),
                    terminated: false,
                    identity_at: identity_at_launch.as_ref().map(|_| w.time.now()),
                    identity: identity_at_launch,
                    terminated_at: None,
                };
                all.insert(instance.id.clone(), instance.clone());
                Ok(instance)
            })
            .await?;
        let delay = *lock(&self.world.answer_delay);
        self.world.time.sleep(delay).await;
        if launched.terminated {
            return Err(BastionError::Ended { session: spec.session.to_string(), instance_id: launched.id, state: "terminated".into() });
        }
        Ok(self.world.to_instance(&launched))
    }

    async fn find(&self, session: &SessionId) -> Result<Option<Instance>, BastionError> {
        let session = session.clone();
        self.call("DescribeInstances", move |w| Ok(w.by_tag(&session).filter(|i| !i.terminated).map(|i| w.to_instance(&i)))).await
    }

    async fn set_identity(&self, instance_id: &str, spec: &LaunchSpec) -> Result<(), BastionError> {
        let id = instance_id.to_string();
        let session = spec.session.clone();
        let identity = spec.requester.to_string();
        self.call("CreateTags", move |w| {
            let mut all = lock(&w.inner);
            match all.get_mut(&id) {
                Some(i) if !i.terminated && i.session == session => match &i.identity {
                    Some(tagged) if *tagged != identity => Err(BastionError::OtherIdentity { instance_id: id, tagged: tagged.clone() }),
                    _ => {
                        if i.identity.is_none() {
                            i.identity_at = Some(w.time.now());
                        }
                        i.identity = Some(identity);
                        Ok(())
                    }
                },
                _ => Err(BastionError::Ended { session: session.to_string(), instance_id: id, state: "gone".into() }),
            }
        })
        .await
    }

    async fn wait_online(&self, instance_id: &str, timeout: Duration) -> Result<(), BastionError> {
        let id = instance_id.to_string();
        let started = self.world.time.now();
        loop {
            let lookup = id.clone();
            let seen = self.call("DescribeInstanceInformation", move |w| Ok(lock(&w.inner).get(&lookup).cloned())).await;
            match seen {
                Ok(Some(i)) if !i.terminated && i.launched + self.world.boot <= self.world.time.now() => return Ok(()),
                Ok(_) | Err(_) if self.world.time.now().saturating_sub(started) >= timeout => {
                    return Err(BastionError::NotOnline { instance_id: id, waited: timeout });
                }
                _ => self.world.time.sleep(Duration::from_secs(5)).await,
            }
        }
    }

    async fn terminate(&self, instance_id: &str) -> Result<(), BastionError> {
        let id = instance_id.to_string();
        self.call("TerminateInstances", move |w| {
            if let Some(i) = lock(&w.inner).get_mut(&id) {
                i.terminated = true;
                i.terminated_at.get_or_insert(w.time.now());
            }
            Ok(())
        })
        .await
    }

    async fn list_managed(&self) -> Result<Vec<ManagedInstance>, BastionError> {
        self.call("DescribeInstances", |w| {
            let seen_by = w.time.now().checked_sub(w.lag);
            Ok(lock(&w.inner)
                .values()
                .filter(|i| !i.terminated && seen_by.is_none_or(|by| i.launched <= by))
                .map(|i| ManagedInstance {
                    id: i.id.clone(),
                    session: Some(i.session.to_string()),
                    target: None,
                    state: InstanceState::Running,
                    launched_at: w.launched_at(i),
                })
                .collect())
        })
        .await
    }
}
