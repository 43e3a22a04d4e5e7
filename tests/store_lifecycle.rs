//! A session's whole life through the store: one audit event per step, in order, that nothing can
//! overwrite. (Where the password may be after a real session: tests/no_password.rs.)

mod store_support;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;

use powerpole::domain::{Actor, Approval, AuditEvent, AuditKind, Event, Outcome, Session, State};
use powerpole::store::dynamo::item::{audit_sk, session_key, session_pk};
use powerpole::store::schema::{DUE_SHARD, NEXT_ACTION_AT, PK, SK, TTL_ATTRIBUTE};
use powerpole::store::{Store, StoreError};
use store_support::{pending, requested, t0, user, TestTable};

/// The steps of a normal life, in order, with the audit event each one writes.
const LIFE: [AuditKind; 9] = [
    AuditKind::Requested,
    AuditKind::Approved,
    AuditKind::ProvisioningStarted,
    AuditKind::Launched,
    AuditKind::Granted,
    AuditKind::HandedOver,
    AuditKind::Warned,
    AuditKind::Expired,
    AuditKind::TornDown,
];

/// Takes a session from request to teardown the way the workflow does: read, change, write with
/// the expected state and an audit event. `password` is what the grants step would have made; it
/// goes only into the hand-over DM, which is not the store's business. Returns the final session.
async fn live_a_full_life(table: &TestTable, password: &str) -> Session {
    let store = &table.store;
    let mut s = pending("billing", t0());
    store.create(&s, &requested(&s)).await.unwrap();
    let system = |kind, at, detail: &str| AuditEvent::ok(kind, Actor::System, at, detail);

    let at = t0() + Duration::minutes(2);
    s.apply(Event::Approved).unwrap();
    s.approvals.push(Approval { approver: user("U0BOB"), at, request: None });
    s.approved_at = Some(at);
    s = store.update(State::Pending, &s, Some(&AuditEvent::ok(AuditKind::Approved, Actor::User(user("U0BOB")), at, "approved"))).await.unwrap();

    let at = at + Duration::seconds(1);
    s.apply(Event::ProvisioningStarted).unwrap();
    s.claim(at, Duration::minutes(5));
    s = store.update(State::Approved, &s, Some(&system(AuditKind::ProvisioningStarted, at, "claimed for 5m"))).await.unwrap();

    let at = at + Duration::seconds(40);
    s.instance_id = Some("i-0123456789abcdef0".into());
    s.private_ip = Some("10.0.1.23".into());
    s = store.update(State::Provisioning, &s, Some(&system(AuditKind::Launched, at, "i-0123456789abcdef0 at 10.0.1.23"))).await.unwrap();

    let at = at + Duration::seconds(2);
    s.account_host = Some("10.0.1.23".into());
    s = store.update(State::Provisioning, &s, Some(&system(AuditKind::Granted, at, "'alice'@'10.0.1.23' with READ on ledger"))).await.unwrap();

    let at = at + Duration::seconds(30);
    let dm = format!("mysql -h billing.cluster-ro -u alice -p'{password}'");
    assert!(dm.contains(password)); // the DM goes to Slack, never to the store
    s.apply(Event::HandedOver).unwrap();
    s.start_clock(at, "10m".parse().unwrap());
    s.lease_until = None;
    s = store.update(State::Provisioning, &s, Some(&system(AuditKind::HandedOver, at, "DM sent with connection details"))).await.unwrap();

    let at = s.warn_at.unwrap();
    s.apply(Event::Warned).unwrap();
    s.warned = true;
    s = store.update(State::Active, &s, Some(&system(AuditKind::Warned, at, "10 minutes left"))).await.unwrap();

    let at = s.expires_at.unwrap();
    s.apply(Event::Expired).unwrap();
    s = store.update(State::Active, &s, Some(&system(AuditKind::Expired, at, "expired"))).await.unwrap();

    let at = at + Duration::seconds(3);
    s.apply(Event::TornDown).unwrap();
    s.closed_at = Some(at);
    store.update(State::TearingDown(Outcome::Expired), &s, Some(&system(AuditKind::TornDown, at, "account dropped, instance terminated"))).await.unwrap()
}

