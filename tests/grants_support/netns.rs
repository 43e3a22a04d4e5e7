//! Network namespaces joined to this host by veth pairs, so that a test can connect to a
//! database from a real, distinct source address. Only 10.200.0.0/16, only on this machine;
//! every interface and namespace is removed on drop, also when the test fails.
//!
//! Namespace `n` gets the subnet 10.200.S.0/24: the host end of its veth pair holds 10.200.S.1,
//! the namespace end 10.200.S.2, and the namespace's default route is the host end. The host
//! delivers packets for any of its own addresses that arrive on a veth, so a namespace reaches
//! a server bound to another namespace's host-end address too.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::process::{Command, Output};

use rand::RngExt;

/// One namespace and the host end of its veth pair.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub name: String,
    pub host_if: String,
    /// The namespace's own address (10.200.S.2).
    pub addr: Ipv4Addr,
    /// The host end's address (10.200.S.1).
    pub host_addr: Ipv4Addr,
}

impl Namespace {
    /// Runs a shell command line inside the namespace, exactly as a person would type it.
    pub fn sh(&self, command_line: &str) -> Output {
        Command::new("ip").args(["netns", "exec", &self.name, "sh", "-c", command_line]).output().expect("ip netns exec runs")
    }
}

/// Namespaces made by one test; all removed on drop.
pub struct Lab {
    tag: String,
    namespaces: Vec<Namespace>,
}

impl Lab {
    /// Fails at once, with the reason, when this process cannot create namespaces.
    pub fn new(tag: &str) -> Lab {
        let id = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        assert_eq!(id.as_deref().ok(), Some("0"), "the network namespace tests need root (ip netns, veth pairs)");
        Lab { tag: tag.to_string(), namespaces: vec![] }
    }

    /// A new namespace on a 10.200.S.0/24 that no interface of this host uses yet.
    pub fn namespace(&mut self) -> Namespace {
        let index = self.namespaces.len();
        let subnet = free_subnet();
        let ns = Namespace {
            name: format!("pp-{}-{index}", self.tag),
            host_if: format!("pp{}{index}h", self.tag),
            addr: Ipv4Addr::new(10, 200, subnet, 2),
            host_addr: Ipv4Addr::new(10, 200, subnet, 1),
        };
        let ns_if = format!("pp{}{index}n", self.tag);
        // Pushed before the commands run, so that drop removes whatever part of it exists.
        self.namespaces.push(ns);
        let ns = &self.namespaces[index];
        let host_cidr = format!("{}/24", ns.host_addr);
        let ns_cidr = format!("{}/24", ns.addr);
        let gateway = ns.host_addr.to_string();
        ip(&["netns", "add", &ns.name]);
        ip(&["link", "add", &ns.host_if, "type", "veth", "peer", "name", &ns_if]);
        ip(&["link", "set", &ns_if, "netns", &ns.name]);
        ip(&["addr", "add", &host_cidr, "dev", &ns.host_if]);
        ip(&["link", "set", &ns.host_if, "up"]);
        ip(&["-n", &ns.name, "addr", "add", &ns_cidr, "dev", &ns_if]);
        ip(&["-n", &ns.name, "link", "set", &ns_if, "up"]);
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ip(&["-n", &ns.name, "route", "add", "default", "via", &gateway]);
        ns.clone()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            // Deleting the namespace deletes its veth end, and with it the pair.
            let _ = Command::new("ip").args(["netns", "del", &ns.name]).output();
            let _ = Command::new("ip").args(["link", "del", &ns.host_if]).output();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("the ip command runs");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// A third octet S such that no address of this host is in 10.200.S.0/24 (0 is left for the
/// stand-ins' own 10.200.0.1).
fn free_subnet() -> u8 {
    let out = Command::new("ip").args(["-4", "-o", "addr", "show"]).output().expect("ip addr runs");
    let used: HashSet<u8> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("10.200."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect();
    let mut rng = rand::rng();
    loop {
        let s: u8 = rng.random_range(1..=254);
        if !used.contains(&s) {
            return s;
        }
    }
}
