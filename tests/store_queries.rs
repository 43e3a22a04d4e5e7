//! The smaller promises of the store: lookups by requester and target, once-keys, duplicates,
//! missing sessions and stale writes.

mod store_support;

use chrono::Duration;

use powerpole::domain::{Event, SessionId, State, TargetName};
use powerpole::store::{Store, StoreError};
use store_support::{pending, pending_by, requested, requester, t0, user, TestTable};

#[tokio::test]
async fn by_requester_lists_only_their_sessions_newest_first() {
    let table = TestTable::new().await;
    let alice: Vec<_> = (0..3).map(|i| pending("billing", t0() + Duration::minutes(i))).collect();
    let bob = pending_by(requester("U0BOB", "bob@example.com"), "billing", t0() + Duration::minutes(10));
    for s in alice.iter().chain([&bob]) {
        table.store.create(s, &requested(s)).await.unwrap();
    }
    let ids = |v: Vec<powerpole::domain::Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let newest_first: Vec<SessionId> = alice.iter().rev().map(|s| s.id.clone()).collect();
    assert_eq!(ids(table.store.by_requester(&user("U0ALICE"), 10).await.unwrap()), newest_first);
    assert_eq!(ids(table.store.by_requester(&user("U0ALICE"), 2).await.unwrap()), newest_first[..2].to_vec());
    assert_eq!(ids(table.store.by_requester(&user("U0BOB"), 10).await.unwrap()), vec![bob.id.clone()]);
    assert!(table.store.by_requester(&user("U0NOBODY"), 10).await.unwrap().is_empty());
    table.delete().await;
}

#[tokio::test]
async fn by_target_lists_a_targets_sessions_since_a_time_newest_first() {
    let table = TestTable::new().await;
    let billing: Vec<_> = (0..4).map(|i| pending("billing", t0() + Duration::hours(i))).collect();
    let orders = pending("orders", t0() + Duration::hours(2));
    for s in billing.iter().chain([&orders]) {
        table.store.create(s, &requested(s)).await.unwrap();
    }
    let target = TargetName::parse("billing").unwrap();
    let ids = |v: Vec<powerpole::domain::Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let all: Vec<SessionId> = billing.iter().rev().map(|s| s.id.clone()).collect();
    assert_eq!(ids(table.store.by_target(&target, None, 10).await.unwrap()), all);
    // `since` is inclusive, to the microsecond.
    assert_eq!(ids(table.store.by_target(&target, Some(t0() + Duration::hours(2)), 10).await.unwrap()), all[..2].to_vec());
    assert_eq!(ids(table.store.by_target(&target, Some(t0() + Duration::hours(2) + Duration::microseconds(1)), 10).await.unwrap()), all[..1].to_vec());
    assert_eq!(ids(table.store.by_target(&target, None, 3).await.unwrap()), all[..3].to_vec());
    assert_eq!(ids(table.store.by_target(&TargetName::parse("orders").unwrap(), None, 10).await.unwrap()), vec![orders.id]);
    table.delete().await;
}

#[tokio::test]
async fn remember_once_says_yes_once_per_key_until_the_marker_expires() {
    let table = TestTable::new().await;
    let store = &table.store;
    assert!(store.remember_once("Ev01", Duration::hours(1)).await.unwrap());
    assert!(!store.remember_once("Ev01", Duration::hours(1)).await.unwrap(), "a retry was let through");
    assert!(store.remember_once("Ev02", Duration::hours(1)).await.unwrap());
    // A marker already past its TTL counts as gone, though DynamoDB has not deleted it yet.
    assert!(store.remember_once("click:approve:pp-x", Duration::seconds(-5)).await.unwrap());
    assert!(store.remember_once("click:approve:pp-x", Duration::hours(1)).await.unwrap());
    assert!(!store.remember_once("click:approve:pp-x", Duration::hours(1)).await.unwrap());
    // Keys longer than a DynamoDB key may be are still remembered.
    let long = "k".repeat(4096);
    assert!(store.remember_once(&long, Duration::hours(1)).await.unwrap());
    assert!(!store.remember_once(&long, Duration::hours(1)).await.unwrap());
    table.delete().await;
}

#[tokio::test]
async fn a_duplicate_id_is_refused_and_the_first_session_kept() {
    let table = TestTable::new().await;
    let first = pending("billing", t0());
    table.store.create(&first, &requested(&first)).await.unwrap();
    let mut second = pending("orders", t0() + Duration::minutes(1));
    second.id = first.id.clone();
    assert_eq!(table.store.create(&second, &requested(&second)).await, Err(StoreError::AlreadyExists(first.id.clone())));
    assert_eq!(table.store.get(&first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(table.store.audit_trail(&first.id).await.unwrap().len(), 1);
    table.delete().await;
}

#[tokio::test]
async fn a_missing_session_is_none_and_cannot_be_updated() {
    let table = TestTable::new().await;
    let ghost = pending("billing", t0());
    assert_eq!(table.store.get(&ghost.id).await.unwrap(), None);
    assert!(table.store.audit_trail(&ghost.id).await.unwrap().is_empty());
    let event = requested(&ghost);
    assert_eq!(table.store.update(State::Pending, &ghost, Some(&event)).await, Err(StoreError::NotFound(ghost.id.clone())));
    assert_eq!(table.store.update(State::Pending, &ghost, None).await, Err(StoreError::NotFound(ghost.id.clone())));
    assert_eq!(table.store.get(&ghost.id).await.unwrap(), None, "an update created the session");
    table.delete().await;
}

#[tokio::test]
async fn a_write_from_a_stale_read_or_the_wrong_state_is_a_conflict() {
    let table = TestTable::new().await;
    let s = pending("billing", t0());
    table.store.create(&s, &requested(&s)).await.unwrap();

    // A lease (no audit event) moves the version on.
    let mut leased = s.clone();
    leased.claim(t0(), Duration::minutes(2));
    let leased = table.store.update(State::Pending, &leased, None).await.unwrap();
    assert_eq!(leased.version, 1);

    let mut stale = s.clone();
    stale.apply(Event::Approved).unwrap();
    assert_eq!(table.store.update(State::Pending, &stale, None).await, Err(StoreError::Conflict(s.id.clone())));
    assert_eq!(table.store.update(State::Pending, &stale, Some(&requested(&s))).await, Err(StoreError::Conflict(s.id.clone())));
    // Right version, wrong expected state.
    assert_eq!(table.store.update(State::Approved, &leased, None).await, Err(StoreError::Conflict(s.id.clone())));
    assert_eq!(table.store.get(&s.id).await.unwrap(), Some(leased));
    table.delete().await;
}
