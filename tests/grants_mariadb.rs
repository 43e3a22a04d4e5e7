//! The grants adapter against the real MariaDB stand-in: each role does what it allows and
//! nothing else, as the account it created; re-creating converges; revoking ends open sessions;
//! hostile e-mail addresses never become SQL. Run with the stand-ins up (`make test`).

mod grants_support;

use std::collections::BTreeSet;
use std::time::Instant;

use mysql_async::prelude::Queryable;

use grants_support::{put_admin_secret, random_host, refusal_code, suffix, target, Cleanup, Server};
use powerpole::domain::{DbUsername, Role, UsernamePolicy};
use powerpole::grants::{AccountRequest, AccountState, GrantError, Grants, RevokeOutcome};

/// Errors MariaDB gives for a statement the account may not run.
const DENIED: [u16; 4] = [1044, 1142, 1143, 1227];
const LOGIN_REFUSED: u16 = 1045;

struct Fixture {
    server: Server,
    cleanup: Cleanup,
    schema: String,
    other: String,
    target: powerpole::config::TargetConfig,
}

/// A target over one fresh schema (with `_` in its name), and a second schema outside it.
async fn fixture() -> Fixture {
    let server = Server::shared();
    let mut root = server.root().await;
    let mut cleanup = Cleanup::new(&server);
    let s = suffix();
    let (schema, other) = (format!("pp_g_{s}"), format!("pp_other_{s}"));
    cleanup.schema(&mut root, &schema).await;
    cleanup.schema(&mut root, &other).await;
    let secret = put_admin_secret(&server).await;
    let target = target(&server, &secret, &[&schema]);
    Fixture { server, cleanup, schema, other, target }
}

fn user(prefix: &str) -> DbUsername {
    DbUsername::parse(&format!("{prefix}_{}", suffix())).expect("a valid user name")
}

/// Creates an account for 127.0.0.1 (the address the tests connect from) and logs in as it.
async fn account_for(f: &mut Fixture, role: Role) -> (DbUsername, mysql_async::Conn) {
    let user = user(&role.as_str().to_lowercase());
    f.cleanup.account(user.as_str(), "127.0.0.1");
    let request = AccountRequest { earlier_attempt: false, user: user.clone(), host: "127.0.0.1".into(), role };
    let started = Instant::now();
    let password = grants_support::grants().create_account(&f.target, &request).await.expect("create_account");
    eprintln!("create_account {role}: {} ms", started.elapsed().as_millis());
    let conn = f.server.login(user.as_str(), password.expose()).await.expect("the new account logs in with the returned password");
    (user, conn)
}

#[tokio::test]
async fn read_can_select_and_show_views_but_not_write() {
    let mut f = fixture().await;
    let (_, mut c) = account_for(&mut f, Role::Read).await;
    let s = &f.schema;

    let rows: Vec<(i32, String)> = c.query(format!("SELECT id, v FROM `{s}`.t")).await.expect("SELECT is allowed");
    assert_eq!(rows, [(1, "one".to_string())]);
    let code = refusal_code(c.query_drop(format!("INSERT INTO `{s}`.t VALUES (2, 'two')")).await, "INSERT as READ");
    assert!(DENIED.contains(&code), "{code}");
    let code = refusal_code(c.query_drop(format!("UPDATE `{s}`.t SET v = 'x'")).await, "UPDATE as READ");
    assert!(DENIED.contains(&code), "{code}");
    let code = refusal_code(c.query_drop(format!("SELECT * FROM `{}`.t", f.other)).await, "another schema as READ");
    assert!(DENIED.contains(&code), "{code}");
}

#[tokio::test]
async fn dml_can_change_rows_but_not_tables() {
    let mut f = fixture().await;
    let (_, mut c) = account_for(&mut f, Role::Dml).await;
    let s = &f.schema;

    c.query_drop(format!("UPDATE `{s}`.t SET v = 'changed' WHERE id = 1")).await.expect("UPDATE is allowed");
    c.query_drop(format!("INSERT INTO `{s}`.t VALUES (2, 'two')")).await.expect("INSERT is allowed");
    c.query_drop(format!("DELETE FROM `{s}`.t WHERE id = 2")).await.expect("DELETE is allowed");
    let code = refusal_code(c.query_drop(format!("CREATE TABLE `{s}`.u (id INT)")).await, "CREATE TABLE as DML");
    assert!(DENIED.contains(&code), "{code}");
    let code = refusal_code(c.query_drop(format!("ALTER TABLE `{s}`.t ADD COLUMN w INT")).await, "ALTER TABLE as DML");
    assert!(DENIED.contains(&code), "{code}");
    let code = refusal_code(c.query_drop(format!("UPDATE `{}`.t SET v = 'x'", f.other)).await, "another schema as DML");
    assert!(DENIED.contains(&code), "{code}");
}

