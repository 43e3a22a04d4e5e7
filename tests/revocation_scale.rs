//! Revocation at scale (issue 15 item 3), at a size `make test` can afford: 2,000 live sessions,
//! 200 of them with the same deadline second, the real sweeper loop (`workflow::sweep_loop`) and
//! lifecycle over the in-memory adapters on the simulator's virtual time, and a Slack that takes
//! one message per second per channel. `benches/revocation.rs` runs the same world at 10,000 /
//! 1,000 and prints the figure.

use std::sync::atomic::Ordering;
use std::time::Duration;

use powerpole::domain::State;
use powerpole::sim::scale::{self, Scale};

#[test]
fn two_hundred_deadlines_in_one_second_are_all_revoked_within_two_seconds() {
    let report = scale::run(Scale { live: 2_000, due: 200 });

    // Every account due was dropped, p99 within 2 s of its deadline, and every instance
    // terminated after its account.
    assert_eq!(report.lags.len(), 200, "every due account was dropped: {:?}", report.undropped);
    assert!(report.p99() <= Duration::from_secs(2), "revocation lag p99 {:?} (max {:?})", report.p99(), report.lags.last());
    assert_eq!(report.terminated, 200, "every due instance was terminated");
    assert!(report.terminated_before_drop == 0, "{} instances were terminated before their account was dropped", report.terminated_before_drop);

    // The notices went through the outbox, under Slack's limit, and all arrived in the end.
    assert!(report.world.slack.rate_limited.load(Ordering::Relaxed) > 0, "the per-channel limit was reached (else this proves nothing about it)");
    let sessions = report.world.store.all();
    let closed: Vec<_> = sessions.iter().filter(|s| s.state.is_closed()).collect();
    assert_eq!(closed.len(), 200);
    for s in &closed {
        assert!(s.outbox.iter().all(|n| n.sent_at.is_some()), "{}: notices left undelivered: {:?}", s.id, s.outbox);
    }
    let told = report.world.slack.messages().iter().filter(|m| m.versions[0].contains("has ended")).count();
    assert_eq!(told, 200, "each requester is told once");

    // Nothing else was touched, and the sweeper read only what was due.
    let untouched = sessions.iter().filter(|s| s.state == State::Active && s.version == 0).count();
    assert_eq!(untouched, 1_800, "the sessions not due were never written");
    assert!(report.idle_reads > 0 && report.idle_items == 0, "ticks before the deadline read {} item(s) in {} reads of 2,000 live sessions", report.idle_items, report.idle_reads);
    assert!(report.max_items_per_read <= 2 * 200, "one due read returned {} items: more than the due sessions and those in flight", report.max_items_per_read);
}
