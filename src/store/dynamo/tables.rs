//! Creating the table from [`schema::table_definition`], for local use and `powerpole table create`.
//! Production tables come from the Terraform in `infra/`, which must describe the same thing.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType as SdkKeyType, Projection, ProjectionType, ScalarAttributeType, TableDescription,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;

use super::errors::{invalid_request, unavailable};
use crate::store::schema::{self, KeyAttribute, KeyType};
use crate::store::StoreError;

/// How long a new table may take to become active (real DynamoDB: seconds; moto: at once).
const ACTIVE_WITHIN: Duration = Duration::from_secs(300);

/// What [`create_table`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableCreated {
    Created,
    /// The table was already there, with the keys and indexes powerpole needs.
    AlreadyExisted,
}

/// Why the table could not be made ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("table `{table}` exists but is not the table powerpole needs ({}); use another table name, or make it match `powerpole table schema`", .problems.join("; "))]
    Mismatch { table: String, problems: Vec<String> },
}

/// Creates table `name` with the keys, indexes and TTL of [`schema::table_definition`], waits until
/// it is active and switches TTL on. An existing table is fine if its keys and indexes match.
pub async fn create_table(client: &Client, name: &str) -> Result<TableCreated, TableError> {
    let created = match create_request(client, name)?.send().await {
        Ok(_) => TableCreated::Created,
        Err(err) if matches!(err.as_service_error(), Some(CreateTableError::ResourceInUseException(_))) => TableCreated::AlreadyExisted,
        Err(err) => return Err(unavailable(name, "creating the table", &err).into()),
    };
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(ACTIVE_WITHIN)
        .await
        .map_err(|e| StoreError::Unavailable(format!("table `{name}` did not become active within {}s: {}", ACTIVE_WITHIN.as_secs(), DisplayErrorContext(&e))))?;
    let described = client.describe_table().table_name(name).send().await.map_err(|e| unavailable(name, "describing the table", &e))?;
    if let Some(table) = described.table() {
        let problems = schema_problems(table);
        if !problems.is_empty() {
            return Err(TableError::Mismatch { table: name.to_string(), problems });
        }
    }
    enable_ttl(client, name).await?;
    Ok(created)
}

fn create_request(client: &Client, name: &str) -> Result<aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder, StoreError> {
    let def = schema::table_definition();
    let mut attributes: BTreeMap<&str, KeyType> = BTreeMap::new();
    for key in [&def.hash_key, &def.range_key].into_iter().chain(def.global_secondary_indexes.iter().flat_map(|i| [&i.hash_key, &i.range_key])) {
        attributes.insert(key.name, key.kind);
    }
    let mut request = client.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest).set_key_schema(Some(key_schema(&def.hash_key, &def.range_key)?));
    for (attribute, kind) in attributes {
        let kind = match kind {
            KeyType::S => ScalarAttributeType::S,
            KeyType::N => ScalarAttributeType::N,
        };
        request = request.attribute_definitions(AttributeDefinition::builder().attribute_name(attribute).attribute_type(kind).build().map_err(|e| invalid_request("CreateTable", e))?);
    }
    for index in &def.global_secondary_indexes {
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(index.name)
            .set_key_schema(Some(key_schema(&index.hash_key, &index.range_key)?))
            .projection(Projection::builder().projection_type(ProjectionType::from(index.projection)).build())
            .build()
            .map_err(|e| invalid_request("CreateTable", e))?;
        request = request.global_secondary_indexes(gsi);
    }
    Ok(request)
}

fn key_schema(hash: &KeyAttribute, range: &KeyAttribute) -> Result<Vec<KeySchemaElement>, StoreError> {
    [(hash, SdkKeyType::Hash), (range, SdkKeyType::Range)]
        .into_iter()
        .map(|(key, kind)| KeySchemaElement::builder().attribute_name(key.name).key_type(kind).build().map_err(|e| invalid_request("CreateTable", e)))
        .collect()
}

/// Turns TTL on unless it already is (DynamoDB refuses to enable it twice).
async fn enable_ttl(client: &Client, name: &str) -> Result<(), StoreError> {
    let current = client.describe_time_to_live().table_name(name).send().await.map_err(|e| unavailable(name, "reading the TTL setting", &e))?;
    let status = current.time_to_live_description().and_then(|d| d.time_to_live_status());
    if matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)) {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder().attribute_name(schema::TTL_ATTRIBUTE).enabled(true).build().map_err(|e| invalid_request("UpdateTimeToLive", e))?;
    client.update_time_to_live().table_name(name).time_to_live_specification(spec).send().await.map_err(|e| unavailable(name, "enabling TTL", &e))?;
    Ok(())
}

