//! Many sessions of one target ending at once, against the real MariaDB stand-in and moto's
//! Secrets Manager (issue 23): four times as many revocations as the admin pool holds
//! connections, each account with an open session, with `instance_endpoints` empty (the writer
//! is the only instance) and naming the writer itself. Every account must be gone and every
//! session dead well within the admin connect timeout: a revocation that waits for a second
//! connection of the pool it holds one from starves with the others until that timeout.

mod grants_support;

use std::time::{Duration, Instant};

use futures::future::join_all;
use mysql_async::prelude::Queryable;

use grants_support::{put_admin_secret, suffix, target, Cleanup, Server};
use powerpole::config::TargetConfig;
use powerpole::domain::{DbUsername, Role};
use powerpole::grants::{AccountRequest, Grants, MysqlGrants, RevokeOutcome, POOL_MAX};

/// Sessions ending at once: four times the pool.
const AT_ONCE: usize = 4 * POOL_MAX;
/// The admin connect timeout the adapter runs with (its default).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Every revocation done within this, well under the connect timeout.
const BOUND: Duration = Duration::from_secs(4);

struct Fixture {
    server: Server,
    cleanup: Cleanup,
    schema: String,
    target: TargetConfig,
}

async fn fixture(instance_endpoints: impl FnOnce(&Server) -> Vec<String>) -> Fixture {
    let server = Server::shared();
    let mut root = server.root().await;
    let mut cleanup = Cleanup::new(&server);
    let schema = format!("pp_rc_{}", suffix());
    cleanup.schema(&mut root, &schema).await;
    let secret = put_admin_secret(&server).await;
    let mut target = target(&server, &secret, &[&schema]);
    target.instance_endpoints = instance_endpoints(&server);
    Fixture { server, cleanup, schema, target }
}

/// `AT_ONCE` accounts for 127.0.0.1, each logged in with one open session that has read a row.
async fn accounts_with_sessions(f: &mut Fixture, grants: &MysqlGrants) -> Vec<(DbUsername, mysql_async::Conn)> {
    let users: Vec<DbUsername> = (0..AT_ONCE).map(|i| DbUsername::parse(&format!("rc{i}_{}", suffix())).expect("a valid user name")).collect();
    for user in &users {
        f.cleanup.account(user.as_str(), "127.0.0.1");
    }
    let created = join_all(users.iter().map(|user| {
        let request = AccountRequest { earlier_attempt: false, user: user.clone(), host: "127.0.0.1".into(), role: Role::Read };
        let target = &f.target;
        async move { grants.create_account(target, &request).await }
    }))
    .await;
    let mut sessions = Vec::new();
    for (user, password) in users.into_iter().zip(created) {
        let password = password.unwrap_or_else(|e| panic!("creating {user} while {AT_ONCE} are created at once: {e}"));
        let mut conn = f.server.login(user.as_str(), password.expose()).await.expect("the new account logs in");
        let _: Vec<(i32, String)> = conn.query(format!("SELECT id, v FROM `{}`.t", f.schema)).await.expect("the session reads");
        sessions.push((user, conn));
    }
    sessions
}

/// Ends every session at once and checks that each account is gone and each session dead, all
/// within `BOUND`.
async fn all_revoked_at_once_within_the_bound(mut f: Fixture) {
    let grants = grants_support::grants().with_connect_timeout(CONNECT_TIMEOUT);
    let sessions = accounts_with_sessions(&mut f, &grants).await;

    let started = Instant::now();
    let reports = join_all(sessions.iter().map(|(user, _)| {
        let (grants, target) = (&grants, &f.target);
        async move {
            let report = grants.revoke(target, user, "127.0.0.1").await;
            (report, started.elapsed())
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let slowest = reports.iter().map(|(_, took)| *took).max().unwrap_or_default();
    eprintln!(
        "{AT_ONCE} revocations at once (instance_endpoints {:?}): all answered in {} ms, slowest {} ms",
        f.target.instance_endpoints,
        elapsed.as_millis(),
        slowest.as_millis()
    );

    let failed: Vec<String> = reports.iter().zip(&sessions).filter_map(|((r, took), (user, _))| r.as_ref().err().map(|e| format!("{user} after {} ms: {e}", took.as_millis()))).collect();
    assert!(failed.is_empty(), "{} of {AT_ONCE} revocations failed:\n{}", failed.len(), failed.join("\n"));
    for ((report, _), (user, _)) in reports.iter().zip(&sessions) {
        let report = report.as_ref().expect("checked above");
        assert_eq!(report.outcome, RevokeOutcome::Dropped, "{user}: {report}");
        assert_eq!(report.killed, 1, "{user}: its one open session was killed: {report}");
    }
    assert!(slowest < BOUND, "the slowest of {AT_ONCE} revocations took {slowest:?}, more than {BOUND:?} (the connect timeout is {CONNECT_TIMEOUT:?})");

    // What the server says: no account left, no session of theirs in the process list, and
    // every session the people held is dead.
    let mut root = f.server.root().await;
    let names: Vec<String> = sessions.iter().map(|(u, _)| u.to_string()).collect();
    let placeholders = vec!["?"; names.len()].join(", ");
    let left: Vec<String> = root.exec(format!("SELECT User FROM mysql.user WHERE User IN ({placeholders})"), names.clone()).await.expect("read mysql.user");
    assert!(left.is_empty(), "accounts still on the server: {left:?}");
    let live: Vec<String> = root.exec(format!("SELECT USER FROM information_schema.PROCESSLIST WHERE USER IN ({placeholders})"), names).await.expect("read the process list");
    assert!(live.is_empty(), "sessions still in the process list: {live:?}");
    for (user, mut conn) in sessions {
        assert!(conn.query_drop("SELECT 1").await.is_err(), "{user}'s open session still answers");
    }
}

#[tokio::test]
async fn many_sessions_ending_at_once_on_a_target_without_instance_endpoints_are_all_revoked_in_time() {
    all_revoked_at_once_within_the_bound(fixture(|_| vec![]).await).await;
}

#[tokio::test]
async fn many_sessions_ending_at_once_with_the_writer_as_its_own_instance_endpoint_are_all_revoked_in_time() {
    all_revoked_at_once_within_the_bound(fixture(|server| vec![server.host.clone()]).await).await;
}
