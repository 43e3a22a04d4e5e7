//! The account host binding, for real: an account bound to one address logs in from a test host
//! (a network namespace on the stand-ins' bridge) holding that address, and is refused from a
//! test host holding another. Needs root and the stand-ins with the bridge (`make test`; the
//! shared MariaDB listens on 10.200.0.1 too, see scripts/netns.sh).

mod grants_support;

use std::net::Ipv4Addr;

use grants_support::netns::TestHost;
use grants_support::{put_admin_secret, required_env, suffix, target, Cleanup, Server};
use powerpole::domain::{DbUsername, Role};
use powerpole::grants::{AccountRequest, Grants, RevokeOutcome};

/// Where a test host reaches the shared MariaDB: `POWERPOLE_TEST_MYSQL_BRIDGE_ADDR` (ip:port).
fn bridge_addr() -> (Ipv4Addr, u16) {
    let text = required_env("POWERPOLE_TEST_MYSQL_BRIDGE_ADDR");
    let parsed = text.rsplit_once(':').and_then(|(ip, port)| Some((ip.parse().ok()?, port.parse().ok()?)));
    parsed.unwrap_or_else(|| panic!("POWERPOLE_TEST_MYSQL_BRIDGE_ADDR=`{text}` is not ip:port; restart the stand-ins with `scripts/standins.sh start`"))
}

#[tokio::test]
async fn an_account_bound_to_an_address_logs_in_only_from_that_address() {
    let (db_ip, db_port) = bridge_addr();
    let tag = suffix();
    let a = TestHost::add(&format!("pp-grants-{tag}-a"));
    let b = TestHost::add(&format!("pp-grants-{tag}-b"));
    let server = Server::shared();
    let mut cleanup = Cleanup::new(&server);
    let schema = format!("pp_ns_{tag}");
    cleanup.schema(&mut server.root().await, &schema).await;
    let target = target(&server, &put_admin_secret(&server).await, &[&schema]);
    let user = DbUsername::parse(&format!("ns_{tag}")).expect("a valid user name");
    cleanup.account(user.as_str(), &a.addr.to_string());
    let grants = grants_support::grants();

    let password = grants
        .create_account(&target, &AccountRequest { earlier_attempt: false, user: user.clone(), host: a.addr.to_string(), role: Role::Read })
        .await
        .expect("create_account");

    // The command line the hand-over DM gives, run by a shell on each test host.
    let command = format!(
        "mariadb --no-defaults -h {db_ip} -P {db_port} -u {user} -p'{}' -N -e 'SELECT CURRENT_USER(), USER()'",
        password.expose()
    );
    let from_a = a.sh(&command);
    let from_b = b.sh(&command);

    let out_a = String::from_utf8_lossy(&from_a.stdout);
    assert!(from_a.status.success(), "from {}: {}", a.addr, String::from_utf8_lossy(&from_a.stderr));
    assert!(out_a.contains(&format!("{user}@{}", a.addr)), "the server saw the test host's address: {out_a}");
    let err_b = String::from_utf8_lossy(&from_b.stderr);
    assert!(!from_b.status.success(), "from {} the login must fail", b.addr);
    // The 10.11 client tries TLS first, so it wraps the refusal: "ERROR 2002 ... 1130 - Host ...".
    assert!(err_b.contains("1130 - Host") || err_b.contains("ERROR 1130") || err_b.contains("ERROR 1045"), "{err_b}");
    assert!(err_b.contains(&b.addr.to_string()), "the refusal names the other address: {err_b}");

    let report = grants.revoke(&target, &user, &a.addr.to_string()).await.expect("revoke");
    assert_eq!(report.outcome, RevokeOutcome::Dropped);
    assert!(!a.sh(&command).status.success(), "after revoke the bound address is refused too");
}
