use super::*;
use crate::domain::{DbUsername, DeploymentId, Role};

fn account(user: &str, host: &str) -> Account {
    Account::new(DbUsername::parse(user).unwrap(), host).unwrap()
}

fn texts(statements: &[Statement]) -> Vec<&str> {
    statements.iter().map(|s| s.sql.as_str()).collect()
}

fn create(dialect: Dialect, require_ssl: bool) -> (Password, Vec<Statement>) {
    let privileges = Role::Dml.default_privileges();
    let schemas = [SchemaName::parse("billing_v2").unwrap(), SchemaName::parse("audit").unwrap()];
    let spec = AccountSpec { privileges: &privileges, schemas: &schemas, max_user_connections: 3, require_ssl };
    let password = Password::generate();
    let statements = Sql::new(dialect, &DeploymentId::default()).create_account(&account("alice", "10.0.1.5"), &password, &spec).unwrap();
    (password, statements)
}

#[test]
fn mariadb_create_locks_resets_revokes_marks_grants_then_unlocks() {
    let (pw, statements) = create(Dialect::Mariadb, false);
    let pw = pw.expose();
    assert_eq!(
        texts(&statements),
        [
            "CREATE ROLE IF NOT EXISTS 'powerpole-dep-default'".to_string(),
            format!("CREATE USER IF NOT EXISTS 'alice'@'10.0.1.5' IDENTIFIED BY '{pw}' REQUIRE NONE WITH MAX_USER_CONNECTIONS 3 ACCOUNT LOCK"),
            format!("ALTER USER 'alice'@'10.0.1.5' IDENTIFIED BY '{pw}' REQUIRE NONE WITH MAX_USER_CONNECTIONS 3 ACCOUNT LOCK"),
            "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'alice'@'10.0.1.5'".to_string(),
            "GRANT 'powerpole-dep-default' TO 'alice'@'10.0.1.5'".to_string(),
            r"GRANT SELECT, SHOW VIEW, INSERT, UPDATE, DELETE ON `billing\_v2`.* TO 'alice'@'10.0.1.5'".to_string(),
            "GRANT SELECT, SHOW VIEW, INSERT, UPDATE, DELETE ON `audit`.* TO 'alice'@'10.0.1.5'".to_string(),
            "ALTER USER 'alice'@'10.0.1.5' ACCOUNT UNLOCK".to_string(),
        ]
    );
}

#[test]
fn mysql8_create_adds_the_attribute_and_otherwise_matches_mariadb() {
    let (pw, statements) = create(Dialect::Mysql8, true);
    let pw = pw.expose();
    assert_eq!(
        statements[1].sql,
        format!(
            r#"CREATE USER IF NOT EXISTS 'alice'@'10.0.1.5' IDENTIFIED BY '{pw}' REQUIRE SSL WITH MAX_USER_CONNECTIONS 3 ACCOUNT LOCK ATTRIBUTE '{{"managed_by": "powerpole"}}'"#
        )
    );
    let (_, maria) = create(Dialect::Mariadb, true);
    for i in [0, 3, 4, 5, 6, 7] {
        assert_eq!(statements[i].sql, maria[i].sql, "statement {i} is the same on both dialects");
    }
    assert!(statements[2].sql.contains("REQUIRE SSL WITH MAX_USER_CONNECTIONS 3 ACCOUNT LOCK"));
}

#[test]
fn statements_with_the_password_hide_it_in_debug() {
    let (pw, statements) = create(Dialect::Mariadb, false);
    let debug = format!("{statements:?}");
    assert!(!debug.contains(pw.expose()), "{debug}");
    assert!(debug.contains("REVOKE ALL PRIVILEGES"), "statements without a password stay readable");
    let flagged: Vec<bool> = statements.iter().map(|s| s.carries_password).collect();
    assert_eq!(flagged, [false, true, true, false, false, false, false, false]);
}

#[test]
fn never_a_global_grant_or_grant_option() {
    for dialect in [Dialect::Mariadb, Dialect::Mysql8] {
        let (_, statements) = create(dialect, false);
        for s in statements.iter().filter(|s| s.sql.starts_with("GRANT")) {
            assert!(!s.sql.contains("*.*") && !s.sql.contains("WITH GRANT OPTION") && !s.sql.contains("ALL"), "{}", s.sql);
        }
    }
}

#[test]
fn kill_follows_the_configured_statement() {
    let sql = Sql::new(Dialect::Mysql8, &DeploymentId::default());
    assert_eq!(sql.kill(KillStatement::KillConnection, 42).sql, "KILL CONNECTION 42");
    assert_eq!(sql.kill(KillStatement::RdsKill, 42).sql, "CALL mysql.rds_kill(42)");
}

