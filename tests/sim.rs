//! The deterministic simulator (src/sim) over the real workflow code: 10,000 schedules, each a
//! random mix of people's actions, faults, crashes and clock skew, must keep every invariant; a
//! seed replays exactly; and each race the simulator found has a regression test replaying it.

use powerpole::sim;

fn hold(seed: u64) {
    let outcome = sim::run(seed);
    assert!(outcome.violations.is_empty(), "{}", outcome.report());
}

#[test]
fn ten_thousand_schedules_keep_every_invariant() {
    let batch = sim::run_seeds(0, 10_000);
    assert_eq!(batch.schedules, 10_000);
    let shown: Vec<String> = batch.failures.iter().take(3).map(|o| o.report()).collect();
    assert!(batch.failures.is_empty(), "{} of 10000 schedules failed; the first:\n{}", batch.failures.len(), shown.join("\n\n"));
    // The schedules did exercise crashes and faults (else they prove little).
    let (crashes, faults) = (batch.crashes, batch.faults);
    assert!(crashes > 500 && faults > 10_000, "only {crashes} crashes and {faults} faults were injected");
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [7, 1234, 99_999] {
        let (a, b) = (sim::run(seed), sim::run(seed));
        assert_eq!(a.schedule, b.schedule);
        assert_eq!(a.digest, b.digest, "seed {seed} did not replay the same history");
        assert_eq!((a.crashes, a.faults), (b.crashes, b.faults));
    }
}

// Each regression test below replays a seed that fails when its fix is broken on purpose (checked
// by breaking it and running the 10,000 schedules, then restoring it; the counts are in
// ARCHITECTURE.md). A seed whose race no longer happens is replaced, not kept as a test that
// cannot fail.

/// A provisioning worker launched an instance whose answer came late; the session failed
/// meanwhile, and the teardown's tag lookup did not see the instance yet: it kept running after
/// the session closed. Fixed: a teardown that knows no instance looks again once the tag lookup
/// has settled after the last provisioning claim (`launch_window_end`). Without that wait, 31 of
/// 10,000 schedules fail, this seed first.
#[test]
fn race_late_launch_answer_leaves_no_instance_seed_117() {
    hold(117);
}

/// `/powerpole end` while a worker provisions: the worker loses its claim when its launch
/// answers, and the teardown did not know the instance yet. Fixed twice over: the worker that
/// loses its claim terminates what it made (workflow/abandon.rs), and the teardown waits for the
/// tag lookup to settle. With both broken, 47 of 10,000 schedules fail, this one among them
/// (either fix alone holds it).
#[test]
fn race_end_during_provisioning_leaves_no_instance_seed_466() {
    hold(466);
}

/// A worker stopped between `CREATE USER` and marking the account; the resumed worker refused the
/// unfinished account as not powerpole's, and the session's rollback never dropped it. Fixed: the
/// session's later attempt finishes the unfinished account it recorded
/// (`AccountRequest::earlier_attempt`). Without it, 13 of 10,000 schedules fail, this seed first.
#[test]
fn race_stop_in_the_middle_of_creating_the_account_seed_768() {
    hold(768);
}

/// A hand-over DM Slack took although its post answered with an error (the reply was lost): the
/// session failed and closed, and the DM, recorded nowhere, still read "ready" with a password.
/// Fixed: the teardown's outbox looks the session's hand-over DMs up in the requester's DM
/// history and deletes any it did not record (`NoticeKind::RemoveStrayHandovers`). Without it,
/// 80 of 10,000 schedules fail, this seed first.
#[test]
fn race_lost_reply_of_the_handover_dm_leaves_no_stray_seed_21() {
    hold(21);
}
