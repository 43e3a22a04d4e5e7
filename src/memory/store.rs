//! The request store in memory: versioned conditional writes with their audit events in one step,
//! consistent `get`, and index reads (`due`, `live`, `by_*`) that see the table as it was `lag` ago,
//! as DynamoDB's global secondary indexes do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{lock, Injected, Node};
use crate::domain::{AuditEvent, Session, SessionId, SlackUserId, State, TargetName};
use crate::store::{AuditRecord, DueBatch, Store, StoreError};

/// The table, shared by every node.
pub struct StoreWorld {
    inner: Mutex<Tables>,
    time: Arc<super::VirtualTime>,
    /// How far index reads lag behind writes.
    pub lag: Duration,
    /// Items each `due` read returned, in order (what the due index query costs).
    pub due_reads: Mutex<Vec<u32>>,
}

#[derive(Default)]
struct Tables {
    /// Every version of every session, with when it was written (the last is current).
    sessions: BTreeMap<SessionId, Vec<(Duration, Session)>>,
    audit: BTreeMap<SessionId, Vec<AuditRecord>>,
    markers: BTreeMap<String, Duration>,
    /// Database user names and the Slack user each is reserved for.
    names: BTreeMap<String, crate::domain::SlackUserId>,
}

impl StoreWorld {
    pub fn new(lag: Duration, time: Arc<super::VirtualTime>) -> Arc<StoreWorld> {
        Arc::new(StoreWorld { inner: Mutex::default(), time, lag, due_reads: Mutex::default() })
    }

    /// Every session as currently stored (for invariant checks).
    pub fn all(&self) -> Vec<Session> {
        lock(&self.inner).sessions.values().filter_map(|h| h.last().map(|(_, s)| s.clone())).collect()
    }

    /// Every version of a session with when it was written (for the simulator's report).
    pub fn history(&self, id: &SessionId) -> Vec<(Duration, Session)> {
        lock(&self.inner).sessions.get(id).cloned().unwrap_or_default()
    }

    /// Every stored audit record (for invariant checks).
    pub fn trail(&self, id: &SessionId) -> Vec<AuditRecord> {
        lock(&self.inner).audit.get(id).cloned().unwrap_or_default()
    }

    fn lagged(&self) -> Vec<Session> {
        self.lagged_where(|_| true)
    }

    /// The sessions as the index saw them `lag` ago that pass `keep` (cloning only those).
    fn lagged_where(&self, keep: impl Fn(&Session) -> bool) -> Vec<Session> {
        let seen_by = self.time.now().checked_sub(self.lag);
        let tables = lock(&self.inner);
        tables
            .sessions
            .values()
            .filter_map(|history| history.iter().rev().find(|(at, _)| seen_by.is_none_or(|by| *at <= by)).map(|(_, s)| s))
            .filter(|s| keep(s))
            .cloned()
            .collect()
    }
}

fn record(s: &Session, seq: u64, event: &AuditEvent) -> AuditRecord {
    AuditRecord {
        session_id: s.id.clone(),
        seq,
        target: s.target.clone(),
        role: s.role,
        requester: s.requester.slack_id.clone(),
        db_user: s.requester.db_user.to_string(),
        event: event.clone(),
    }
}

/// One node's view of the table.
#[derive(Clone)]
pub struct MemStore {
    pub world: Arc<StoreWorld>,
    pub node: Node,
}

impl MemStore {
    pub fn new(world: Arc<StoreWorld>, node: Node) -> MemStore {
        MemStore { world, node }
    }

    async fn call<T>(&self, effect: impl FnOnce(&StoreWorld) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let world = self.world.clone();
        match self.node.call(move || effect(&world)).await {
            Ok(done) => done,
            Err(Injected::Error) => Err(StoreError::Unavailable("injected: DynamoDB answered 500".into())),
            Err(Injected::Timeout) => Err(StoreError::Unavailable("injected: DynamoDB did not answer in time".into())),
        }
    }
}

