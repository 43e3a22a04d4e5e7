//! The durable request store and append-only audit trail on DynamoDB.

pub mod schema;
