//! A database server in memory: accounts with their password and role, and the connections open
//! on them. Creating is two steps, as on the server: the account is created locked and unmarked
//! (the call's effect), then given its password and marked; a crash or a lost reply in between
//! leaves it unfinished, as a worker that stops among the real statements does. Creating
//! converges an account of powerpole's and finishes an unfinished one only for the session's
//! later attempt; revoking kills its connections and drops it.
//!
//! Each node reaches a server through admin connections as [`crate::grants::MysqlGrants`] does:
//! one pool of [`POOL_MAX`] connections per (target, instance `host:port`), a new connection
//! taking [`CONNECT_TIME`], a wait for a free one given up after [`CONNECT_TIMEOUT`], and each
//! operation holding one of the target's [`ADMIN_OPERATIONS`] places and one writer connection,
//! killing sessions through it on the writer and through the instance's own pool elsewhere. With
//! the fix switched off ([`GrantWorld::set_pool_fix`], or `POWERPOLE_SIM_BREAK=admin-pool`)
//! operations take no place and kill through a second connection from the instance's pool, as
//! the adapter did before issue 23: concurrent revocations then starve each other when an
//! instance endpoint is the writer. The waits take virtual time and roll no fault, so a schedule
//! draws the same faults either way.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{select, Either};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{lock, Injected, Node};
use crate::config::TargetConfig;
use crate::domain::{DbUsername, Role};
use crate::grants::{AccountRequest, AccountState, GrantError, Grants, Password, RevokeOutcome, RevokeReport, ADMIN_OPERATIONS, POOL_MAX};

/// How long opening an admin connection takes (TCP and TLS handshakes and the login, to a server
/// in the same region).
pub const CONNECT_TIME: Duration = Duration::from_millis(30);
/// How long a node waits for an admin connection before giving up (the adapter's default).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One account as the server knows it.
#[derive(Debug, Clone)]
pub struct SimAccount {
    pub target: String,
    pub user: String,
    pub host: String,
    pub role: Role,
    /// The current password (the simulator checks none reaches the store).
    pub password: String,
    pub connections: usize,
    /// Marked as powerpole's and unlocked: false while it is being created (or left unfinished).
    pub marked: bool,
}

/// Every target's server, shared by every node.
pub struct GrantWorld {
    time: Arc<super::VirtualTime>,
    accounts: Mutex<BTreeMap<(String, String, String), SimAccount>>,
    /// Every password ever issued.
    issued: Mutex<Vec<String>>,
    /// When each account was created and dropped, in order.
    lives: Mutex<Vec<AccountLife>>,
    /// Whether the nodes use their admin connections as the fixed adapter does (issue 23).
    pool_fix: AtomicBool,
    /// Admin connection waits given up after [`CONNECT_TIMEOUT`].
    pub connect_timeouts: AtomicUsize,
}

/// One account's life: from the create that made it to the revoke that dropped it.
#[derive(Debug, Clone)]
pub struct AccountLife {
    pub target: String,
    pub user: String,
    pub host: String,
    pub created: std::time::Duration,
    pub dropped: Option<std::time::Duration>,
}

impl GrantWorld {
    pub fn new(time: Arc<super::VirtualTime>) -> Arc<GrantWorld> {
        let broken = std::env::var("POWERPOLE_SIM_BREAK").is_ok_and(|v| v.split(',').any(|b| b.trim() == "admin-pool"));
        Arc::new(GrantWorld {
            time,
            accounts: Mutex::default(),
            issued: Mutex::default(),
            lives: Mutex::default(),
            pool_fix: AtomicBool::new(!broken),
            connect_timeouts: AtomicUsize::new(0),
        })
    }

    /// Switches the fix of issue 23 on (the default) or off, to show what finds its absence.
    pub fn set_pool_fix(&self, on: bool) {
        self.pool_fix.store(on, Ordering::SeqCst);
    }

    fn pool_fix(&self) -> bool {
        self.pool_fix.load(Ordering::SeqCst)
    }

    pub fn accounts(&self) -> Vec<SimAccount> {
        lock(&self.accounts).values().cloned().collect()
    }

    pub fn lives(&self) -> Vec<AccountLife> {
        lock(&self.lives).clone()
    }

    pub fn issued(&self) -> Vec<String> {
        lock(&self.issued).clone()
    }

    /// A person logs in with `password`: a connection opens if it is the account's current one.
    pub fn connect(&self, password: &str) -> bool {
        let mut accounts = lock(&self.accounts);
        match accounts.values_mut().find(|a| a.marked && a.password == password) {
            Some(a) => {
                a.connections += 1;
                true
            }
            None => false,
        }
    }
}

