//! The deterministic simulator (src/sim) over the real workflow code: schedules, each a random mix
//! of people's actions (break-glass among them), faults, crashes, planted strays and clock skew,
//! must keep every invariant and do the work they are meant to exercise; a seed replays exactly;
//! a panicking task is a violation; and each race the simulator found has a regression test that
//! replays its seed with the fix on (it holds) and off (it fails).
//!
//! `make test` plays the first 1,000 schedules here; `make simulate SEEDS=10000` plays 10,000 and
//! prints the same counts.

use powerpole::sim::{self, fixes::Fix, Coverage};

/// Schedules played in `make test` (a few minutes in a debug build on 2 cores).
const SCHEDULES: u64 = 1_000;

/// The least work `SCHEDULES` schedules must do: about half of what the first 1,000 seeds did when
/// this was written (hand-overs 483, expiries 351, ends 122, revokes 60, extensions 7, break-glass
/// 136, reconcile removals 230 in 230 schedules with a stray, launched on request 374). A change
/// that stops requests being filed, approved, extended or ended, or reconcile removing strays,
/// fails here instead of passing every schedule.
const FLOORS: Coverage = Coverage {
    handovers: 240,
    expiries: 170,
    ends: 60,
    revokes: 30,
    extensions: 3,
    breakglass: 65,
    reconcile_removals: 115,
    stray_schedules: 115,
    launched_on_request: 180,
};

fn hold(seed: u64) {
    let outcome = sim::run(seed);
    assert!(outcome.violations.is_empty(), "{}", outcome.report());
}

/// `seed` keeps every invariant with every fix, and violates one with `fix` switched off.
fn guards(seed: u64, fix: Fix) {
    hold(seed);
    let broken = sim::fixes::without(&[fix], || sim::run(seed));
    assert!(!broken.violations.is_empty(), "seed {seed} holds even with {} switched off: it no longer guards that fix", fix.name());
}

#[test]
fn schedules_keep_every_invariant_and_do_the_work() {
    let batch = sim::run_seeds(0, SCHEDULES);
    assert_eq!(batch.schedules, SCHEDULES);
    let shown: Vec<String> = batch.failures.iter().take(3).map(|o| o.report()).collect();
    assert!(batch.failures.is_empty(), "{} of {SCHEDULES} schedules failed; the first:\n{}", batch.failures.len(), shown.join("\n\n"));
    let (crashes, faults) = (batch.crashes, batch.faults);
    assert!(crashes > SCHEDULES / 20 && faults > SCHEDULES, "only {crashes} crashes and {faults} faults were injected");
    let c = batch.coverage;
    let f = FLOORS;
    let below: Vec<String> = [
        ("hand-overs", c.handovers, f.handovers),
        ("expiries", c.expiries, f.expiries),
        ("ends", c.ends, f.ends),
        ("revokes", c.revokes, f.revokes),
        ("extensions", c.extensions, f.extensions),
        ("break-glass sessions", c.breakglass, f.breakglass),
        ("reconcile removals", c.reconcile_removals, f.reconcile_removals),
        ("schedules with a stray", c.stray_schedules, f.stray_schedules),
        ("launched on request", c.launched_on_request, f.launched_on_request),
    ]
    .iter()
    .filter(|(_, got, floor)| got < floor)
    .map(|(what, got, floor)| format!("{what}: {got} < {floor}"))
    .collect();
    assert!(below.is_empty(), "the schedules did too little work ({c}): {}", below.join("; "));
    // Every planted stray is removed by reconcile (the invariants also find any left).
    assert!(c.reconcile_removals >= c.stray_schedules, "{c}");
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [7, 1234, 99_999] {
        let (a, b) = (sim::run(seed), sim::run(seed));
        assert_eq!(a.schedule, b.schedule);
        assert_eq!(a.digest, b.digest, "seed {seed} did not replay the same history");
        assert_eq!((a.crashes, a.faults, a.coverage), (b.crashes, b.faults, b.coverage));
    }
}

