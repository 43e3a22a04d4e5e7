//! The account host binding, for real: an account bound to one address logs in from a network
//! namespace holding that address and is refused from a namespace holding another. Needs root
//! (network namespaces) and the stand-ins (`make test`).
//!
//! The namespaces need a MariaDB address they can route to. When the shared stand-in also listens
//! on one (`POWERPOLE_TEST_MYSQL_NETNS_HOST`, e.g. 10.200.0.1 on `lo`: the change proposed for
//! scripts/standins.sh), the test uses it; otherwise it starts a private MariaDB bound to
//! 127.0.0.1 and the first namespace's gateway, because the shared one listens on 127.0.0.1 only
//! and restarting it would break other tests.

mod grants_support;

use std::net::Ipv4Addr;

use grants_support::netns::Lab;
use grants_support::private_mariadb::PrivateMariadb;
use grants_support::{put_admin_secret, suffix, target, Cleanup, Server};
use powerpole::domain::{DbUsername, Role};
use powerpole::grants::{AccountRequest, Grants, RevokeOutcome};

#[tokio::test]
async fn an_account_bound_to_an_address_logs_in_only_from_that_address() {
    let tag = suffix()[..6].to_string();
    let mut lab = Lab::new(&tag);
    let a = lab.namespace();
    let b = lab.namespace();
    let (a_addr, a_gateway) = (a.addr, a.host_addr);
    let (server, db_addr, _private) = database(a_gateway);
    let mut cleanup = Cleanup::new(&server);
    let schema = format!("pp_ns_{tag}");
    cleanup.schema(&mut server.root().await, &schema).await;
    let target = target(&server, &put_admin_secret(&server).await, &[&schema]);
    let user = DbUsername::parse(&format!("ns_{tag}")).unwrap();
    cleanup.account(user.as_str(), &a_addr.to_string());
    let grants = grants_support::grants();

    let password = grants
        .create_account(&target, &AccountRequest { user: user.clone(), host: a_addr.to_string(), role: Role::Read })
        .await
        .expect("create_account");

    // The command line the hand-over DM gives, run by a shell inside each namespace.
    let command = format!(
        "mariadb --no-defaults -h {db_addr} -P {} -u {user} -p'{}' -N -e 'SELECT CURRENT_USER(), USER()'",
        server.port,
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

/// The server the namespaces log in to, the address they reach it on, and the private server
/// to stop at the end if one was needed.
fn database(gateway: Ipv4Addr) -> (Server, Ipv4Addr, Option<PrivateMariadb>) {
    match std::env::var("POWERPOLE_TEST_MYSQL_NETNS_HOST").ok().and_then(|h| h.parse().ok()) {
        Some(shared_addr) => (Server::shared(), shared_addr, None),
        None => {
            let private = PrivateMariadb::start(&[Ipv4Addr::LOCALHOST, gateway]);
            (private.server.clone(), gateway, Some(private))
        }
    }
}