#[tokio::test]
async fn ddl_can_change_tables_but_not_grant_or_reach_another_schema() {
    let mut f = fixture().await;
    let (user, mut c) = account_for(&mut f, Role::Ddl).await;
    let s = &f.schema;

    c.query_drop(format!("CREATE TABLE `{s}`.u (id INT PRIMARY KEY)")).await.expect("CREATE TABLE is allowed");
    c.query_drop(format!("ALTER TABLE `{s}`.u ADD COLUMN w INT")).await.expect("ALTER TABLE is allowed");
    c.query_drop(format!("CREATE INDEX i ON `{s}`.u (w)")).await.expect("CREATE INDEX is allowed");
    // Not in the default DDL set: a view would outlive the account as its DEFINER.
    let code = refusal_code(c.query_drop(format!("CREATE VIEW `{s}`.vw AS SELECT id FROM `{s}`.t")).await, "CREATE VIEW as DDL");
    assert!(DENIED.contains(&code), "{code}");
    c.query_drop(format!("DROP TABLE `{s}`.u")).await.expect("DROP TABLE is allowed");
    let code = refusal_code(c.query_drop(format!("GRANT SELECT ON `{s}`.* TO '{user}'@'127.0.0.1'")).await, "GRANT as DDL");
    assert!(DENIED.contains(&code), "{code}");
    let code = refusal_code(c.query_drop(format!("CREATE TABLE `{}`.u (id INT)", f.other)).await, "another schema as DDL");
    assert!(DENIED.contains(&code), "{code}");
    let code = refusal_code(c.query_drop("CREATE USER 'mallory'@'%'").await, "CREATE USER as DDL");
    assert!(DENIED.contains(&code), "{code}");
}

#[tokio::test]
async fn an_underscore_in_a_schema_name_is_not_a_wildcard() {
    let mut f = fixture().await;
    // `pp_g_x` unescaped would also match `ppXgXx`.
    let lookalike = f.schema.replace('_', "X");
    let mut root = f.server.root().await;
    f.cleanup.schema(&mut root, &lookalike).await;
    let (_, mut c) = account_for(&mut f, Role::Read).await;

    c.query_drop(format!("SELECT * FROM `{}`.t", f.schema)).await.expect("the granted schema");
    let code = refusal_code(c.query_drop(format!("SELECT * FROM `{lookalike}`.t")).await, "a schema matching the unescaped pattern");
    assert!(DENIED.contains(&code), "{code}");
}

#[tokio::test]
async fn creating_twice_converges_to_the_second_password_and_role() {
    let mut f = fixture().await;
    let grants = grants_support::grants();
    let user = user("twice");
    f.cleanup.account(user.as_str(), "127.0.0.1");
    let request = |role| AccountRequest { earlier_attempt: false, user: user.clone(), host: "127.0.0.1".into(), role };

    let first = grants.create_account(&f.target, &request(Role::Ddl)).await.expect("first create");
    let second = grants.create_account(&f.target, &request(Role::Read)).await.expect("second create converges");

    assert_ne!(first.expose(), second.expose());
    let code = refusal_code(f.server.login(user.as_str(), first.expose()).await, "the first password");
    assert_eq!(code, LOGIN_REFUSED);
    let mut c = f.server.login(user.as_str(), second.expose()).await.expect("the second password logs in");
    c.query_drop(format!("SELECT * FROM `{}`.t", f.schema)).await.expect("READ can select");
    let code = refusal_code(c.query_drop(format!("CREATE TABLE `{}`.u (id INT)", f.schema)).await, "DDL from the first create");
    assert!(DENIED.contains(&code), "privileges are reset, not added up: {code}");
    let mut root = f.server.root().await;
    let grants_shown: Vec<String> = root.query(format!("SHOW GRANTS FOR '{user}'@'127.0.0.1'")).await.unwrap();
    assert_eq!(grants_shown.len(), 3, "usage, the marker role, one schema: {grants_shown:#?}");
}

