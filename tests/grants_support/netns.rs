//! Test hosts: network namespaces on the stand-ins' bridge (`scripts/netns.sh`, ppbr0 =
//! 10.200.0.1/16 on this machine only), so that a test connects to MariaDB *from* a chosen
//! address and MariaDB sees that address, as it sees a bastion's private IP. Each host is
//! removed on drop, also when the test fails.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Output};

use rand::RngExt;

/// One namespace on the bridge, holding one address.
pub struct TestHost {
    pub name: String,
    pub addr: Ipv4Addr,
}

impl TestHost {
    /// A namespace named `name` (unique per run) at a random free-looking 10.200.x.y.
    pub fn add(name: &str) -> TestHost {
        let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        assert_eq!(uid.as_deref().ok(), Some("0"), "test hosts need root (network namespaces, veth pairs)");
        let mut rng = rand::rng();
        // 10.200.0.x is left to the host side; 10.200.100+ keeps clear of hand-picked addresses.
        let addr = Ipv4Addr::new(10, 200, rng.random_range(100..=250), rng.random_range(2..=254));
        // Constructed before the script runs, so that drop removes whatever part of it exists.
        let host = TestHost { name: name.to_string(), addr };
        let out = netns().args(["add", name, &addr.to_string()]).output().expect("scripts/netns.sh runs");
        assert!(out.status.success(), "scripts/netns.sh add {name} {addr}: {}", String::from_utf8_lossy(&out.stderr));
        host
    }

    /// Runs a shell command line inside the namespace, exactly as a person would type it.
    pub fn sh(&self, command_line: &str) -> Output {
        Command::new("ip").args(["netns", "exec", &self.name, "sh", "-c", command_line]).output().expect("ip netns exec runs")
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = netns().args(["del", &self.name]).output();
    }
}

fn netns() -> Command {
    Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/netns.sh"))
}
