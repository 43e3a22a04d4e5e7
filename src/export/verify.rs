//! `powerpole audit verify`: the trail in DynamoDB checked against itself (each event's hash, and
//! the chain of `prev_hash` links, [`crate::store::dynamo::chain`]) and against the locked copy in
//! S3 ([`super::S3Export::locked_copy`], each object's oldest version). Every event changed,
//! removed or added is named, with what differs.
//!
//! The chain alone cannot catch someone who rewrites it whole (nothing in it is secret); the
//! locked copy alone cannot catch an event added after the export; together they do: an event
//! added in DynamoDB has no locked copy, one removed has a locked copy and nothing in DynamoDB,
//! one changed differs from its locked copy (and, unless its hash was recomputed, from its hash).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{object_key, LockedCopy};
use crate::store::dynamo::chain::{hash_of, link_of, GENESIS, HASH, PREV_HASH};
use crate::store::schema::TTL_ATTRIBUTE;

/// What is wrong with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// In DynamoDB, different from its locked copy.
    Changed(String),
    /// In the locked copy, not in DynamoDB.
    Removed,
    /// In DynamoDB, with no locked copy.
    Added,
    /// In DynamoDB, its content does not match its own hash.
    HashMismatch,
    /// In DynamoDB, its `prev_hash` is not the hash of the event before it.
    ChainBroken,
    /// The key has more than one version in the bucket: something put a new one over it.
    Overwritten(usize),
}

/// One event's problem: `audit/<session>/<seq>.json` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub session: String,
    pub seq: String,
    pub event: String,
    pub problem: Problem,
}