#[tokio::test]
async fn revoke_kills_an_open_session_and_drops_the_account() {
    let mut f = fixture().await;
    let (user, mut session) = account_for(&mut f, Role::Dml).await;
    session.query_drop(format!("SELECT * FROM `{}`.t", f.schema)).await.expect("the session works before revoke");
    let grants = grants_support::grants();

    let started = Instant::now();
    let report = grants.revoke(&f.target, &user, "127.0.0.1").await.expect("revoke");
    eprintln!("revoke with one open session: {} ms", started.elapsed().as_millis());

    assert_eq!(report.outcome, RevokeOutcome::Dropped);
    assert_eq!(report.killed, 1, "{report}");
    assert!(session.query_drop("SELECT 1").await.is_err(), "the open session is dead");
    let mut root = f.server.root().await;
    let left: Option<u64> = root.exec_first("SELECT COUNT(*) FROM mysql.user WHERE User = ?", (user.as_str(),)).await.unwrap();
    assert_eq!(left, Some(0), "the account is gone from mysql.user");
    assert_eq!(grants.account_state(&f.target, &user, "127.0.0.1").await.unwrap(), AccountState::Absent);
    let again = grants.revoke(&f.target, &user, "127.0.0.1").await.expect("revoking again is fine");
    assert_eq!((again.outcome, again.killed), (RevokeOutcome::AlreadyGone, 0));
}

#[tokio::test]
async fn revoke_kills_sessions_of_an_account_bound_to_a_netmask() {
    let mut f = fixture().await;
    let grants = grants_support::grants();
    let user = user("mask");
    f.cleanup.account(user.as_str(), "127.0.0.0/255.0.0.0");
    let request = AccountRequest { earlier_attempt: false, user: user.clone(), host: "127.0.0.0/16".into(), role: Role::Read };
    let password = grants.create_account(&f.target, &request).await.expect("create for a CIDR");
    let mut a = f.server.login(user.as_str(), password.expose()).await.expect("logs in through the netmask");
    let mut b = f.server.login(user.as_str(), password.expose()).await.expect("a second session");

    let report = grants.revoke(&f.target, &user, "127.0.0.0/16").await.expect("revoke");

    assert_eq!((report.outcome, report.killed), (RevokeOutcome::Dropped, 2));
    assert!(a.query_drop("SELECT 1").await.is_err() && b.query_drop("SELECT 1").await.is_err());
}

