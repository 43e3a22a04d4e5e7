//! Every read the store makes: a key lookup or a Query on the table or an index, never a Scan.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use chrono::{DateTime, Utc};
use futures::future::try_join_all;

use super::errors::unavailable;
use super::item::{n, parse_audit, parse_session, s, session_key, session_pk, sortable_time, Item, AUDIT_SK_PREFIX};
use super::shard::all_shard_keys;
use super::DynamoStore;
use crate::domain::{Session, SessionId, SlackUserId, TargetName};
use crate::store::schema::{CREATED_AT, DUE_INDEX, DUE_SHARD, NEXT_ACTION_AT, PK, REQUESTER_INDEX, REQUESTER_KEY, SK, TARGET_INDEX, TARGET_KEY};
use crate::store::{AuditRecord, DueBatch, StoreError};

/// The most items asked for in one page; DynamoDB also stops a page at 1 MB.
const MAX_PAGE: usize = 500;

pub async fn get(store: &DynamoStore, id: &SessionId) -> Result<Option<Session>, StoreError> {
    let out = store
        .client
        .get_item()
        .table_name(&store.table)
        .set_key(Some(session_key(id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| unavailable(&store.table, "reading a session", &e))?;
    out.item().map(parse_session).transpose()
}

/// Reads each shard of the due index from its soonest entry up to `now`, at most `limit` per shard,
/// and keeps the soonest `limit` overall.
///
/// The index holds whole seconds rounded down, so the key condition uses `now` rounded down and
/// each session is checked against the exact `now`: nothing is returned early, and the few that
/// share `now`'s second but are later are read and dropped. The index is eventually consistent, so
/// a session may come back a moment after it changed; the version condition on the caller's next
/// write turns that into a [`StoreError::Conflict`], never a double action.
pub async fn due(store: &DynamoStore, now: DateTime<Utc>, limit: usize) -> Result<DueBatch, StoreError> {
    if limit == 0 {
        return Ok(DueBatch::default());
    }
    let shards = all_shard_keys().map(|shard| {
        let query = store
            .client
            .query()
            .table_name(&store.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("#shard = :shard AND #at <= :now")
            .expression_attribute_names("#shard", DUE_SHARD)
            .expression_attribute_names("#at", NEXT_ACTION_AT)
            .expression_attribute_values(":shard", s(shard))
            .expression_attribute_values(":now", n(now.timestamp()))
            .scan_index_forward(true);
        pages(store, query, Some(limit), "reading the due index")
    });
    let mut batch = DueBatch::default();
    for shard in try_join_all(shards).await? {
        batch.pages += shard.pages;
        batch.items_read += shard.items_read;
        for item in &shard.items {
            match parse_session(item) {
                Ok(session) if session.next_action_at().is_some_and(|at| at <= now) => batch.sessions.push(session),
                Ok(_) => {}
                // One unreadable item must not stop every other session's deadline.
                Err(err) => tracing::error!(error = %err, "skipping an unreadable session in the due index"),
            }
        }
    }
    batch.sessions.sort_by(|a, b| a.next_action_at().cmp(&b.next_action_at()).then_with(|| a.id.cmp(&b.id)));
    batch.sessions.truncate(limit);
    Ok(batch)
}

/// Every live session: all of each due shard, since only live sessions are in that index.
/// An unreadable item fails the call, because reconcile would otherwise remove its resources.
pub async fn live(store: &DynamoStore) -> Result<Vec<Session>, StoreError> {
    let shards = all_shard_keys().map(|shard| {
        let query = store
            .client
            .query()
            .table_name(&store.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("#shard = :shard")
            .expression_attribute_names("#shard", DUE_SHARD)
            .expression_attribute_values(":shard", s(shard));
        pages(store, query, None, "listing live sessions")
    });
    let mut sessions = Vec::new();
    for shard in try_join_all(shards).await? {
        for item in &shard.items {
            let session = parse_session(item)?;
            // A closed session stays in the due index while its notice outbox owes Slack a
            // message (workflow::outbox); it is not live.
            if !session.state.is_closed() {
                sessions.push(session);
            }
        }
    }
    sessions.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    Ok(sessions)
}

pub async fn by_requester(store: &DynamoStore, user: &SlackUserId, limit: usize) -> Result<Vec<Session>, StoreError> {
    let query = store
        .client
        .query()
        .table_name(&store.table)
        .index_name(REQUESTER_INDEX)
        .key_condition_expression("#key = :key")
        .expression_attribute_names("#key", REQUESTER_KEY)
        .expression_attribute_values(":key", s(user.as_str()))
        .scan_index_forward(false);
    newest_first(store, query, limit, "listing a requester's sessions").await
}

pub async fn by_target(store: &DynamoStore, target: &TargetName, since: Option<DateTime<Utc>>, limit: usize) -> Result<Vec<Session>, StoreError> {
    let mut query = store
        .client
        .query()
        .table_name(&store.table)
        .index_name(TARGET_INDEX)
        .expression_attribute_names("#key", TARGET_KEY)
        .expression_attribute_values(":key", s(target.as_str()))
        .scan_index_forward(false);
    query = match since {
        Some(since) => query
            .key_condition_expression("#key = :key AND #created >= :since")
            .expression_attribute_names("#created", CREATED_AT)
            .expression_attribute_values(":since", s(sortable_time(since))),
        None => query.key_condition_expression("#key = :key"),
    };
    newest_first(store, query, limit, "listing a target's sessions").await
}

/// The consistent Query of one session's audit items (`session_pk`), oldest first unless the
/// caller turns it.
pub(super) fn audit_query(store: &DynamoStore, session_pk: &str) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
    store
        .client
        .query()
        .table_name(&store.table)
        .key_condition_expression("#pk = :pk AND begins_with(#sk, :audit)")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#sk", SK)
        .expression_attribute_values(":pk", s(session_pk))
        .expression_attribute_values(":audit", s(AUDIT_SK_PREFIX))
        .consistent_read(true)
        .scan_index_forward(true)
}

pub async fn audit_trail(store: &DynamoStore, id: &SessionId) -> Result<Vec<AuditRecord>, StoreError> {
    let query = audit_query(store, &session_pk(id));
    let read = pages(store, query, None, "reading an audit trail").await?;
    read.items.iter().map(parse_audit).collect()
}

async fn newest_first(store: &DynamoStore, query: QueryFluentBuilder, limit: usize, what: &str) -> Result<Vec<Session>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let read = pages(store, query, Some(limit), what).await?;
    read.items.iter().map(parse_session).collect()
}

/// What a paginated query returned and what it cost.
struct Pages {
    items: Vec<Item>,
    pages: u32,
    items_read: u32,
}

/// Runs `query` page by page until it is exhausted or `limit` items were returned.
async fn pages(store: &DynamoStore, query: QueryFluentBuilder, limit: Option<usize>, what: &str) -> Result<Pages, StoreError> {
    let mut read = Pages { items: Vec::new(), pages: 0, items_read: 0 };
    let mut start: Option<Item> = None;
    loop {
        let want = limit.map_or(MAX_PAGE, |l| l.saturating_sub(read.items.len()).min(MAX_PAGE));
        // `want` is at most MAX_PAGE, which fits an i32.
        let out = query.clone().set_exclusive_start_key(start.take()).limit(want as i32).send().await.map_err(|e| unavailable(&store.table, what, &e))?;
        read.pages += 1;
        read.items_read += u32::try_from(out.scanned_count()).unwrap_or(0);
        start = out.last_evaluated_key;
        read.items.extend(out.items.unwrap_or_default());
        let full = limit.is_some_and(|l| read.items.len() >= l);
        if start.is_none() || full {
            return Ok(read);
        }
    }
}
