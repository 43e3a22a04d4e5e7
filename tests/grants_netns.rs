//! The account host binding, for real: an account bound to one address logs in from a network
//! namespace holding that address and is refused from a namespace holding another. Needs root
//! (network namespaces) and the stand-ins (`make test`), and starts a private MariaDB bound to
//! the namespaces' gateway, because the shared stand-in listens on 127.0.0.1 only.

mod grants_support;

use std::net::Ipv4Addr;

use mysql_async::prelude::Queryable;

use grants_support::netns::Lab;
use grants_support::private_mariadb::PrivateMariadb;
use grants_support::{put_admin_secret, suffix, target};
use powerpole::domain::{DbUsername, Role};
use powerpole::grants::{AccountRequest, Grants, RevokeOutcome};

#[tokio::test]
async fn an_account_bound_to_an_address_logs_in_only_from_that_address() {
    let tag = suffix()[..6].to_string();
    let mut lab = Lab::new(&tag);
    let a = lab.namespace();
    let b = lab.namespace();
    let (a_addr, a_gateway) = (a.addr, a.host_addr);
    let db = PrivateMariadb::start(&[Ipv4Addr::LOCALHOST, a_gateway]);
    let schema = format!("pp_ns_{tag}");
    let mut root = db.server.root().await;
    root.query_drop(format!("CREATE DATABASE `{schema}`")).await.unwrap();
    let target = target(&db.server, &put_admin_secret(&db.server).await, &[&schema]);
    let user = DbUsername::parse(&format!("ns_{tag}")).unwrap();
    let grants = grants_support::grants();

    let password = grants
        .create_account(&target, &AccountRequest { user: user.clone(), host: a_addr.to_string(), role: Role::Read })
        .await
        .expect("create_account");

    // The command line the hand-over DM gives, run by a shell inside each namespace.
    let command = format!(
        "mariadb --no-defaults -h {a_gateway} -P {} -u {user} -p'{}' -N -e 'SELECT CURRENT_USER(), USER()'",
        db.server.port,
        password.expose()
    );
    let from_a = a.sh(&command);
    let from_b = b.sh(&command);

    let out_a = String::from_utf8_lossy(&from_a.stdout);
    assert!(from_a.status.success(), "from {}: {}", a.addr, String::from_utf8_lossy(&from_a.stderr));
    assert!(out_a.contains(&format!("{user}@{a_addr}")), "the server saw the namespace's address: {out_a}");
    let err_b = String::from_utf8_lossy(&from_b.stderr);
    assert!(!from_b.status.success(), "from {} the login must fail", b.addr);
    // The 10.11 client tries TLS first, so it wraps the refusal: "ERROR 2002 ... 1130 - Host ...".
    assert!(err_b.contains("1130 - Host") || err_b.contains("ERROR 1130") || err_b.contains("ERROR 1045"), "{err_b}");
    assert!(err_b.contains(&b.addr.to_string()), "the refusal names the other address: {err_b}");

    let report = grants.revoke(&target, &user, &a_addr.to_string()).await.expect("revoke");
    assert_eq!(report.outcome, RevokeOutcome::Dropped);
    assert!(!a.sh(&command).status.success(), "after revoke the bound address is refused too");
}