#[async_trait]
impl Store for MemStore {
    async fn create(&self, session: &Session, event: &AuditEvent) -> Result<(), StoreError> {
        let (session, event) = (session.clone(), event.clone());
        self.call(move |w| {
            let mut t = lock(&w.inner);
            if t.sessions.contains_key(&session.id) {
                return Err(StoreError::AlreadyExists(session.id.clone()));
            }
            t.audit.entry(session.id.clone()).or_default().push(record(&session, session.version, &event));
            t.sessions.insert(session.id.clone(), vec![(w.time.now(), session)]);
            Ok(())
        })
        .await
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let id = id.clone();
        self.call(move |w| Ok(lock(&w.inner).sessions.get(&id).and_then(|h| h.last()).map(|(_, s)| s.clone()))).await
    }

    async fn update(&self, expected_state: State, next: &Session, event: Option<&AuditEvent>) -> Result<Session, StoreError> {
        let (next, event) = (next.clone(), event.cloned());
        self.call(move |w| {
            let mut t = lock(&w.inner);
            let history = t.sessions.get_mut(&next.id).ok_or_else(|| StoreError::NotFound(next.id.clone()))?;
            let current = &history.last().expect("a stored session has a version").1;
            if current.state != expected_state || current.version != next.version {
                return Err(StoreError::Conflict(next.id.clone()));
            }
            let mut stored = next.clone();
            stored.version += 1;
            let at = w.time.now();
            history.push((at, stored.clone()));
            if let Some(event) = event {
                t.audit.entry(stored.id.clone()).or_default().push(record(&stored, stored.version, &event));
            }
            Ok(stored)
        })
        .await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<DueBatch, StoreError> {
        self.call(move |w| {
            let mut due: Vec<Session> = w.lagged_where(|s| s.next_action_at().is_some_and(|at| at <= now));
            due.sort_by_key(|s| (s.next_action_at(), s.id.clone()));
            due.truncate(limit);
            let n = due.len() as u32;
            lock(&w.due_reads).push(n);
            Ok(DueBatch { sessions: due, pages: 1, items_read: n })
        })
        .await
    }

    async fn live(&self) -> Result<Vec<Session>, StoreError> {
        self.call(|w| Ok(w.lagged().into_iter().filter(|s| !s.state.is_closed()).collect())).await
    }

    async fn by_requester(&self, user: &SlackUserId, limit: usize) -> Result<Vec<Session>, StoreError> {
        let user = user.clone();
        self.call(move |w| {
            let mut found: Vec<Session> = w.lagged().into_iter().filter(|s| s.requester.slack_id == user).collect();
            found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
            found.truncate(limit);
            Ok(found)
        })
        .await
    }

    async fn by_target(&self, target: &TargetName, since: Option<DateTime<Utc>>, limit: usize) -> Result<Vec<Session>, StoreError> {
        let target = target.clone();
        self.call(move |w| {
            let mut found: Vec<Session> =
                w.lagged().into_iter().filter(|s| s.target == target && since.is_none_or(|t| s.created_at >= t)).collect();
            found.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
            found.truncate(limit);
            Ok(found)
        })
        .await
    }

    async fn audit_trail(&self, id: &SessionId) -> Result<Vec<AuditRecord>, StoreError> {
        let id = id.clone();
        self.call(move |w| Ok(w.trail(&id))).await
    }

    async fn remember_once(&self, key: &str, ttl: chrono::Duration) -> Result<bool, StoreError> {
        let key = key.to_string();
        let ttl = ttl.to_std().unwrap_or_default();
        self.call(move |w| {
            let mut t = lock(&w.inner);
            let now = w.time.now();
            match t.markers.get(&key) {
                Some(at) if now.saturating_sub(*at) < ttl => Ok(false),
                _ => {
                    t.markers.insert(key, now);
                    Ok(true)
                }
            }
        })
        .await
    }

    async fn reserve_db_user(&self, name: &crate::domain::DbUsername, owner: &crate::domain::SlackUserId) -> Result<(), StoreError> {
        let (name, owner) = (name.to_string(), owner.clone());
        self.call(move |w| {
            let mut t = lock(&w.inner);
            match t.names.get(&name) {
                Some(holder) if *holder != owner => Err(StoreError::NameTaken(name)),
                Some(_) => Ok(()),
                None => {
                    t.names.insert(name, owner);
                    Ok(())
                }
            }
        })
        .await
    }
}
