//! The DynamoDB table, defined once. `powerpole table create` builds it from this, the Terraform
//! in `infra/` must match it (a test compares them), and the store reads and writes only these names.
//!
//! One table holds three item kinds:
//! - the session itself: `pk = SESSION#<id>`, `sk = SESSION`;
//! - its audit events, in the session's partition: `pk = SESSION#<id>`, `sk = AUDIT#<seq, zero-padded
//!   to 10>`, written once, never changed;
//! - once-markers for deduplicating Slack retries and repeated clicks: `pk = ONCE#<key>`, `sk = ONCE`.
//!
//! Only session items carry the index attributes, so nothing else ever appears in an index.
//! The layout of each item is in [`crate::store::dynamo::item`].

use serde::Serialize;

/// Partition key of every item.
pub const PK: &str = "pk";
/// Sort key of every item.
pub const SK: &str = "sk";
/// Time-to-live attribute (epoch seconds), set when a session closes and on every audit event.
pub const TTL_ATTRIBUTE: &str = "ttl";

/// Sparse index of sessions with work due. `due_shard` spreads live sessions over
/// [`DUE_SHARDS`] partitions so none becomes hot; it and `next_action_at` are removed on close.
pub const DUE_INDEX: &str = "due";
pub const DUE_SHARD: &str = "due_shard";
pub const NEXT_ACTION_AT: &str = "next_action_at";
/// How many `due_shard` values exist (`DUE#0` .. `DUE#{DUE_SHARDS-1}`).
pub const DUE_SHARDS: u32 = 8;

/// "My sessions": by requester's Slack user id, newest first by creation time.
pub const REQUESTER_INDEX: &str = "by_requester";
pub const REQUESTER_KEY: &str = "requester_key";
/// A target's sessions, by creation time.
pub const TARGET_INDEX: &str = "by_target";
pub const TARGET_KEY: &str = "target_key";
pub const CREATED_AT: &str = "created_at";

/// DynamoDB scalar attribute types used by keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KeyType {
    /// String
    S,
    /// Number
    N,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyAttribute {
    pub name: &'static str,
    pub kind: KeyType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexDefinition {
    pub name: &'static str,
    pub hash_key: KeyAttribute,
    pub range_key: KeyAttribute,
    /// Every index projects all attributes.
    pub projection: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDefinition {
    pub hash_key: KeyAttribute,
    pub range_key: KeyAttribute,
    pub global_secondary_indexes: Vec<IndexDefinition>,
    pub ttl_attribute: &'static str,
    pub billing_mode: &'static str,
}

/// The table every deployment uses (its name comes from config).
pub fn table_definition() -> TableDefinition {
    let s = |name| KeyAttribute { name, kind: KeyType::S };
    let n = |name| KeyAttribute { name, kind: KeyType::N };
    TableDefinition {
        hash_key: s(PK),
        range_key: s(SK),
        global_secondary_indexes: vec![
            IndexDefinition { name: DUE_INDEX, hash_key: s(DUE_SHARD), range_key: n(NEXT_ACTION_AT), projection: "ALL" },
            IndexDefinition { name: REQUESTER_INDEX, hash_key: s(REQUESTER_KEY), range_key: s(CREATED_AT), projection: "ALL" },
            IndexDefinition { name: TARGET_INDEX, hash_key: s(TARGET_KEY), range_key: s(CREATED_AT), projection: "ALL" },
        ],
        ttl_attribute: TTL_ATTRIBUTE,
        billing_mode: "PAY_PER_REQUEST",
    }
}