/// A task that panics on the simulator's executor, detached and forgotten, is still recorded
/// (the schedule's report turns each into a violation naming the seed).
#[test]
fn a_detached_task_that_panics_is_recorded() {
    let executor = sim::Executor::new();
    let spawner = executor.spawner();
    let inner = spawner.clone();
    executor.block_on(async move {
        inner.detach(async { panic!("reconcile fell over") });
        inner.detach(async {});
    });
    assert_eq!(spawner.panics(), vec!["reconcile fell over".to_string()]);
}

// Each regression test replays a seed that keeps every invariant with its fix and violates one
// with the fix switched off (`sim::fixes`, a per-thread switch only the simulator's tests use).
// Counts of failing schedules with each fix off, of the first 2,000 seeds (`make simulate
// SEEDS=2000 BREAK=<fix>`), are in ARCHITECTURE.md. A seed whose race no longer happens fails
// its test here and is replaced.

/// A provisioning worker launched an instance whose answer came late; the session failed
/// meanwhile, and the teardown's tag lookup did not see the instance yet: it kept running after
/// the session closed. Fixed: a teardown that knows no instance looks again once the tag lookup
/// has settled after the last provisioning claim (`launch_window_end`). Off: 12 of 1,000 fail.
#[test]
fn race_late_launch_answer_leaves_no_instance_seed_3() {
    guards(3, Fix::LaunchWindowWait);
}

/// A worker stopped between `CREATE USER` and marking the account; the resumed worker refused the
/// unfinished account as not powerpole's, and the session's rollback never dropped it. Fixed: the
/// session's later attempt finishes the unfinished account it recorded
/// (`AccountRequest::earlier_attempt`). Off: 7 of 2,000 fail.
#[test]
fn race_stop_in_the_middle_of_creating_the_account_seed_181() {
    guards(181, Fix::EarlierAttempt);
}

/// A hand-over DM Slack took although its post answered with an error (the reply was lost): the
/// session failed and closed, and the DM, recorded nowhere, still read "ready" with a password.
/// Fixed: the teardown's outbox deletes the session's hand-over DMs it did not record
/// (`NoticeKind::RemoveStrayHandovers`). Off: 32 of 2,000 fail.
#[test]
fn race_lost_reply_of_the_handover_dm_leaves_no_stray_seed_91() {
    guards(91, Fix::RemoveStrayHandovers);
}

// Two workers crashed in a row while each held the teardown's claim, then a fixed 2 minutes and
// never renewed: the revoked account stayed usable past the bound (seed 6668 before the sweeper
// read again after a lost write and a wake-up). Fixed: the teardown's claim is the provisioning
// lease, renewed every third of it while the revoke and the terminate run. With the schedules as
// they are now, no seed of the first 12,000 catches it with the switch off (`renewed-teardown-claim`).

/// An extension asked for moments before the deadline, whose card could not be posted: its
/// withdrawal was written after the expiry's teardown, so the closed session's trail ended with
/// "extension denied". Fixed: only an active session's extension is withdrawn.
#[test]
fn race_extension_withdrawn_after_the_expiry_seed_5928() {
    guards(5928, Fix::WithdrawOnlyActive);
}

/// A provisioning whose launch answer was lost failed; its teardown found the bastion by its tag
/// and terminated it, then could not close, and the next attempt's tag lookup no longer showed
/// the terminated instance: the trail said "nothing had been created". Fixed: a bastion only its
/// tag knows is recorded in the session before it is terminated (by the teardown, and by a worker
/// undoing it while the session is torn down). Off: 1 of 2,000 fail. With the teardown's part
/// alone, 5 of 10,000 failed (a worker undoing a late launch died before its `undone` event).
#[test]
fn race_bastion_terminated_before_the_close_is_named_in_the_trail_seed_1992() {
    guards(1992, Fix::RecordBeforeTerminate);
}

// The undo of a worker that lost its claim (`workflow/abandon.rs`, `Fix::AbandonUndoes`) has no
// seed: switched off alone it fails none of the first 2,000 schedules (the teardown's wait for the
// tag lookup covers the instance it leaves behind).