#[tokio::test]
async fn hostile_email_local_parts_become_exactly_the_intended_accounts() {
    let f = fixture().await;
    let grants = grants_support::grants();
    let host = random_host();
    let mut cleanup = Cleanup::new(&f.server);
    let sixty_four = "x".repeat(64);
    let near_sixty_four = format!("{}Z", "x".repeat(63));
    let locals = [
        "alice", "Alice", "alice.smith", "alice-smith", "alice_smith", "alice..smith", "alice+tag", "o'brien", "o''brien",
        "o\"brien", "\"quoted\"", "\"a@b\"", "`drop`", "x`;DROP/**/USER/**/root;--", "';DROP/**/USER/**/root;--", "%", "_", "%%", "a%b",
        "a_b", "a\\b", "\\", "\\'", "'", "''", "ä.ö", "日本", "Ünïcödé", "İstanbul", "ﬁle", "🙂", "root", "admin", "powerpole",
        "powerpole_managed", "powerpole-managed", "alice_smith_0123abcd", sixty_four.as_str(), near_sixty_four.as_str(),
    ];
    let policy = UsernamePolicy { home_domains: vec!["example.com".into()] };
    let mut intended = BTreeSet::new();
    let started = Instant::now();
    for local in locals {
        let name = DbUsername::from_slack_email(&format!("{local}@example.com"), &policy).unwrap_or_else(|e| panic!("{local:?}: {e}"));
        cleanup.account(name.as_str(), &host);
        let request = AccountRequest { earlier_attempt: false, user: name.clone(), host: host.clone(), role: Role::Read };
        grants.create_account(&f.target, &request).await.unwrap_or_else(|e| panic!("{local:?} -> {name}: {e}"));
        intended.insert(name.to_string());
    }
    eprintln!("create_account, warm pool: {} ms each over {}", started.elapsed().as_millis() / locals.len() as u128, locals.len());
    for refused in ["a b", "tab\there", "new\nline", &"y".repeat(65)] {
        assert!(DbUsername::from_slack_email(&format!("{refused}@example.com"), &policy).is_err(), "{refused:?} is refused before SQL");
    }

    let mut root = f.server.root().await;
    let on_host: BTreeSet<String> = root.exec("SELECT User FROM mysql.user WHERE Host = ?", (host.as_str(),)).await.unwrap().into_iter().collect();
    assert_eq!(on_host, intended, "exactly the intended accounts exist for this host");
    let roots: Vec<String> = root.query("SELECT Host FROM mysql.user WHERE User = 'root'").await.unwrap();
    assert!(!roots.is_empty(), "root is still there");
    let listed: BTreeSet<String> = grants.list_accounts(&f.target).await.unwrap().into_iter().filter(|(_, h)| *h == host).map(|(u, _)| u).collect();
    assert_eq!(listed, intended, "list_accounts finds each of them");
    let started = Instant::now();
    for name in &intended {
        let report = grants.revoke(&f.target, &DbUsername::parse(name).unwrap(), &host).await.unwrap();
        assert_eq!(report.outcome, RevokeOutcome::Dropped, "{name}");
    }
    eprintln!("revoke, no open session, warm pool: {} ms each over {}", started.elapsed().as_millis() / intended.len() as u128, intended.len());
    let left: Vec<String> = root.exec("SELECT User FROM mysql.user WHERE Host = ?", (host.as_str(),)).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn list_accounts_leaves_out_accounts_powerpole_did_not_make() {
    let f = fixture().await;
    let grants = grants_support::grants();
    let host = random_host();
    let mut cleanup = Cleanup::new(&f.server);
    let ours = user("ours");
    let theirs = user("theirs");
    cleanup.account(ours.as_str(), &host);
    cleanup.account(theirs.as_str(), &host);
    let mut root = f.server.root().await;
    root.query_drop(format!("CREATE USER '{theirs}'@'{host}' IDENTIFIED BY 'x'")).await.unwrap();
    grants.create_account(&f.target, &AccountRequest { earlier_attempt: false, user: ours.clone(), host: host.clone(), role: Role::Read }).await.unwrap();

    let listed = grants.list_accounts(&f.target).await.unwrap();

    assert!(listed.contains(&(ours.to_string(), host.clone())));
    assert!(!listed.iter().any(|(u, _)| u == theirs.as_str()), "a hand-made account is not powerpole's");
    assert!(!listed.iter().any(|(u, _)| u == "root"), "the admin holding the role WITH ADMIN OPTION is not listed");
}

#[tokio::test]
async fn the_password_reaches_neither_the_audit_log_nor_an_error() {
    let mut f = fixture().await;
    let grants = grants_support::grants();
    let user = user("audit");
    f.cleanup.account(user.as_str(), "127.0.0.1");
    let password = grants.create_account(&f.target, &AccountRequest { earlier_attempt: false, user: user.clone(), host: "127.0.0.1".into(), role: Role::Read }).await.unwrap();

    let run_dir = grants_support::required_env("POWERPOLE_TEST_MYSQL_RUN_DIR");
    let audit = std::fs::read(format!("{run_dir}/audit.log")).expect("server_audit writes audit.log in the run directory");
    let audit = String::from_utf8_lossy(&audit);
    assert!(audit.contains(&format!("CREATE USER IF NOT EXISTS \\'{user}\\'")), "the statement is audited");
    assert!(!audit.contains(password.expose()), "the password is masked in the audit log");
    assert_eq!(format!("{password:?} {password}"), "[redacted] [redacted]");
}

#[tokio::test]
async fn a_missing_admin_secret_says_what_to_check() {
    let server = Server::shared();
    let target = target(&server, &format!("powerpole/test/missing-{}", suffix()), &["pp_none"]);
    let request = AccountRequest { earlier_attempt: false, user: user("nosecret"), host: "127.0.0.1".into(), role: Role::Read };

    let err = grants_support::grants().create_account(&target, &request).await.expect_err("no secret, no account");

    assert!(matches!(err, GrantError::AdminSecretUnreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("secretsmanager:GetSecretValue"), "{err}");
}

#[tokio::test]
async fn an_invalid_host_is_refused_before_any_sql() {
    let f = fixture().await;
    for host in ["%", "localhost", "10.0.0.1' OR '1'='1", ""] {
        let request = AccountRequest { earlier_attempt: false, user: user("badhost"), host: host.into(), role: Role::Read };
        let err = grants_support::grants().create_account(&f.target, &request).await.expect_err(host);
        assert!(matches!(err, GrantError::InvalidHost(_)), "{host:?}: {err:?}");
    }
}

/// A worker that stops between `CREATE USER` and marking the account (a crash, a SIGTERM, a lost
/// answer) leaves it locked, without privileges and without the marker role. The same session's
/// next attempt finishes it; any other request is refused. A working account someone made by
/// hand is never converged, and a revoke of it leaves it exactly as it was.
#[tokio::test]
async fn an_unfinished_account_is_finished_only_by_its_session_and_a_foreign_one_is_never_touched() {
    let f = fixture().await;
    let grants = grants_support::grants();
    let mut cleanup = Cleanup::new(&f.server);
    let host = "127.0.0.1";
    let (left, theirs) = (user("left"), user("theirs"));
    cleanup.account(left.as_str(), host);
    cleanup.account(theirs.as_str(), host);
    let mut root = f.server.root().await;
    // What a stop right after `CREATE USER` leaves.
    root.query_drop(format!("CREATE USER '{left}'@'{host}' IDENTIFIED BY 'Unknown-pw-41' ACCOUNT LOCK")).await.unwrap();
    // Someone's own working account, of a name powerpole could give.
    root.query_drop(format!("CREATE USER '{theirs}'@'{host}' IDENTIFIED BY 'Theirs-pw-42'")).await.unwrap();
    root.query_drop(format!("GRANT SELECT ON `{}`.* TO '{theirs}'@'{host}'", f.other)).await.unwrap();
    let request = |u: &DbUsername, earlier_attempt| AccountRequest { earlier_attempt, user: u.clone(), host: host.into(), role: Role::Read };

    // A request that did not record the account first: refused, and the account left as it was.
    let refused = grants.create_account(&f.target, &request(&left, false)).await.unwrap_err();
    assert!(matches!(refused, GrantError::ForeignAccount { .. }), "{refused}");
    assert_eq!(grants.account_state(&f.target, &left, host).await.unwrap(), AccountState::Unfinished);

    // The session's next attempt finishes it: marked, unlocked, and its new password works.
    let password = grants.create_account(&f.target, &request(&left, true)).await.expect("the unfinished account is finished");
    assert_eq!(grants.account_state(&f.target, &left, host).await.unwrap(), AccountState::Powerpole);
    let mut conn = f.server.login(left.as_str(), password.expose()).await.expect("the finished account logs in");
    conn.query_drop(format!("SELECT COUNT(*) FROM `{}`.t", f.schema)).await.ok();

    // Someone's working account: refused even to a later attempt, and a revoke leaves it whole.
    assert_eq!(grants.account_state(&f.target, &theirs, host).await.unwrap(), AccountState::Foreign);
    let refused = grants.create_account(&f.target, &request(&theirs, true)).await.unwrap_err();
    assert!(matches!(refused, GrantError::ForeignAccount { .. }), "{refused}");
    let mut theirs_conn = f.server.login(theirs.as_str(), "Theirs-pw-42").await.expect("their account logs in with its own password");
    let report = grants.revoke(&f.target, &theirs, host).await.expect("revoke");
    assert_eq!((report.outcome, report.killed), (RevokeOutcome::NotOurs, 0));
    theirs_conn.query_drop("SELECT 1").await.expect("their open session was not killed");
    f.server.login(theirs.as_str(), "Theirs-pw-42").await.expect("their account still logs in: not locked, not dropped");
    let shown: Vec<String> = root.query(format!("SHOW GRANTS FOR '{theirs}'@'{host}'")).await.unwrap();
    assert!(shown.iter().any(|g| g.starts_with("GRANT SELECT ON")), "its privileges are untouched: {shown:?}");
}
