//! The scheduler's question, "what is due now?", answered from the sharded due index without
//! reading the thousands of sessions that are live but not due.

mod store_support;

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

use powerpole::domain::{Event, Session};
use powerpole::store::schema::DUE_SHARDS;
use powerpole::store::Store;
use store_support::{pending, requested, t0, TestTable};

const LIVE: usize = 2_000;

/// Five sessions due at `now`, in five different situations, soonest first.
fn due_sessions(now: DateTime<Utc>) -> Vec<Session> {
    let mut tearing_down = pending("billing", now - Duration::hours(5));
    for e in [Event::Approved, Event::ProvisioningStarted, Event::HandedOver, Event::Expired] {
        tearing_down.apply(e).unwrap();
    }
    let timed_out = pending("billing", now - Duration::hours(3));
    let mut approved = pending("orders", now - Duration::minutes(20));
    approved.apply(Event::Approved).unwrap();
    approved.approved_at = Some(now - Duration::minutes(15));
    let mut expiring = pending("orders", now - Duration::hours(3));
    for e in [Event::Approved, Event::ProvisioningStarted, Event::HandedOver] {
        expiring.apply(e).unwrap();
    }
    expiring.start_clock(now - Duration::minutes(125), "10m".parse().unwrap());
    expiring.warned = true;
    // Due at exactly `now`: "at or before" includes it.
    let on_the_dot = pending("billing", now - Duration::hours(1));
    let sessions = vec![tearing_down, timed_out, approved, expiring, on_the_dot];
    let at: Vec<_> = sessions.iter().map(|s| s.next_action_at().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]) && at[4] == now, "fixture order: {at:?}");
    sessions
}

/// Live sessions that are not due at `now`, including the near misses.
fn not_due_sessions(now: DateTime<Utc>, count: usize) -> Vec<Session> {
    // Due one millisecond after `now`: same whole second, so the index returns it and the store
    // must drop it.
    let just_after = pending("billing", now - Duration::hours(1) + Duration::milliseconds(1));
    let next_second = pending("billing", now - Duration::hours(1) + Duration::seconds(1));
    // Approved long ago, but a worker holds a lease on it until two minutes from now.
    let mut leased = pending("orders", now - Duration::minutes(30));
    leased.apply(Event::Approved).unwrap();
    leased.approved_at = Some(now - Duration::minutes(29));
    leased.claim(now - Duration::minutes(1), Duration::minutes(3));
    let mut sessions = vec![just_after, next_second, leased];
    // The rest: requests made over the last 59 minutes, still waiting for approvers.
    let spread = 59 * 60 * 1000 / count as i64;
    sessions.extend((sessions.len()..count).map(|i| pending(if i % 2 == 0 { "billing" } else { "orders" }, now - Duration::minutes(59) + Duration::milliseconds(spread * i as i64))));
    assert!(sessions.iter().all(|s| s.next_action_at().is_some_and(|at| at > now)));
    sessions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_2000_live_sessions_due_reads_only_the_5_that_are_due() {
    let started = Instant::now();
    let table = TestTable::new().await;
    let now = t0() + Duration::hours(6);

    let due = due_sessions(now);
    for s in &due {
        table.store.create(s, &requested(s)).await.unwrap();
    }
    let inserting = Instant::now();
    table.bulk_put(&not_due_sessions(now, LIVE - due.len())).await;
    let inserted_in = inserting.elapsed();

    let querying = Instant::now();
    let batch = table.store.due(now, 100).await.unwrap();
    let queried_in = querying.elapsed();
    let ids: Vec<_> = batch.sessions.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, due.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), "exactly the due sessions, soonest first");
    // One page per shard, and only the due items plus the one that shares `now`'s second.
    assert!(batch.pages <= DUE_SHARDS, "read {} pages for {DUE_SHARDS} shards", batch.pages);
    assert!(batch.items_read <= due.len() as u32 + 3, "examined {} items to find {} due ones", batch.items_read, due.len());

    let first_two = table.store.due(now, 2).await.unwrap();
    assert_eq!(first_two.sessions.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), ids[..2].to_vec());
    assert!(first_two.items_read <= due.len() as u32 + 3);

    let before_any = table.store.due(now - Duration::hours(6), 100).await.unwrap();
    assert!(before_any.sessions.is_empty());
    assert_eq!(before_any.items_read, 0);

    let listing = Instant::now();
    let live = table.store.live().await.unwrap();
    let listed_in = listing.elapsed();
    assert_eq!(live.len(), LIVE);

    table.delete().await;
    eprintln!(
        "due among {LIVE} live: {} pages, {} items read, {queried_in:?}; limit 2: {} pages, {} items; live() {listed_in:?}; bulk insert {inserted_in:?}; whole test {:?}",
        batch.pages,
        batch.items_read,
        first_two.pages,
        first_two.items_read,
        started.elapsed()
    );
}

#[tokio::test]
async fn closed_sessions_are_never_due_and_not_live() {
    let table = TestTable::new().await;
    let now = t0() + Duration::hours(6);
    let mut denied = pending("billing", now - Duration::hours(3));
    let id = denied.id.clone();
    table.store.create(&denied, &requested(&denied)).await.unwrap();
    assert_eq!(table.store.due(now, 10).await.unwrap().sessions.len(), 1);

    denied.apply(Event::Denied).unwrap();
    denied.closed_at = Some(now - Duration::hours(2));
    table.store.update(powerpole::domain::State::Pending, &denied, None).await.unwrap();

    let batch = table.store.due(now, 10).await.unwrap();
    assert!(batch.sessions.is_empty(), "a closed session came back as due");
    assert_eq!(batch.items_read, 0, "a closed session is still in the due index");
    assert!(table.store.live().await.unwrap().is_empty());
    assert!(table.store.get(&id).await.unwrap().unwrap().state.is_closed());
    table.delete().await;
}