/// How an existing table differs from the schema, in words (empty when it matches).
pub fn schema_problems(table: &TableDescription) -> Vec<String> {
    let def = schema::table_definition();
    let mut problems = Vec::new();
    let expected = [(def.hash_key.name, SdkKeyType::Hash), (def.range_key.name, SdkKeyType::Range)];
    if !same_keys(table.key_schema(), &expected) {
        problems.push(format!("its key must be {} (hash) and {} (range)", def.hash_key.name, def.range_key.name));
    }
    for index in &def.global_secondary_indexes {
        let found = table.global_secondary_indexes().iter().find(|i| i.index_name() == Some(index.name));
        let expected = [(index.hash_key.name, SdkKeyType::Hash), (index.range_key.name, SdkKeyType::Range)];
        match found {
            None => problems.push(format!("index `{}` is missing", index.name)),
            Some(found) if !same_keys(found.key_schema(), &expected) => {
                problems.push(format!("index `{}` must be keyed on {} (hash) and {} (range)", index.name, index.hash_key.name, index.range_key.name))
            }
            Some(_) => {}
        }
    }
    problems
}

fn same_keys(actual: &[KeySchemaElement], expected: &[(&str, SdkKeyType)]) -> bool {
    actual.len() == expected.len() && expected.iter().all(|(name, kind)| actual.iter().any(|k| k.attribute_name() == *name && k.key_type() == kind))
}

/// `powerpole doctor`: the table exists, has the schema's keys and indexes, and TTL is on.
pub async fn check_table(client: &Client, name: &str) -> Result<String, String> {
    let described = client.describe_table().table_name(name).send().await.map_err(|e| {
        format!("table `{name}` cannot be described ({}): create it with the Terraform in infra/ (or `powerpole table create` locally), and allow dynamodb:DescribeTable", DisplayErrorContext(&e))
    })?;
    let table = described.table().ok_or_else(|| format!("table `{name}`: DynamoDB returned no description"))?;
    let problems = schema_problems(table);
    if !problems.is_empty() {
        return Err(format!("table `{name}` does not match the schema: {}", problems.join("; ")));
    }
    let ttl = client.describe_time_to_live().table_name(name).send().await.map_err(|e| unavailable(name, "reading the TTL setting", &e).to_string())?;
    let on = matches!(ttl.time_to_live_description().and_then(|d| d.time_to_live_status()), Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
    if !on {
        return Err(format!("table `{name}`: TTL on `{}` is off, so closed sessions are never removed; turn it on", schema::TTL_ATTRIBUTE));
    }
    Ok(format!("table `{name}` matches the schema; TTL on"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::GlobalSecondaryIndexDescription;

    fn key(name: &str, kind: SdkKeyType) -> KeySchemaElement {
        KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap()
    }

    fn matching_table() -> TableDescription {
        let mut table = TableDescription::builder().key_schema(key("pk", SdkKeyType::Hash)).key_schema(key("sk", SdkKeyType::Range));
        for index in schema::table_definition().global_secondary_indexes {
            table = table.global_secondary_indexes(
                GlobalSecondaryIndexDescription::builder()
                    .index_name(index.name)
                    .key_schema(key(index.hash_key.name, SdkKeyType::Hash))
                    .key_schema(key(index.range_key.name, SdkKeyType::Range))
                    .build(),
            );
        }
        table.build()
    }

    #[test]
    fn a_table_built_from_the_schema_matches_it() {
        assert_eq!(schema_problems(&matching_table()), Vec::<String>::new());
    }

    #[test]
    fn a_table_without_the_due_index_or_with_other_keys_is_named_as_such() {
        let full = matching_table();
        let other = TableDescription::builder()
            .key_schema(key("id", SdkKeyType::Hash))
            .set_global_secondary_indexes(Some(full.global_secondary_indexes().iter().filter(|i| i.index_name() != Some(schema::DUE_INDEX)).cloned().collect()))
            .build();
        let problems = schema_problems(&other);
        assert_eq!(problems, vec!["its key must be pk (hash) and sk (range)".to_string(), "index `due` is missing".to_string()]);
    }
}
