//! The in-memory database models the admin connections of the real adapter (issue 23): a pool
//! of `POOL_MAX` per node and instance, a connection that takes time to open, a wait for one
//! that is given up after the connect timeout. Two hundred deadlines in the same second on a
//! target whose only instance is its writer are revoked on time with the fix, and starve with it
//! switched off: the model finds this class of bug.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use powerpole::config::Config;
use powerpole::memory::CONNECT_TIMEOUT;
use powerpole::sim::scale::{self, Scale, ScaleReport};
use powerpole::sim::CONFIG;

const SCALE: Scale = Scale { live: 400, due: 200 };

/// The simulator's configuration with billing's instances as given (no reader endpoint, which
/// would require them).
fn config(instance_endpoints: Option<&str>) -> Arc<Config> {
    let mut text: String = CONFIG.lines().filter(|l| !l.starts_with("reader_endpoint") && !l.starts_with("instance_endpoints")).map(|l| format!("{l}\n")).collect();
    if let Some(list) = instance_endpoints {
        text = text.replace("[targets.billing]\n", &format!("[targets.billing]\ninstance_endpoints = {list}\n"));
    }
    Arc::new(Config::from_toml_str(&text).expect("a valid configuration"))
}

fn run(instance_endpoints: Option<&str>, fix: bool) -> ScaleReport {
    scale::run_with(SCALE, config(instance_endpoints), |w| w.grants.set_pool_fix(fix))
}

fn assert_on_time(report: &ScaleReport) {
    let timeouts = report.world.grants.connect_timeouts.load(Ordering::Relaxed);
    assert_eq!(report.lags.len(), SCALE.due, "every due account was dropped: {:?}", report.undropped);
    assert_eq!(timeouts, 0, "no admin connection wait timed out");
    assert!(report.p99() <= Duration::from_secs(2), "revocation lag p99 {:?} (max {:?})", report.p99(), report.lags.last());
}

#[test]
fn two_hundred_revocations_at_once_on_a_target_whose_only_instance_is_the_writer_are_on_time() {
    let report = run(None, true);
    eprintln!("fix on, instance_endpoints empty: p99 {:?}, max {:?}", report.p99(), report.lags.last());
    assert_on_time(&report);
    let report = run(Some(r#"["billing.cluster-abc.eu-west-1.rds.amazonaws.com"]"#), true);
    eprintln!("fix on, the writer as its instance endpoint: p99 {:?}, max {:?}", report.p99(), report.lags.last());
    assert_on_time(&report);
}

#[test]
fn with_the_fix_switched_off_the_model_starves_revocations_until_the_connect_timeout() {
    let report = run(None, false);
    let timeouts = report.world.grants.connect_timeouts.load(Ordering::Relaxed);
    eprintln!("fix off, instance_endpoints empty: {timeouts} connect timeouts, p99 {:?}, max {:?}", report.p99(), report.lags.last());
    assert!(timeouts > 0, "revocations holding every connection of the writer's pool wait for one more until the connect timeout");
    assert!(report.p99() > CONNECT_TIMEOUT, "the starved revocations are late by more than the connect timeout: p99 {:?}", report.p99());
}
