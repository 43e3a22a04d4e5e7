//! Revocation at scale (issue 15 item 3): 10,000 live sessions, 1,000 of them with the same
//! deadline second, swept by the real sweeper loop and lifecycle over the in-memory adapters on
//! virtual time, with Slack taking one message per second per channel (`powerpole::sim::scale`).
//! Prints how long after its deadline each account was dropped (p99), how long the notices took
//! to drain through the outbox, and what the due index read.

use powerpole::sim::scale::{self, Scale};

fn main() {
    let report = scale::run(Scale { live: 10_000, due: 1_000 });
    let p99 = report.p99();
    println!("figure: revocation_lag_p99 = {:.3} s (goal 2 s)", p99.as_secs_f64());
    println!(
        "figure: revocation_dropped = {} of 1000 (goal 1000); instances terminated {}, of them before their account {}",
        report.lags.len(),
        report.terminated,
        report.terminated_before_drop
    );
    println!(
        "figure: revocation_due_read_max = {} items (goal <= 2000, of 10000 live); idle reads {} read {} items (goal 0)",
        report.max_items_per_read, report.idle_reads, report.idle_items
    );
    let owed = report.world.store.all().iter().flat_map(|s| s.outbox.iter()).filter(|n| n.sent_at.is_none()).count();
    println!("figure: notices_undelivered = {owed} (goal 0); rate-limited answers {}", report.world.slack.rate_limited.load(std::sync::atomic::Ordering::Relaxed));
}
