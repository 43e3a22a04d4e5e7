//! Two approvers clicking at once, thirty-two times over: exactly one decision is stored.

mod store_support;

use std::sync::Arc;
use std::time::Instant;

use chrono::Duration;
use tokio::sync::Barrier;

use powerpole::domain::{Actor, Approval, AuditEvent, AuditKind, Event, State};
use powerpole::store::{Store, StoreError};
use store_support::{pending, requested, t0, user, TestTable};

const RACERS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_32_concurrent_approvals_exactly_one_wins_and_31_conflict() {
    let started = Instant::now();
    let table = TestTable::new().await;
    let session = pending("billing", t0());
    table.store.create(&session, &requested(&session)).await.unwrap();
    // moto runs behind scripts/moto_serial.py, which applies each request atomically, in some
    // serial order, as DynamoDB does (plain moto does not: see that script).
    let store = Arc::new(table.store.clone());
    // Everyone reads before anyone writes, so all 32 hold version 0 and truly race.
    let barrier = Arc::new(Barrier::new(RACERS));

    let racers = (0..RACERS).map(|i| {
        let (store, barrier, id) = (store.clone(), barrier.clone(), session.id.clone());
        tokio::spawn(async move {
            let approver = user(&format!("U0APPROVER{i:02}"));
            let mut read = store.get(&id).await.unwrap().expect("the session exists");
            barrier.wait().await;
            let at = t0() + Duration::seconds(30);
            read.apply(Event::Approved).unwrap();
            read.approvals.push(Approval { approver: approver.clone(), at, request: None });
            read.approved_at = Some(at);
            let event = AuditEvent::ok(AuditKind::Approved, Actor::User(approver.clone()), at, "approved");
            (approver, store.update(State::Pending, &read, Some(&event)).await)
        })
    });
    let results = futures::future::join_all(racers).await.into_iter().map(|r| r.expect("a racer panicked")).collect::<Vec<_>>();

    let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).map(|(who, _)| who.clone()).collect();
    let conflicts = results.iter().filter(|(_, r)| matches!(r, Err(StoreError::Conflict(id)) if *id == session.id)).count();
    let others: Vec<_> = results.iter().filter_map(|(_, r)| r.as_ref().err()).filter(|e| !matches!(e, StoreError::Conflict(_))).collect();
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(conflicts, RACERS - 1, "other errors: {others:?}");

    let stored = table.store.get(&session.id).await.unwrap().unwrap();
    assert_eq!(stored.state, State::Approved);
    assert_eq!(stored.version, 1);
    assert_eq!(stored.approvals.iter().map(|a| a.approver.clone()).collect::<Vec<_>>(), winners, "the stored decision is the winner's");

    let trail = table.store.audit_trail(&session.id).await.unwrap();
    let kinds: Vec<_> = trail.iter().map(|r| r.event.kind).collect();
    assert_eq!(kinds, vec![AuditKind::Requested, AuditKind::Approved]);
    assert_eq!(trail[1].event.actor, Actor::User(winners[0].clone()));
    assert_eq!(trail[1].seq, 1);

    table.delete().await;
    eprintln!("32-way approval race: {:?}", started.elapsed());
}
