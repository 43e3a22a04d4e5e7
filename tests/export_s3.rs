//! The audit export against moto: audit events written by the real store to a table on moto are
//! delivered to the export handler as Lambda delivers a DynamoDB stream batch; each is written
//! once to a bucket with Object Lock in compliance mode; the same batch delivered again changes
//! nothing; and the exported version cannot be deleted.

mod store_support;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::types::{DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule};
use chrono::Utc;
use powerpole::domain::{Actor, AuditEvent, AuditKind, Event, SessionId};
use powerpole::export::{handle, Exported, S3Export};
use powerpole::store::Store;
use serde_json::{json, Value};
use store_support::{pending, requested, TestTable};

/// An attribute value as DynamoDB Streams writes it in the JSON Lambda receives.
fn stream_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::M(m) => json!({ "M": image(m) }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(stream_json).collect::<Vec<_>>() }),
        other => panic!("the store writes no {other:?}"),
    }
}

fn image(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), stream_json(v))).collect())
}

/// One stream record for an inserted item, shaped as Lambda delivers it.
fn insert_record(table: &str, n: usize, item: &HashMap<String, AttributeValue>) -> Value {
    let keys: HashMap<String, AttributeValue> = item.iter().filter(|(k, _)| *k == "pk" || *k == "sk").map(|(k, v)| (k.clone(), v.clone())).collect();
    json!({
        "eventID": format!("e{n}"),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": Utc::now().timestamp(),
            "Keys": image(&keys),
            "NewImage": image(item),
            "SequenceNumber": format!("{:021}", 100 + n),
            "SizeBytes": 512,
            "StreamViewType": "NEW_IMAGE"
        },
        "eventSourceARN": format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-12-01T00:00:00.000")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_audit_event_is_exported_once_to_a_locked_bucket() {
    // The trail: a session requested and approved, through the real store on moto.
    let table = TestTable::new().await;
    let session = pending("billing", Utc::now());
    table.store.create(&session, &requested(&session)).await.expect("created");
    let mut next = session.clone();
    next.apply(Event::Approved).unwrap();
    table.store.update(session.state, &next, Some(&AuditEvent::ok(AuditKind::Approved, Actor::System, Utc::now(), "approval 1 of 1"))).await.expect("approved");
    // Every item as the stream would deliver it: the session's inserts too (they are skipped).
    let items = table.scan_all().await;
    assert_eq!(items.len(), 3, "one session and two audit events");
    let payload = json!({ "Records": items.iter().enumerate().map(|(n, i)| insert_record(&table.name, n, i)).collect::<Vec<_>>() });

    // A bucket with Object Lock, compliance mode, one day.
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&aws).force_path_style(true).build());
    let bucket = format!("powerpole-audit-{}", SessionId::random().as_str().replace('_', "-"));
    s3.create_bucket().bucket(&bucket).object_lock_enabled_for_bucket(true).send().await.expect("moto creates a bucket with Object Lock");
    let retention = DefaultRetention::builder().mode(ObjectLockRetentionMode::Compliance).days(1).build();
    let lock = ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).rule(ObjectLockRule::builder().default_retention(retention).build()).build();
    s3.put_object_lock_configuration().bucket(&bucket).object_lock_configuration(lock).send().await.expect("the default retention");
    let export = S3Export::path_style(&aws, &bucket);

    // First delivery: both audit events written, under their identity, locked.
    assert_eq!(handle(&export, &payload).await.expect("exported"), Exported { exported: 2, already_exported: 0 });
    let versions = |s3: aws_sdk_s3::Client, bucket: String| async move {
        let listed = s3.list_object_versions().bucket(&bucket).send().await.expect("versions");
        let mut v: Vec<(String, String)> = listed.versions().iter().map(|v| (v.key().unwrap_or_default().to_string(), v.version_id().unwrap_or_default().to_string())).collect();
        v.sort();
        v
    };
    let first = versions(s3.clone(), bucket.clone()).await;
    let id = session.id.as_str();
    assert_eq!(first.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), [format!("audit/{id}/0000000000.json"), format!("audit/{id}/0000000001.json")]);
    let head = s3.head_object().bucket(&bucket).key(&first[1].0).send().await.expect("head");
    assert_eq!(head.object_lock_mode(), Some(&aws_sdk_s3::types::ObjectLockMode::Compliance));
    assert!(head.object_lock_retain_until_date().is_some());
    let body = s3.get_object().bucket(&bucket).key(&first[1].0).send().await.expect("get").body.collect().await.expect("body").into_bytes();
    let exported: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(exported["event"], "approved");
    assert_eq!(exported["session_id"], id);

    // The same batch again (a stream redelivery): nothing written, nothing changed.
    assert_eq!(handle(&export, &payload).await.expect("redelivered"), Exported { exported: 0, already_exported: 2 });
    assert_eq!(versions(s3.clone(), bucket.clone()).await, first, "no new version of any object");
    // A different body under the same key is refused just the same: the first write stands.
    let mut forged = payload.clone();
    forged["Records"].as_array_mut().unwrap().iter_mut().for_each(|r| {
        if r["dynamodb"]["NewImage"]["event"]["S"] == "approved" {
            r["dynamodb"]["NewImage"]["event"] = json!({"S": "denied"});
        }
    });
    assert_eq!(handle(&export, &forged).await.expect("redelivered"), Exported { exported: 0, already_exported: 2 });
    let body = s3.get_object().bucket(&bucket).key(&first[1].0).send().await.expect("get").body.collect().await.expect("body").into_bytes();
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["event"], "approved");

    // Compliance mode: the exported version cannot be deleted.
    let deleted = s3.delete_object().bucket(&bucket).key(&first[1].0).version_id(&first[1].1).send().await;
    assert!(deleted.is_err(), "a locked version must not be deletable: {deleted:?}");
    table.delete().await;
}
