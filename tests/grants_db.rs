//! The database side against MariaDB servers of the tests' own (tests/grants_support/private.rs):
//! TLS verified end to end with `require_secure_transport=ON`, a grant blocked behind a held
//! lock, a primary/replica pair, and an account that defines a trigger.

mod grants_support;

use std::time::Duration;

use mysql_async::prelude::Queryable;

use grants_support::private::{Certs, Options, PrivateMariadb};
use grants_support::{put_admin_secret, suffix, target, Server};
use powerpole::config::AdminTls;
use powerpole::domain::{DbUsername, Role};
use powerpole::grants::{AccountRequest, GrantError, Grants, RevokeOutcome};

/// A hang guard only: every call below is bounded by its own limits, far below this.
const HANG: Duration = Duration::from_secs(120);

fn user(prefix: &str) -> DbUsername {
    DbUsername::parse(&format!("{prefix}_{}", suffix())).expect("a valid user name")
}

async fn login(port: u16, user: &str, password: &str, ca: Option<&std::path::Path>) -> Result<mysql_async::Conn, mysql_async::Error> {
    let server = Server { host: "127.0.0.1".into(), port, user: String::new(), password: String::new() };
    match ca {
        Some(ca) => server.login_over_tls(user, password, ca).await,
        None => server.login(user, password).await,
    }
}