fn key(target: &TargetConfig, user: &DbUsername, host: &str) -> (String, String, String) {
    (target.name.to_string(), user.to_string(), host.to_string())
}

/// One node's admin connections.
#[derive(Clone)]
pub struct MemGrants {
    pub world: Arc<GrantWorld>,
    pub node: Node,
    pools: Arc<Pools>,
}

/// A node's pools (per target and instance) and places (per target).
#[derive(Default)]
struct Pools {
    pools: Mutex<HashMap<(String, String), Arc<Pool>>>,
    places: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// One pool: at most [`POOL_MAX`] connections, some of them open and idle.
struct Pool {
    slots: Arc<Semaphore>,
    idle: AtomicUsize,
}

/// A connection taken from a pool; idle again when dropped.
struct Conn {
    _slot: OwnedSemaphorePermit,
    pool: Arc<Pool>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.pool.idle.fetch_add(1, Ordering::SeqCst);
    }
}

impl MemGrants {
    pub fn new(world: Arc<GrantWorld>, node: Node) -> MemGrants {
        MemGrants { world, node, pools: Arc::default() }
    }

    /// The writer and every instance endpoint, as `host:port` (the adapter's `instances`).
    fn writer(target: &TargetConfig) -> String {
        format!("{}:{}", target.writer_endpoint, target.port)
    }

    fn instances(target: &TargetConfig) -> Vec<String> {
        if target.instance_endpoints.is_empty() {
            return vec![Self::writer(target)];
        }
        target
            .instance_endpoints
            .iter()
            .map(|e| match e.rsplit_once(':') {
                Some((_, p)) if p.parse::<u16>().is_ok() => e.clone(),
                _ => format!("{e}:{}", target.port),
            })
            .collect()
    }

    /// A connection to `host` from this node's pool, opened if none is idle; given up after
    /// [`CONNECT_TIMEOUT`] without one.
    async fn connection(&self, target: &TargetConfig, host: &str) -> Result<Conn, GrantError> {
        let pool = {
            let mut pools = lock(&self.pools.pools);
            pools
                .entry((target.name.to_string(), host.to_string()))
                .or_insert_with(|| Arc::new(Pool { slots: Arc::new(Semaphore::new(POOL_MAX)), idle: AtomicUsize::new(0) }))
                .clone()
        };
        let time = self.node.time().clone();
        let slot = match select(Box::pin(pool.slots.clone().acquire_owned()), Box::pin(time.sleep(CONNECT_TIMEOUT))).await {
            Either::Left((Ok(slot), _)) => slot,
            Either::Left((Err(_), _)) | Either::Right(_) => {
                self.world.connect_timeouts.fetch_add(1, Ordering::Relaxed);
                let (host, port) = host.rsplit_once(':').unwrap_or((host, ""));
                return Err(GrantError::AdminConnect {
                    target: target.name.clone(),
                    host: host.to_string(),
                    port: port.parse().unwrap_or(target.port),
                    user: "admin".into(),
                    message: format!("no answer within {CONNECT_TIMEOUT:?}"),
                });
            }
        };
        let reused = pool.idle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if !reused {
            time.sleep(CONNECT_TIME).await;
        }
        Ok(Conn { _slot: slot, pool })
    }

    /// One of the target's places for an admin operation, waited for until the grant deadline;
    /// none with the fix switched off.
    async fn place(&self, target: &TargetConfig) -> Result<Option<OwnedSemaphorePermit>, GrantError> {
        if !self.world.pool_fix() {
            return Ok(None);
        }
        let places = lock(&self.pools.places).entry(target.name.to_string()).or_insert_with(|| Arc::new(Semaphore::new(ADMIN_OPERATIONS))).clone();
        let time = self.node.time().clone();
        let started = time.now();
        match select(Box::pin(places.acquire_owned()), Box::pin(time.sleep(target.grant_deadline))).await {
            Either::Left((Ok(place), _)) => Ok(Some(place)),
            Either::Left((Err(_), _)) | Either::Right(_) => Err(GrantError::Busy { target: target.name.clone(), waited: time.now().saturating_sub(started), places: ADMIN_OPERATIONS }),
        }
    }

    /// A place and a writer connection: what every admin operation holds while it runs.
    async fn admin(&self, target: &TargetConfig) -> Result<(Option<OwnedSemaphorePermit>, Conn), GrantError> {
        let place = self.place(target).await?;
        let conn = self.connection(target, &Self::writer(target)).await?;
        Ok((place, conn))
    }

