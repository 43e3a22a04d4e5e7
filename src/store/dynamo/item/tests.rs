use chrono::TimeZone;

use super::*;
use crate::domain::{AuditKind, DbUsername, Event, Outcome, Requester, Role, UsernamePolicy};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn retention() -> Retention {
    Retention { session: Duration::days(400), audit: Duration::days(500) }
}

fn session() -> Session {
    let requester = Requester {
        slack_id: SlackUserId::parse("U0ALICE").unwrap(),
        email: "alice@example.com".into(),
        db_user: DbUsername::from_slack_email("alice@example.com", &UsernamePolicy { home_domains: vec!["example.com".into()] }).unwrap(),
        tz: Some("Europe/Paris".into()),
    };
    let created = t0() + Duration::nanoseconds(123_456_789);
    Session::new(SessionId::parse("pp-7k2m9xq4ab").unwrap(), requester, TargetName::parse("billing").unwrap(), Role::Dml, "2h".parse().unwrap(), "INC-42: fix the ledger".into(), created, "1h".parse().unwrap())
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn num(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

#[test]
fn a_pending_session_round_trips_and_is_in_the_due_index() {
    let s = session();
    let item = session_item(&s, &retention()).unwrap();
    assert_eq!(parse_session(&item).unwrap(), s);
    assert_eq!(text(&item, PK), Some("SESSION#pp-7k2m9xq4ab"));
    assert_eq!(text(&item, SK), Some("SESSION"));
    assert_eq!(text(&item, STATE), Some("pending"));
    assert_eq!(item.get(OUTCOME), None);
    assert_eq!(num(&item, VERSION), Some(0));
    assert_eq!(text(&item, REQUESTER_KEY), Some("U0ALICE"));
    assert_eq!(text(&item, TARGET_KEY), Some("billing"));
    assert_eq!(text(&item, CREATED_AT), Some("2026-03-01T09:00:00.123456Z"));
    assert_eq!(text(&item, DUE_SHARD), Some(shard_key(shard_of(&s.id)).as_str()));
    // Rounded down to whole seconds: the due query re-checks the exact time.
    assert_eq!(num(&item, NEXT_ACTION_AT), Some((t0() + Duration::hours(1)).timestamp()));
    assert_eq!(item.get(TTL_ATTRIBUTE), None, "a live session must not expire");
}

#[test]
fn a_closed_session_leaves_the_due_index_and_gets_a_ttl() {
    let mut s = session();
    s.apply(Event::Denied).unwrap();
    let closed = t0() + Duration::minutes(5);
    s.closed_at = Some(closed);
    s.version = 3;
    let item = session_item(&s, &retention()).unwrap();
    assert_eq!(parse_session(&item).unwrap(), s);
    assert_eq!(text(&item, STATE), Some("closed"));
    assert_eq!(text(&item, OUTCOME), Some("denied"));
    assert_eq!(num(&item, VERSION), Some(3));
    assert_eq!(item.get(DUE_SHARD), None);
    assert_eq!(item.get(NEXT_ACTION_AT), None);
    assert_eq!(num(&item, TTL_ATTRIBUTE), Some((closed + Duration::days(400)).timestamp()));
}

#[test]
fn tearing_down_keeps_its_outcome_and_stays_due() {
    let mut s = session();
    for e in [Event::Approved, Event::ProvisioningStarted, Event::HandedOver, Event::Expired] {
        s.apply(e).unwrap();
    }
    assert_eq!(s.state, State::TearingDown(Outcome::Expired));
    let item = session_item(&s, &retention()).unwrap();
    assert_eq!(text(&item, STATE), Some("tearing_down"));
    assert_eq!(text(&item, OUTCOME), Some("expired"));
    assert!(item.contains_key(NEXT_ACTION_AT));
    assert_eq!(parse_session(&item).unwrap().state, s.state);
}

#[test]
fn created_at_strings_sort_like_the_times() {
    let times = [t0(), t0() + Duration::microseconds(1), t0() + Duration::seconds(9), t0() + Duration::days(4000)];
    let strings: Vec<String> = times.iter().map(|t| sortable_time(*t)).collect();
    assert!(strings.windows(2).all(|w| w[0] < w[1] && w[0].len() == w[1].len()), "{strings:?}");
}

#[test]
fn audit_keys_sort_in_trail_order() {
    assert_eq!(audit_sk(7), "AUDIT#0000000007");
    let keys: Vec<String> = [0, 9, 10, 11, 99, 1000, 4_000_000_000].into_iter().map(audit_sk).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
}

#[test]
fn an_audit_event_round_trips_with_its_context() {
    let s = session();
    let approver = SlackUserId::parse("U0BOB").unwrap();
    let event = AuditEvent::ok(AuditKind::Approved, Actor::User(approver.clone()), t0(), "looks fine");
    let item = audit_item(&s, 1, &event, &retention()).unwrap();
    assert_eq!(text(&item, PK), Some("SESSION#pp-7k2m9xq4ab"));
    assert_eq!(text(&item, SK), Some("AUDIT#0000000001"));
    assert_eq!(text(&item, "event"), Some("approved"));
    assert_eq!(text(&item, "actor"), Some("U0BOB"));
    assert_eq!(text(&item, "result"), Some("ok"));
    assert_eq!(num(&item, TTL_ATTRIBUTE), Some((t0() + Duration::days(500)).timestamp()));
    for index_attribute in [DUE_SHARD, NEXT_ACTION_AT, REQUESTER_KEY, TARGET_KEY, CREATED_AT] {
        assert!(!item.contains_key(index_attribute), "audit items must stay out of the `{index_attribute}` index");
    }
    let record = parse_audit(&item).unwrap();
    assert_eq!(record, AuditRecord { session_id: s.id.clone(), seq: 1, target: s.target.clone(), role: Role::Dml, requester: s.requester.slack_id.clone(), db_user: "alice".into(), event });
}

#[test]
fn a_failed_audit_event_keeps_its_cause() {
    let event = AuditEvent::failed(AuditKind::Failed, Actor::System, t0(), "SSM agent never came online");
    let item = audit_item(&session(), 4, &event, &retention()).unwrap();
    assert_eq!(text(&item, "actor"), Some("system"));
    assert_eq!(text(&item, "result"), Some("failed: SSM agent never came online"));
    assert_eq!(parse_audit(&item).unwrap().event, event);
}

#[test]
fn an_item_whose_attributes_disagree_with_its_data_is_refused() {
    let good = session_item(&session(), &retention()).unwrap();

    let mut item = good.clone();
    item.insert(STATE.into(), s("active"));
    let err = parse_session(&item).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("SESSION#pp-7k2m9xq4ab/SESSION")), "{err}");

    let mut item = good.clone();
    item.insert(VERSION.into(), n(9));
    assert!(matches!(parse_session(&item), Err(StoreError::Corrupt(_))));

    let mut item = good.clone();
    item.insert(DATA.into(), s("{not json"));
    assert!(matches!(parse_session(&item), Err(StoreError::Corrupt(_))));

    let mut item = good;
    item.remove(DATA);
    assert!(matches!(parse_session(&item), Err(StoreError::Corrupt(m)) if m.contains("`data` is missing")));
}

#[test]
fn once_keys_are_bounded_in_size() {
    let short = once_item("Ev012345", t0());
    assert_eq!(text(&short, PK), Some("ONCE#Ev012345"));
    assert_eq!(text(&short, SK), Some("ONCE"));
    assert_eq!(num(&short, TTL_ATTRIBUTE), Some(t0().timestamp()));
    let long = "x".repeat(5000);
    let pk = once_pk(&long);
    assert!(pk.starts_with("ONCE#sha256:") && pk.len() < 100, "{pk}");
    assert_ne!(pk, once_pk(&"y".repeat(5000)));
}

#[test]
fn nothing_secret_is_in_a_session_item() {
    let item = session_item(&session(), &retention()).unwrap();
    let everything = format!("{item:?}").to_ascii_lowercase();
    for word in ["password", "token", "secret"] {
        assert!(!everything.contains(word), "a session item mentions `{word}`: {everything}");
    }
}