fn schema(db: &PrivateMariadb) -> String {
    let name = format!("pp_db_{}", suffix());
    db.socket_sql(&format!("CREATE DATABASE `{name}`; CREATE TABLE `{name}`.t (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO `{name}`.t VALUES (1, 'one');"))
        .expect("root creates a schema");
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_verified_tls_provisioning_and_teardown_work_a_wrong_ca_or_host_name_is_refused_and_logins_without_tls_are_refused() {
    // ring and aws-lc-rs are both compiled in: choose, as main does.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let certs_dir = std::env::temp_dir().join(format!("powerpole-certs-{}", suffix()));
    let (right, wrong) = (Certs::make(&certs_dir, "right"), Certs::make(&certs_dir, "wrong"));
    let db = tokio::task::spawn_blocking({
        let right = right.clone();
        // Also reachable as 127.0.0.2, a name its certificate (127.0.0.1, localhost) does not carry.
        move || PrivateMariadb::start(Options { tls: Some(right), also_bind: Some("127.0.0.2".into()), ..Options::default() })
    })
    .await
    .unwrap();
    let s = schema(&db);
    let secret = put_admin_secret(&db.server()).await;
    let mut t = target(&db.server(), &secret, &[&s]);
    t.require_ssl = true;
    t.admin_tls = AdminTls::Verify { ca_bundle: right.ca.clone() };
    let grants = grants_support::grants();

    let u = user("tls");
    let request = AccountRequest { earlier_attempt: false, user: u.clone(), host: "127.0.0.1".into(), role: Role::Read };
    let password = tokio::time::timeout(HANG, grants.create_account(&t, &request)).await.unwrap().expect("create_account over verified TLS");
    let mut c = login(db.port, u.as_str(), password.expose(), Some(&right.ca)).await.expect("the account logs in over TLS");
    let rows: Vec<(i32, String)> = c.query(format!("SELECT id, v FROM `{s}`.t")).await.expect("SELECT");
    assert_eq!(rows, [(1, "one".to_string())]);
    let created: String = db.socket_sql(&format!("SHOW CREATE USER '{u}'@'127.0.0.1'")).unwrap();
    assert!(created.contains("REQUIRE SSL"), "{created}");

    // Without TLS the person's login is refused.
    assert!(login(db.port, u.as_str(), password.expose(), None).await.is_err(), "a login without TLS must be refused");

    // The admin connection checked against another CA is refused, naming the target.
    let mut wrong_target = t.clone();
    wrong_target.admin_tls = AdminTls::Verify { ca_bundle: wrong.ca.clone() };
    let fresh = grants_support::grants();
    let e = fresh.create_account(&wrong_target, &AccountRequest { earlier_attempt: false, user: user("wrongca"), host: "127.0.0.1".into(), role: Role::Read }).await.unwrap_err();
    assert!(matches!(e, GrantError::AdminConnect { .. }), "{e}");
    assert!(e.to_string().contains(&format!("target `{}`", t.name)), "{e}");

    // The same server and CA under a name the certificate does not carry: refused too (the
    // server answers on that address, so only the name check can refuse it).
    std::net::TcpStream::connect(("127.0.0.2", db.port)).expect("the server answers on 127.0.0.2");
    let mut elsewhere = db.server();
    elsewhere.host = "127.0.0.2".into();
    let mut wrong_name = t.clone();
    wrong_name.admin_secret = put_admin_secret(&elsewhere).await;
    wrong_name.writer_endpoint = elsewhere.host.clone();
    let e = grants_support::grants().create_account(&wrong_name, &AccountRequest { earlier_attempt: false, user: user("wrongname"), host: "127.0.0.1".into(), role: Role::Read }).await.unwrap_err();
    assert!(matches!(&e, GrantError::AdminConnect { host, .. } if host == "127.0.0.2"), "{e}");
    assert!(e.to_string().to_ascii_lowercase().contains("certificate"), "refused for its certificate's names: {e}");
    assert_eq!(db.socket_sql("SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'wrongname%'").unwrap(), "0", "nothing was created");

    let report = tokio::time::timeout(HANG, grants.revoke(&t, &u, "127.0.0.1")).await.unwrap().expect("revoke over TLS");
    assert_eq!(report.outcome, RevokeOutcome::Dropped);
    assert_eq!(report.killed, 1);
    assert!(c.query_drop("SELECT 1").await.is_err(), "the open session was killed");
    let _ = std::fs::remove_dir_all(&certs_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_blocked_behind_a_held_lock_gives_up_within_its_limits_and_rolls_back() {
    let db = tokio::task::spawn_blocking(|| PrivateMariadb::start(Options::default())).await.unwrap();
    let s = schema(&db);
    let secret = put_admin_secret(&db.server()).await;
    let mut t = target(&db.server(), &secret, &[&s]);
    t.statement_timeout = Duration::from_secs(1);
    t.grant_deadline = Duration::from_secs(2);
    let grants = grants_support::grants();
    let u = user("locked");

    // Another session holds the schema-privilege table: every GRANT/REVOKE on a schema waits.
    let mut holder = db.server().root().await;
    holder.query_drop("LOCK TABLES mysql.db WRITE").await.expect("root locks mysql.db");
    let request = AccountRequest { earlier_attempt: false, user: u.clone(), host: "127.0.0.1".into(), role: Role::Dml };
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(HANG, grants.create_account(&t, &request)).await.expect("create_account must not hang").unwrap_err();
    let took = started.elapsed();
    eprintln!("gave up after {took:?}: {e}");
    assert!(matches!(e, GrantError::GaveUp { .. }), "{e}");
    // Within its limits: the deadline, then a rollback whose statements each end at the server's
    // limit (it may itself wait on the lock; the teardown retries what it could not finish).
    let bound = t.grant_deadline + 3 * t.statement_timeout + Duration::from_secs(2);
    assert!(took <= bound, "gave up after {took:?}, more than the deadline and the rollback's limits ({bound:?})");
    // While the lock is still held, no admin statement is left waiting on the server: each was
    // ended there (its server-side limit, or a KILL from another connection), none piles up.
    let holder_id = holder.id();
    let waiting = db.socket_sql(&format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> {holder_id} AND STATE LIKE '%lock%'")).unwrap();
    assert_eq!(waiting, "0", "admin statements still wait behind the lock");
    holder.query_drop("UNLOCK TABLES").await.unwrap();

    // Rolled back: the account is gone, or left locked with no privileges for the teardown.
    let left = db.socket_sql(&format!("SELECT COUNT(*) FROM mysql.user WHERE User = '{u}'")).unwrap();
    if left != "0" {
        let created = db.socket_sql(&format!("SHOW CREATE USER '{u}'@'127.0.0.1'")).unwrap();
        assert!(created.contains("ACCOUNT LOCK"), "{e}\n{created}");
        let report = grants.revoke(&t, &u, "127.0.0.1").await.expect("the teardown's revoke");
        assert!(report.is_complete(), "{report}");
    }
    // No admin session is still blocked on the server.
    let blocked = db.socket_sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE '%lock%'").unwrap();
    assert_eq!(blocked, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_defines_a_trigger_is_kept_locked_and_the_trigger_is_named() {
    let db = tokio::task::spawn_blocking(|| PrivateMariadb::start(Options::default())).await.unwrap();
    let s = schema(&db);
    let secret = put_admin_secret(&db.server()).await;
    let mut t = target(&db.server(), &secret, &[&s]);
    // A target that allows triggers (not in the default DDL set, for this very reason).
    let mut ddl = t.privileges_for(Role::Ddl);
    ddl = powerpole::domain::PrivilegeSet::parse_override_all(t.name.as_str(), Role::Ddl, &ddl.to_sql_list().split(", ").map(String::from).chain(["TRIGGER".to_string()]).collect::<Vec<_>>())
        .expect("a valid privilege list");
    t.privileges.insert(Role::Ddl, ddl);
    let grants = grants_support::grants();
    let u = user("definer");
    let password = grants.create_account(&t, &AccountRequest { earlier_attempt: false, user: u.clone(), host: "127.0.0.1".into(), role: Role::Ddl }).await.expect("create_account");
    let mut c = login(db.port, u.as_str(), password.expose(), None).await.expect("login");
    c.query_drop(format!("CREATE TRIGGER `{s}`.audit_t BEFORE INSERT ON `{s}`.t FOR EACH ROW SET NEW.v = UPPER(NEW.v)")).await.expect("CREATE TRIGGER");
    drop(c);

    let report = grants.revoke(&t, &u, "127.0.0.1").await.expect("revoke");
    match &report.outcome {
        RevokeOutcome::KeptLocked { reason } => assert!(reason.contains(&format!("trigger {s}.audit_t")), "{reason}"),
        other => panic!("expected the account kept locked, got {other:?}"),
    }
    assert!(!report.is_complete());
    let created = db.socket_sql(&format!("SHOW CREATE USER '{u}'@'127.0.0.1'")).unwrap();
    assert!(created.contains("ACCOUNT LOCK"), "{created}");
    assert!(login(db.port, u.as_str(), password.expose(), None).await.is_err(), "a kept account cannot log in");
    // A later session that would get the same account is refused, and the account is untouched:
    // still locked, still able to run its trigger.
    let grants_before = db.socket_sql(&format!("SHOW GRANTS FOR '{u}'@'127.0.0.1'")).unwrap();
    let again = grants.create_account(&t, &AccountRequest { earlier_attempt: false, user: u.clone(), host: "127.0.0.1".into(), role: Role::Read }).await;
    match again {
        Err(GrantError::KeptForDefiner { objects, .. }) => assert!(objects.contains(&format!("trigger {s}.audit_t")), "{objects}"),
        other => panic!("expected the kept account refused, got {:?}", other.map(|_| "a password")),
    }
    assert_eq!(db.socket_sql(&format!("SHOW GRANTS FOR '{u}'@'127.0.0.1'")).unwrap(), grants_before, "the refused request changed the account's grants");
    assert!(db.socket_sql(&format!("SHOW CREATE USER '{u}'@'127.0.0.1'")).unwrap().contains("ACCOUNT LOCK"));
    assert!(login(db.port, u.as_str(), password.expose(), None).await.is_err(), "the kept account still cannot log in");
    // The application's writes through the trigger still work.
    db.socket_sql(&format!("INSERT INTO `{s}`.t VALUES (2, 'two')")).expect("the trigger still runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_kills_a_session_open_on_the_replica() {
    let (primary, replica) = tokio::task::spawn_blocking(|| {
        let primary = PrivateMariadb::start(Options { server_id: Some(1), ..Options::default() });
        let replica = PrivateMariadb::start(Options { server_id: Some(2), ..Options::default() });
        replica.replicate_from(&primary);
        (primary, replica)
    })
    .await
    .unwrap();
    let s = schema(&primary);
    let secret = put_admin_secret(&primary.server()).await;
    let mut t = target(&primary.server(), &secret, &[&s]);
    t.instance_endpoints = vec![format!("127.0.0.1:{}", primary.port), format!("127.0.0.1:{}", replica.port)];
    let grants = grants_support::grants();
    let u = user("reader");
    let password = grants.create_account(&t, &AccountRequest { earlier_attempt: false, user: u.clone(), host: "127.0.0.1".into(), role: Role::Read }).await.expect("create_account");

    // The account reaches the replica through replication; a READ session opens there.
    let mut on_replica = None;
    for _ in 0..100 {
        if let Ok(c) = login(replica.port, u.as_str(), password.expose(), None).await {
            on_replica = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut on_replica = on_replica.expect("the account replicated and logs in on the replica");
    let rows: Vec<i32> = on_replica.query(format!("SELECT id FROM `{s}`.t")).await.expect("SELECT on the replica");
    assert_eq!(rows, [1]);

    let report = grants.revoke(&t, &u, "127.0.0.1").await.expect("revoke");
    assert!(report.killed >= 1, "{report}");
    assert!(on_replica.query_drop("SELECT 1").await.is_err(), "the replica session was killed");
}
