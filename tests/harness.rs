//! Proves the test harness itself: the stand-ins are up and the real client crates reach them
//! (mysql_async -> MariaDB, aws-sdk-dynamodb -> moto). If these fail, nothing else can pass.

use std::env;

use aws_config::BehaviorVersion;
use mysql_async::prelude::Queryable;

fn standin_var(name: &str) -> String {
    env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the stand-ins are not running. Run `make test`, or `scripts/standins.sh start && source .local/standins.env` before `cargo test`.")
    })
}

#[tokio::test]
async fn mysql_async_reaches_mariadb_with_the_audit_plugin_on() {
    let url = standin_var("POWERPOLE_TEST_MYSQL_URL");
    let pool = mysql_async::Pool::new(url.as_str());
    let mut conn = pool.get_conn().await.expect("connect to the MariaDB stand-in");
    let version: String = conn.query_first("SELECT VERSION()").await.unwrap().unwrap();
    assert!(version.contains("MariaDB"), "{version}");
    let audit: Option<(String, String)> = conn.query_first("SHOW GLOBAL VARIABLES LIKE 'server_audit_logging'").await.unwrap();
    assert_eq!(audit.map(|(_, v)| v), Some("ON".to_string()), "server_audit must be on, as Aurora's audit log is");
    // --skip-name-resolve: accounts are matched by IP, as powerpole binds them.
    let skip: Option<(String, String)> = conn.query_first("SHOW GLOBAL VARIABLES LIKE 'skip_name_resolve'").await.unwrap();
    assert_eq!(skip.map(|(_, v)| v), Some("ON".to_string()));
    drop(conn);
    pool.disconnect().await.unwrap();
}

#[tokio::test]
async fn aws_sdk_dynamodb_reaches_moto_through_the_endpoint_override() {
    let endpoint = standin_var("AWS_ENDPOINT_URL");
    assert!(endpoint.starts_with("http://127.0.0.1:"), "tests must only ever talk to loopback: {endpoint}");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let name = format!("harness-{}", std::process::id());
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap())
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .expect("create a table in moto");
    let described = client.describe_table().table_name(&name).send().await.expect("moto describes the new table");
    assert_eq!(described.table().and_then(|t| t.table_name()), Some(name.as_str()));
    client.delete_table().table_name(&name).send().await.unwrap();
}
