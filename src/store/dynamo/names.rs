//! Database user name reservations: `pk = DBUSER#<name>`, `sk = DBUSER`, `owner = <Slack user
//! id>`. Written once per name with a condition, never changed, never expiring: a name once
//! given to a person is theirs, so two people can never share an account, not even through a
//! hash collision in [`crate::domain::DbUsername`]'s rule.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::errors::unavailable;
use super::item::{s, Item, KIND};
use super::DynamoStore;
use crate::domain::{DbUsername, SlackUserId};
use crate::store::schema::{PK, SK};
use crate::store::StoreError;

const OWNER: &str = "owner";

fn pk(name: &DbUsername) -> String {
    format!("DBUSER#{name}")
}

pub async fn reserve(store: &DynamoStore, name: &DbUsername, owner: &SlackUserId) -> Result<(), StoreError> {
    let item: Item = Item::from([
        (PK.to_string(), s(pk(name))),
        (SK.to_string(), s("DBUSER")),
        (KIND.to_string(), s("db_user")),
        (OWNER.to_string(), s(owner.as_str())),
    ]);
    let result = store
        .client
        .put_item()
        .table_name(&store.table)
        .set_item(Some(item))
        // Free, or already this person's (a retry or their next request).
        .condition_expression("attribute_not_exists(#pk) OR #owner = :owner")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#owner", OWNER)
        .expression_attribute_values(":owner", AttributeValue::S(owner.as_str().to_string()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if matches!(err.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
            Err(StoreError::NameTaken(name.to_string()))
        }
        Err(err) => Err(unavailable(&store.table, "reserving a database user name", &err)),
    }
}