#[test]
fn revoke_statements_name_the_account() {
    let sql = Sql::new(Dialect::Mariadb, &DeploymentId::default());
    let a = account("bob_1", "10.1.0.0/16");
    assert_eq!(sql.lock(&a).sql, "ALTER USER 'bob_1'@'10.1.0.0/255.255.0.0' ACCOUNT LOCK");
    assert_eq!(sql.drop_user(&a).sql, "DROP USER 'bob_1'@'10.1.0.0/255.255.0.0'");
    assert_eq!(sql.revoke_everything(&a).sql, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'bob_1'@'10.1.0.0/255.255.0.0'");
}

#[test]
fn lookups_are_parameterised_and_dialect_specific_where_needed() {
    let a = account("alice", "10.0.1.5");
    let maria = Sql::new(Dialect::Mariadb, &DeploymentId::default());
    let mysql = Sql::new(Dialect::Mysql8, &DeploymentId::default());
    assert_eq!(maria.account_exists(&a).params, ["alice", "10.0.1.5"]);
    assert_eq!(maria.sessions_of(&a).params, ["alice"]);
    assert!(maria.list_accounts().sql.contains("mysql.roles_mapping") && maria.list_accounts().sql.contains("Admin_option = 'N'"));
    assert!(mysql.list_accounts().sql.contains("mysql.role_edges"));
    assert_eq!(mysql.list_accounts().params, ["powerpole-dep-default"]);
}

#[test]
fn each_deployment_marks_and_lists_with_its_own_role_within_mysql_8s_name_limit() {
    let longest = DeploymentId::parse("0123456789abcdef").unwrap();
    let role = marker_role(&longest);
    assert_eq!(role, "powerpole-dep-0123456789abcdef");
    assert!(role.len() <= 32, "MySQL 8 role names are at most 32 characters: {role}");
    let staging = Sql::new(Dialect::Mysql8, &DeploymentId::parse("staging").unwrap());
    let prod = Sql::new(Dialect::Mysql8, &DeploymentId::parse("prod").unwrap());
    assert_eq!(staging.list_accounts().params, ["powerpole-dep-staging"]);
    assert_eq!(prod.mark(&account("alice", "10.0.1.5")).unwrap().sql, "GRANT 'powerpole-dep-prod' TO 'alice'@'10.0.1.5'");
    assert_ne!(marker_role(&DeploymentId::parse("managed").unwrap()), LEGACY_MARKER_ROLE, "no id can name the legacy marker");
}

#[test]
fn literals_double_quotes_and_refuse_backslashes() {
    assert_eq!(string_literal("it's").unwrap(), "'it''s'");
    assert_eq!(string_literal("a\\b"), Err(Unquotable));
    assert_eq!(string_literal("a\0b"), Err(Unquotable));
    assert_eq!(string_literal("a\nb"), Err(Unquotable));
    assert_eq!(identifier("we`ird"), "`we``ird`");
}

#[test]
fn schema_wildcards_are_escaped_in_grants() {
    assert_eq!(grant_schema(&SchemaName::parse("billing_v2").unwrap()), r"`billing\_v2`.*");
    assert_eq!(grant_schema(&SchemaName::parse("plain$1").unwrap()), "`plain$1`.*");
}

#[test]
fn hosts_are_addresses_or_patterns_never_any_host_or_a_name() {
    let user = || DbUsername::parse("alice").unwrap();
    assert_eq!(account("alice", "10.1.0.0/16").host(), "10.1.0.0/255.255.0.0");
    for bad in ["10.1.%", "%", "", "localhost", "instance_ip", "10.0.0.1' OR '1", "10.0.0.1\\", "::1", "10.0.0.1/4", "evil.example.com"] {
        assert!(Account::new(user(), bad).is_err(), "{bad:?}");
    }
}

#[test]
fn process_list_hosts_match_the_accounts_host() {
    use super::ClientMatch::{No, Unreadable, Yes};
    let exact = account("alice", "10.0.1.5");
    assert_eq!(exact.client_match("10.0.1.5:51234"), Yes);
    assert_eq!(exact.client_match("::ffff:10.0.1.5:51234"), Yes);
    assert_eq!(exact.client_match("10.0.1.50:51234"), No);
    assert_eq!(exact.client_match("10.0.1.6:51234"), No);
    let cidr = account("alice", "10.1.0.0/16");
    assert_eq!(cidr.client_match("10.1.200.3:1"), Yes);
    assert_eq!(cidr.client_match("10.2.0.3:1"), No);
    // Unreadable client hosts are neither: the caller kills them only when no other account
    // shares the user name.
    assert_eq!(exact.client_match("bastion.internal:4000"), Unreadable);
    assert_eq!(exact.client_match(""), Unreadable);
}
