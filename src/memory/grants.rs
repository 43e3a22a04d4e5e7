//! A database server in memory: accounts with their password and role, and the connections open
//! on them. Creating is two steps, as on the server: the account is created locked and unmarked
//! (the call's effect), then given its password and marked; a crash or a lost reply in between
//! leaves it unfinished, as a worker that stops among the real statements does. Creating
//! converges an account of powerpole's and finishes an unfinished one only for the session's
//! later attempt; revoking kills its connections and drops it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{lock, Injected, Node};
use crate::config::TargetConfig;
use crate::domain::{DbUsername, Role};
use crate::grants::{AccountRequest, AccountState, GrantError, Grants, Password, RevokeOutcome, RevokeReport};

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
        Arc::new(GrantWorld { time, accounts: Mutex::default(), issued: Mutex::default(), lives: Mutex::default() })
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
}

impl MemGrants {
    pub fn new(world: Arc<GrantWorld>, node: Node) -> MemGrants {
        MemGrants { world, node }
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
        self.call(target, "look the account up", move |w| match lock(&w.accounts).get(&k) {
            None => AccountState::Absent,
            Some(a) if a.marked => AccountState::Powerpole,
            Some(_) => AccountState::Unfinished,
        })
        .await
    }

    async fn list_accounts(&self, target: &TargetConfig) -> Result<Vec<(String, String)>, GrantError> {
        let name = target.name.to_string();
        self.call(target, "list accounts", move |w| {
            lock(&w.accounts).values().filter(|a| a.target == name).map(|a| (a.user.clone(), a.host.clone())).collect()
        })
        .await
    }
}
