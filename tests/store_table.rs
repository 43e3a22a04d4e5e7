//! `powerpole table create`: builds the table from the schema, is safe to run again, and refuses
//! to call a table of another shape ready.

mod store_support;

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveStatus};

use powerpole::domain::SessionId;
use powerpole::store::dynamo::{create_table, TableCreated, TableError};
use powerpole::store::schema;
use store_support::client;

#[tokio::test]
async fn creating_the_table_twice_is_fine_and_leaves_it_as_the_schema_says() {
    let client = client().await;
    let name = format!("powerpole-store-test-{}", SessionId::random());
    assert_eq!(create_table(&client, &name).await, Ok(TableCreated::Created));
    assert_eq!(create_table(&client, &name).await, Ok(TableCreated::AlreadyExisted));

    let table = client.describe_table().table_name(&name).send().await.unwrap().table.unwrap();
    let mut indexes: Vec<_> = table.global_secondary_indexes().iter().filter_map(|i| i.index_name()).collect();
    indexes.sort();
    assert_eq!(indexes, vec![schema::REQUESTER_INDEX, schema::TARGET_INDEX, schema::DUE_INDEX]);
    let ttl = client.describe_time_to_live().table_name(&name).send().await.unwrap().time_to_live_description.unwrap();
    assert_eq!((ttl.time_to_live_status(), ttl.attribute_name()), (Some(&TimeToLiveStatus::Enabled), Some(schema::TTL_ATTRIBUTE)));
    client.delete_table().table_name(&name).send().await.unwrap();
}

#[tokio::test]
async fn a_table_of_another_shape_is_named_not_used() {
    let client = client().await;
    let name = format!("powerpole-store-test-{}", SessionId::random());
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap())
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .unwrap();
    let err = create_table(&client, &name).await.unwrap_err();
    assert!(matches!(&err, TableError::Mismatch { table, problems } if *table == name && problems.len() == 4), "{err}");
    assert!(err.to_string().contains("index `due` is missing"), "{err}");
    client.delete_table().table_name(&name).send().await.unwrap();
}