    /// Kills the account's sessions on every instance while holding `writer`: through it on
    /// the writer itself, through a connection of the instance's pool elsewhere (and always so
    /// with the fix switched off).
    async fn kill_everywhere(&self, target: &TargetConfig) -> Result<(), GrantError> {
        let writer = Self::writer(target);
        for host in Self::instances(target) {
            if host != writer || !self.world.pool_fix() {
                let _other = self.connection(target, &host).await?;
            }
        }
        Ok(())
    }

    async fn call<T>(&self, target: &TargetConfig, what: &'static str, effect: impl FnOnce(&GrantWorld) -> T) -> Result<T, GrantError> {
        let world = self.world.clone();
        self.node.call(move || effect(&world)).await.map_err(|e| match e {
            Injected::Error => GrantError::Statement { target: target.name.clone(), what, code: 1205, message: e.to_string() },
            Injected::Timeout => GrantError::Connection { target: target.name.clone(), what, message: e.to_string() },
        })
    }
}

#[async_trait]
impl Grants for MemGrants {
    async fn create_account(&self, target: &TargetConfig, request: &AccountRequest) -> Result<Password, GrantError> {
        let password = Password::generate();
        let secret = password.expose().to_string();
        let (k, role, earlier_attempt) = (key(target, &request.user, &request.host), request.role, request.earlier_attempt);
        let _admin = self.admin(target).await?;
        // The call's effect: the account exists, locked and unmarked (or is refused as foreign).
        let created = self
            .call(target, "create the account", |w| {
                let mut accounts = lock(&w.accounts);
                match accounts.get(&k) {
                    Some(a) if !a.marked && !earlier_attempt => return false,
                    Some(_) => {}
                    None => {
                        lock(&w.lives).push(AccountLife { target: k.0.clone(), user: k.1.clone(), host: k.2.clone(), created: w.time.now(), dropped: None });
                        let account = SimAccount { target: k.0.clone(), user: k.1.clone(), host: k.2.clone(), role, password: String::new(), connections: 0, marked: false };
                        accounts.insert(k.clone(), account);
                    }
                }
                true
            })
            .await?;
        if !created {
            return Err(GrantError::ForeignAccount { target: target.name.clone(), account: format!("'{}'@'{}'", k.1, k.2) });
        }
        // Its answer arrived: the rest of the statements ran too (no await in between).
        lock(&self.world.issued).push(secret.clone());
        if let Some(account) = lock(&self.world.accounts).get_mut(&k) {
            account.password = secret;
            account.role = role;
            account.marked = true;
        }
        Ok(password)
    }

    async fn revoke(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<RevokeReport, GrantError> {
        let k = key(target, user, host);
        let account = format!("'{}'@'{}'", k.1, k.2);
        let _admin = self.admin(target).await?;
        // Between the lock and the drop, the sessions are killed on every instance.
        self.kill_everywhere(target).await?;
        let dropped = self
            .call(target, "drop the account", move |w| {
                let gone = lock(&w.accounts).remove(&k);
                if gone.is_some() {
                    let mut lives = lock(&w.lives);
                    if let Some(life) = lives.iter_mut().rev().find(|l| (&l.target, &l.user, &l.host) == (&k.0, &k.1, &k.2)) {
                        life.dropped = Some(w.time.now());
                    }
                }
                gone
            })
            .await?;
        Ok(match dropped {
            Some(a) => RevokeReport { account, killed: a.connections, outcome: RevokeOutcome::Dropped },
            None => RevokeReport { account, killed: 0, outcome: RevokeOutcome::AlreadyGone },
        })
    }

    async fn account_state(&self, target: &TargetConfig, user: &DbUsername, host: &str) -> Result<AccountState, GrantError> {
        let k = key(target, user, host);
        let _admin = self.admin(target).await?;
        self.call(target, "look the account up", move |w| match lock(&w.accounts).get(&k) {
            None => AccountState::Absent,
            Some(a) if a.marked => AccountState::Powerpole,
            Some(_) => AccountState::Unfinished,
        })
        .await
    }

    async fn list_accounts(&self, target: &TargetConfig) -> Result<Vec<(String, String)>, GrantError> {
        let name = target.name.to_string();
        let _admin = self.admin(target).await?;
        self.call(target, "list accounts", move |w| {
            lock(&w.accounts).values().filter(|a| a.target == name).map(|a| (a.user.clone(), a.host.clone())).collect()
        })
        .await
    }
}