impl Finding {
    /// `changed`, `removed`, `added`, `hash`, `chain` or `overwritten`.
    pub fn kind(&self) -> &'static str {
        match self.problem {
            Problem::Changed(_) => "changed",
            Problem::Removed => "removed",
            Problem::Added => "added",
            Problem::HashMismatch => "hash",
            Problem::ChainBroken => "chain",
            Problem::Overwritten(_) => "overwritten",
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = format!("session {} event {} ({})", self.session, self.seq, self.event);
        match &self.problem {
            Problem::Changed(fields) => write!(f, "changed: {what}: {fields} differ from the locked copy"),
            Problem::Removed => write!(f, "removed: {what}: in the locked copy, not in DynamoDB"),
            Problem::Added => write!(f, "added: {what}: in DynamoDB, not in the locked copy (written outside powerpole, or not exported yet: the export re-exports within the hour)"),
            Problem::HashMismatch => write!(f, "changed: {what}: its content in DynamoDB no longer matches its hash"),
            Problem::ChainBroken => write!(f, "chain: {what}: its prev_hash is not the hash of the event before it in DynamoDB (an event was removed before it, or it was inserted)"),
            Problem::Overwritten(n) => write!(f, "overwritten: {what}: {n} versions in the bucket; the oldest (locked) one is compared"),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Events compared (in DynamoDB or in the locked copy).
    pub events: usize,
    /// Locked events whose `ttl` has passed: the table has forgotten them, as it should.
    pub expired: usize,
    pub findings: Vec<Finding>,
}

/// Compares the audit items read from DynamoDB (plain JSON, any order, any sessions) with the
/// locked copy. `now` decides which locked events the table may have let expire.
pub fn verify(dynamo: &[Map<String, Value>], locked: &LockedCopy, now: DateTime<Utc>) -> Verdict {
    let mut verdict = Verdict::default();
    let mut by_key: BTreeMap<String, &Map<String, Value>> = BTreeMap::new();
    for item in dynamo {
        match object_key(item) {
            Ok(key) => {
                by_key.insert(key, item);
            }
            Err(problem) => verdict.findings.push(Finding { session: "?".into(), seq: "?".into(), event: problem, problem: Problem::Added }),
        }
    }
    let keys: BTreeSet<&String> = by_key.keys().chain(locked.objects.keys()).collect();
    verdict.events = keys.len();
    let name = |key: &str| -> (String, String) {
        let rest = key.strip_prefix("audit/").unwrap_or(key).trim_end_matches(".json");
        let (session, seq) = rest.split_once('/').unwrap_or((rest, "?"));
        (session.to_string(), seq.to_string())
    };
    let event_of = |item: &Map<String, Value>| item.get("event").and_then(Value::as_str).unwrap_or("?").to_string();
    let mut previous: Option<(String, String)> = None; // (session, link of the last event)
    for key in keys {
        let (session, seq) = name(key);
        let finding = |event: String, problem: Problem| Finding { session: session.clone(), seq: seq.clone(), event, problem };
        // Keys sort by session, then by zero-padded sequence: the chain order.
        let expected_prev = match &previous {
            Some((s, link)) if *s == session => link.clone(),
            _ => GENESIS.to_string(),
        };
        match (by_key.get(key), locked.objects.get(key)) {
            (Some(item), copy) => {
                if let Some(stored) = item.get(HASH).and_then(Value::as_str) {
                    if hash_of(item) != stored {
                        verdict.findings.push(finding(event_of(item), Problem::HashMismatch));
                    }
                }
                if let Some(prev) = item.get(PREV_HASH).and_then(Value::as_str) {
                    if prev != expected_prev {
                        verdict.findings.push(finding(event_of(item), Problem::ChainBroken));
                    }
                }
                match copy {
                    None => verdict.findings.push(finding(event_of(item), Problem::Added)),
                    Some(copy) if copy != *item => verdict.findings.push(finding(event_of(copy), Problem::Changed(differences(item, copy)))),
                    Some(_) => {}
                }
                previous = Some((session.clone(), link_of(item)));
            }
            (None, Some(copy)) => {
                let expired = copy.get(TTL_ATTRIBUTE).and_then(Value::as_str).and_then(|t| t.parse::<i64>().ok()).is_some_and(|ttl| ttl <= now.timestamp());
                if expired {
                    verdict.expired += 1;
                } else {
                    verdict.findings.push(finding(event_of(copy), Problem::Removed));
                }
                // The chain goes on from the locked event: the next one must still link to it.
                previous = Some((session.clone(), link_of(copy)));
            }
            (None, None) => {}
        }
        if let Some(&n) = locked.versions.get(key).filter(|&&n| n > 1) {
            let event = locked.objects.get(key).map(event_of).unwrap_or_default();
            verdict.findings.push(finding(event, Problem::Overwritten(n)));
        }
    }
    verdict
}

/// The attributes in which two versions of an event differ, by name.
fn differences(a: &Map<String, Value>, b: &Map<String, Value>) -> String {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).collect();
    names.into_iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A chained trail of `n` events of one session, as the store writes it.
    fn trail(session: &str, n: usize) -> Vec<Map<String, Value>> {
        let mut prev = GENESIS.to_string();
        (0..n)
            .map(|i| {
                let mut item = json!({"pk": format!("SESSION#{session}"), "sk": format!("AUDIT#{i:010}"), "kind": "audit", "event": format!("e{i}"), "ttl": "4102444800"}).as_object().unwrap().clone();
                item.insert(PREV_HASH.into(), json!(prev));
                let h = hash_of(&item);
                item.insert(HASH.into(), json!(h.clone()));
                prev = h;
                item
            })
            .collect()
    }

    fn locked(items: &[Map<String, Value>]) -> LockedCopy {
        LockedCopy { objects: items.iter().map(|i| (object_key(i).unwrap(), i.clone())).collect(), versions: items.iter().map(|i| (object_key(i).unwrap(), 1)).collect() }
    }

    #[test]
    fn an_untouched_trail_verifies() {
        let items = trail("pp-a", 4);
        let verdict = verify(&items, &locked(&items), Utc::now());
        assert_eq!(verdict.findings, vec![]);
        assert_eq!(verdict.events, 4);
    }

    #[test]
    fn a_changed_a_removed_and_an_added_event_are_each_named() {
        let items = trail("pp-a", 5);
        let copy = locked(&items);
        let mut table = items.clone();
        table[1].insert("detail".into(), json!("nothing to see")); // changed, hash left as it was
        table.remove(3); // removed
        let mut forged = trail("pp-a", 7).pop().unwrap(); // added at the end, hash recomputed
        forged.insert(PREV_HASH.into(), json!(link_of(&table[3])));
        let h = hash_of(&forged);
        forged.insert(HASH.into(), json!(h));
        table.push(forged);
        let kinds: Vec<(String, &str)> = verify(&table, &copy, Utc::now()).findings.iter().map(|f| (f.seq.clone(), f.kind())).collect();
        assert!(kinds.contains(&("0000000001".into(), "changed")), "{kinds:?}");
        assert!(kinds.contains(&("0000000001".into(), "hash")), "{kinds:?}");
        assert!(kinds.contains(&("0000000003".into(), "removed")), "{kinds:?}");
        assert!(kinds.contains(&("0000000006".into(), "added")), "{kinds:?}");
        assert!(!kinds.iter().any(|(seq, _)| seq == "0000000000" || seq == "0000000002"), "untouched events are not named: {kinds:?}");
    }

    #[test]
    fn an_event_the_table_let_expire_is_not_a_removal() {
        let mut items = trail("pp-a", 2);
        items[0].insert("ttl".into(), json!("1000"));
        let copy = locked(&items);
        let verdict = verify(&items[1..], &copy, Utc::now());
        assert_eq!((verdict.findings.clone(), verdict.expired), (vec![], 1), "{:?}", verdict.findings);
    }
}