#[tokio::test]
async fn a_full_life_writes_one_audit_event_per_step_in_order() {
    let table = TestTable::new().await;
    let last = live_a_full_life(&table, "s3cr3t-Pa55").await;
    assert_eq!(last.state, State::Closed(Outcome::Expired));
    assert_eq!(last.version, 8);
    assert_eq!(table.store.get(&last.id).await.unwrap(), Some(last.clone()));

    let trail = table.store.audit_trail(&last.id).await.unwrap();
    assert_eq!(trail.iter().map(|r| r.event.kind).collect::<Vec<_>>(), LIFE.to_vec());
    assert_eq!(trail.iter().map(|r| r.seq).collect::<Vec<_>>(), (0..9).collect::<Vec<u64>>());
    assert!(trail.windows(2).all(|w| w[0].event.at <= w[1].event.at), "events out of time order");
    for record in &trail {
        assert_eq!((&record.session_id, &record.target, record.role, &record.requester, record.db_user.as_str()), (&last.id, &last.target, last.role, &last.requester.slack_id, "alice"));
    }
    assert_eq!(trail[0].event.actor, Actor::User(user("U0ALICE")));
    assert_eq!(trail[1].event.actor, Actor::User(user("U0BOB")));

    // Closed: out of the due index, and set to expire after the retention.
    let item = table.client.get_item().table_name(&table.name).set_key(Some(session_key(&last.id))).send().await.unwrap().item.unwrap();
    assert!(!item.contains_key(DUE_SHARD) && !item.contains_key(NEXT_ACTION_AT));
    let ttl = (last.closed_at.unwrap() + Duration::days(400)).timestamp().to_string();
    assert_eq!(item.get(TTL_ATTRIBUTE), Some(&AttributeValue::N(ttl)));
    table.delete().await;
}

#[tokio::test]
async fn an_audit_event_cannot_be_overwritten() {
    let table = TestTable::new().await;
    let last = live_a_full_life(&table, "s3cr3t-Pa55").await;
    let before = table.store.audit_trail(&last.id).await.unwrap();

    // Directly: the same key, with the condition every audit write carries.
    let forged = [(PK, session_pk(&last.id)), (SK, audit_sk(1)), ("event", "denied".to_string())].map(|(k, v)| (k.to_string(), AttributeValue::S(v)));
    let direct = table.client.put_item().table_name(&table.name).set_item(Some(forged.into())).condition_expression("attribute_not_exists(pk)").send().await;
    assert!(matches!(direct.as_ref().map_err(|e| e.as_service_error()), Err(Some(PutItemError::ConditionalCheckFailedException(_)))), "{direct:?}");

    // Through the store: recreating the session, or writing from a stale read.
    let mut original = pending("billing", t0());
    original.id = last.id.clone();
    assert_eq!(table.store.create(&original, &requested(&original)).await, Err(StoreError::AlreadyExists(last.id.clone())));
    let mut stale = last.clone();
    stale.version = 3;
    stale.state = State::Provisioning;
    let overwrite = AuditEvent::ok(AuditKind::Denied, Actor::User(user("U0MALLORY")), t0(), "rewriting history");
    assert_eq!(table.store.update(State::Provisioning, &stale, Some(&overwrite)).await, Err(StoreError::Conflict(last.id.clone())));

    // A stray item in the next slot (written outside powerpole) is refused, not replaced.
    let stray = [(PK, session_pk(&last.id)), (SK, audit_sk(9)), ("event", "stray".to_string())].map(|(k, v)| (k.to_string(), AttributeValue::S(v)));
    table.client.put_item().table_name(&table.name).set_item(Some(stray.into())).send().await.unwrap();
    let next = AuditEvent::ok(AuditKind::Alerted, Actor::System, t0() + Duration::hours(3), "late note");
    let refused = table.store.update(last.state, &last, Some(&next)).await;
    assert!(matches!(&refused, Err(StoreError::Corrupt(m)) if m.contains("audit event 9")), "{refused:?}");
    assert_eq!(table.store.get(&last.id).await.unwrap(), Some(last.clone()), "the session changed although its audit event was refused");

    table.client.delete_item().table_name(&table.name).set_key(Some([(PK, session_pk(&last.id)), (SK, audit_sk(9))].map(|(k, v)| (k.to_string(), AttributeValue::S(v))).into())).send().await.unwrap();
    assert_eq!(table.store.audit_trail(&last.id).await.unwrap(), before, "the trail changed");
    table.delete().await;
}

