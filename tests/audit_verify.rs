//! The tamper-evident trail against moto: the real store writes a session's audit events, each
//! chained onto the one before it (`prev_hash`, `hash`); the export's re-export copies what the
//! Object Lock bucket lacks (and nothing twice); then someone with write access to the table
//! changes one event, removes another and inserts a third (with a correctly recomputed hash, as
//! anyone could), and `audit verify` names each of them, both through the library and through
//! `powerpole audit verify` as an operator runs it.

mod store_support;

use std::collections::HashMap;
use std::process::Command;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::types::{DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule};
use chrono::{Duration, Utc};
use powerpole::domain::{Actor, AuditEvent, AuditKind, Event, SessionId};
use powerpole::export::verify::verify;
use powerpole::export::{redrive, Exported, S3Export};
use powerpole::store::dynamo::chain::{hash_of, plain, GENESIS, HASH, PREV_HASH};
use powerpole::store::Store;
use serde_json::Value;
use store_support::{pending, requested, TestTable};

/// A bucket with Object Lock (compliance mode, one day), as export.tf makes it.
async fn locked_bucket(aws: &aws_config::SdkConfig) -> String {
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(aws).force_path_style(true).build());
    let bucket = format!("powerpole-verify-{}", SessionId::random().as_str().replace('_', "-"));
    s3.create_bucket().bucket(&bucket).object_lock_enabled_for_bucket(true).send().await.expect("moto creates a bucket with Object Lock");
    let retention = DefaultRetention::builder().mode(ObjectLockRetentionMode::Compliance).days(1).build();
    let lock = ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).rule(ObjectLockRule::builder().default_retention(retention).build()).build();
    s3.put_object_lock_configuration().bucket(&bucket).object_lock_configuration(lock).send().await.expect("the default retention");
    bucket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_changed_a_removed_and_an_inserted_event() {
    let table = TestTable::new().await;
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;

    // A real trail: requested, approved, provisioning, handed over, ended (five events).
    let session = pending("billing", Utc::now());
    table.store.create(&session, &requested(&session)).await.expect("created");
    let mut read = session.clone();
    for (event, kind, detail) in [
        (Event::Approved, AuditKind::Approved, "approval 1 of 1"),
        (Event::ProvisioningStarted, AuditKind::ProvisioningStarted, "launching"),
        (Event::HandedOver, AuditKind::HandedOver, "handed over"),
    ] {
        let mut next = read.clone();
        next.apply(event).unwrap();
        read = table.store.update(read.state, &next, Some(&AuditEvent::ok(kind, Actor::System, Utc::now(), detail))).await.expect("updated");
    }
    // A write with no event (a lease) leaves a gap in the sequence, not in the chain.
    read = table.store.update(read.state, &read.clone(), None).await.expect("leased");
    let mut next = read.clone();
    next.apply(Event::EndedByRequester).unwrap();
    table.store.update(read.state, &next, Some(&AuditEvent::ok(AuditKind::Ended, Actor::System, Utc::now(), "ended early"))).await.expect("ended");

    // The chain as the store wrote it: the first links to the genesis hash, each next to the one before.
    let items = table.store.audit_items(&session.id).await.expect("the trail");
    assert_eq!(items.len(), 5);
    assert_eq!(items[0][PREV_HASH], GENESIS);
    for pair in items.windows(2) {
        assert_eq!(pair[1][PREV_HASH], pair[0][HASH], "each event names the hash of the one before it");
    }
    for item in &items {
        assert_eq!(item[HASH].as_str().unwrap(), hash_of(item), "each hash covers its event");
    }

    // The re-export: the bucket lacks everything, gets it once; a second run writes nothing.
    let bucket = locked_bucket(&aws).await;
    let export = S3Export::path_style(&aws, &bucket);
    let since = Utc::now() - Duration::hours(72);
    assert_eq!(redrive(&table.store, &export, since).await.expect("re-exported"), Exported { exported: 5, already_exported: 0 });
    assert_eq!(redrive(&table.store, &export, since).await.expect("again"), Exported { exported: 0, already_exported: 5 });
    let prefix = format!("audit/{}/", session.id.as_str());
    let locked = export.locked_copy(&prefix).await.expect("the locked copy");
    assert_eq!(locked.objects.len(), 5);
    let clean = verify(&items, &locked, Utc::now());
    assert_eq!(clean.findings, vec![], "an untouched trail verifies");

    // Tampering with write access to the table.
    let seqs: Vec<String> = items.iter().map(|i| i["sk"].as_str().unwrap().trim_start_matches("AUDIT#").to_string()).collect();
    let raw = |item: &serde_json::Map<String, Value>| -> HashMap<String, AttributeValue> {
        item.iter()
            .map(|(k, v)| {
                let v = v.as_str().unwrap().to_string();
                let number = ["seq", "ttl"].contains(&k.as_str());
                (k.clone(), if number { AttributeValue::N(v) } else { AttributeValue::S(v) })
            })
            .collect()
    };
    // 1. The approval's detail rewritten (hash left as it was).
    let mut changed = items[1].clone();
    changed.insert("detail".into(), Value::String("approved by the CTO".into()));
    changed.insert("actor".into(), Value::String("U0CTO".into()));
    table.client.put_item().table_name(&table.name).set_item(Some(raw(&changed))).send().await.expect("changed");
    // 2. The hand-over removed.
    table.client.delete_item().table_name(&table.name).key("pk", AttributeValue::S(items[3]["pk"].as_str().unwrap().into())).key("sk", AttributeValue::S(items[3]["sk"].as_str().unwrap().into())).send().await.expect("removed");
    // 3. An event inserted after the last one, chained and hashed as the store would.
    let mut inserted = items[4].clone();
    let forged_seq = format!("{:010}", seqs[4].parse::<u64>().unwrap() + 1);
    inserted.insert("sk".into(), Value::String(format!("AUDIT#{forged_seq}")));
    inserted.insert("seq".into(), Value::String(forged_seq.trim_start_matches('0').to_string()));
    inserted.insert("event".into(), Value::String("approved".into()));
    inserted.insert(PREV_HASH.into(), items[4][HASH].clone());
    let h = hash_of(&inserted);
    inserted.insert(HASH.into(), Value::String(h));
    table.client.put_item().table_name(&table.name).set_item(Some(raw(&inserted))).send().await.expect("inserted");
    assert_eq!(hash_of(&plain(&raw(&inserted))), inserted[HASH].as_str().unwrap(), "the forged event is self-consistent");

    let tampered = table.store.audit_items(&session.id).await.expect("the trail");
    let found = verify(&tampered, &export.locked_copy(&prefix).await.unwrap(), Utc::now()).findings;
    let kinds: Vec<(String, &str)> = found.iter().map(|f| (f.seq.clone(), f.kind())).collect();
    assert!(kinds.contains(&(seqs[1].clone(), "changed")), "the changed approval is named: {kinds:?}");
    assert!(kinds.contains(&(seqs[3].clone(), "removed")), "the removed hand-over is named: {kinds:?}");
    assert!(kinds.contains(&(forged_seq.clone(), "added")), "the inserted event is named: {kinds:?}");
    let changed_line = found.iter().find(|f| f.seq == seqs[1] && f.kind() == "changed").unwrap().to_string();
    assert!(changed_line.contains("`actor`") && changed_line.contains("`detail`"), "it says what differs: {changed_line}");
    for untouched in [&seqs[0], &seqs[2], &seqs[4]] {
        assert!(!kinds.iter().any(|(seq, _)| seq == untouched), "{untouched} is not named: {kinds:?}");
    }

    // As the operator runs it: each named, exit 1.
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("powerpole.example.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_powerpole"))
        .args(["audit", "verify", "--config"])
        .arg(&config)
        .args(["--bucket", &bucket, "--session", session.id.as_str()])
        .env("POWERPOLE_STORE__TABLE", &table.name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for (seq, kind) in [(&seqs[1], "changed"), (&seqs[3], "removed"), (&forged_seq, "added")] {
        assert!(stdout.lines().any(|l| l.starts_with(&format!("{kind}: session {} event {seq}", session.id.as_str()))), "{kind} {seq} in:\n{stdout}");
    }
    table.delete().await;
}
