//! Revocation at scale (issue 15 item 3): 10,000 live sessions, 1,000 of them with the same
//! deadline second, swept by the real sweeper loop and lifecycle over the in-memory adapters on
//! virtual time, with Slack taking one message per second per channel (`powerpole::sim::scale`).
//! Prints how long after its deadline each account was dropped (p99), how long the notices took
//! to drain through the outbox, and what the due index read.

use powerpole::sim::scale::{self, Scale};

/// Prints one figure line, ending with `ok` or `MISSED` against its goal.
fn figure(name: &str, value: f64, unit: &str, goal: &str, met: bool) {
    println!("figure: {name} = {value:.3} {unit} (goal {goal}) {}", if met { "ok" } else { "MISSED" });
}

fn main() {
    let report = scale::run(Scale { live: 10_000, due: 1_000 });
    let p99 = report.p99();
    println!("revocation on virtual time: in-memory adapters, every call 1 ms, no connection or rate limits but Slack's; the real adapters' figures follow");
    figure("revocation_lag_p99_virtual_time", p99.as_secs_f64(), "s", "<= 2 s", p99.as_secs_f64() <= 2.0);
    println!("  instances terminated {}, of them before their account {}", report.terminated, report.terminated_before_drop);
    figure("revocation_dropped_virtual_time", report.lags.len() as f64, "of 1000", "1000", report.lags.len() == 1000);
    figure("revocation_due_read_max_virtual_time", f64::from(report.max_items_per_read), "items of 10000 live", "<= 2000", report.max_items_per_read <= 2000);
    figure("revocation_idle_read_items_virtual_time", report.idle_items as f64, "items", "0", report.idle_items == 0);
    let owed = report.world.store.all().iter().flat_map(|s| s.outbox.iter()).filter(|n| n.sent_at.is_none()).count();
    println!("  rate-limited answers {}", report.world.slack.rate_limited.load(std::sync::atomic::Ordering::Relaxed));
    figure("notices_undelivered_virtual_time", owed as f64, "", "0", owed == 0);
}
