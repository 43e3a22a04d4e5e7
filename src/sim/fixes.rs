//! Test-only switches that turn one race fix off, so that each regression seed can be shown to
//! fail without its fix (`tests/sim.rs`, `make simulate BREAK=<fix>`). A switch is per thread:
//! the simulator plays a schedule on one thread, so switching a fix off for one schedule changes
//! nothing in any other test or schedule running beside it. Nothing outside the simulator and its
//! tests ever switches a fix off; in production every check reads "on".

use std::cell::Cell;

/// The fixes a regression seed guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// A teardown that knows no instance waits for the tag lookup to settle after the last
    /// provisioning claim (`launch_window_end`) before it concludes there is none.
    LaunchWindowWait,
    /// A worker that loses its claim terminates the instance and drops the account it made
    /// (`workflow/abandon.rs`).
    AbandonUndoes,
    /// A later attempt finishes the unfinished account the session recorded
    /// (`AccountRequest::earlier_attempt`).
    EarlierAttempt,
    /// The teardown deletes hand-over DMs it did not record (`NoticeKind::RemoveStrayHandovers`).
    RemoveStrayHandovers,
    /// A teardown's claim is the provisioning lease, renewed while it runs (off: a fixed 2-minute
    /// claim, never renewed, as before seed 6668), so crashes in a row cost one lease each.
    RenewedTeardownClaim,
    /// An extension whose card could not be posted is withdrawn only while the session is still
    /// active, so a withdrawal that lands after the expiry does not end the trail (seed 5928).
    WithdrawOnlyActive,
    /// A bastion only its tag knows is recorded in its session before it is terminated, by the
    /// teardown that found it and by a worker undoing it while the session is torn down, so that
    /// the trail names it even when that worker dies before it can close or record `undone`.
    RecordBeforeTerminate,
}

impl Fix {
    pub const ALL: [Fix; 7] = [
        Fix::LaunchWindowWait,
        Fix::AbandonUndoes,
        Fix::EarlierAttempt,
        Fix::RemoveStrayHandovers,
        Fix::RenewedTeardownClaim,
        Fix::WithdrawOnlyActive,
        Fix::RecordBeforeTerminate,
    ];

    fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The name `make simulate BREAK=...` takes.
    pub fn name(self) -> &'static str {
        match self {
            Fix::LaunchWindowWait => "launch-window-wait",
            Fix::AbandonUndoes => "abandon-undoes",
            Fix::EarlierAttempt => "earlier-attempt",
            Fix::RemoveStrayHandovers => "remove-stray-handovers",
            Fix::RenewedTeardownClaim => "renewed-teardown-claim",
            Fix::WithdrawOnlyActive => "withdraw-only-active",
            Fix::RecordBeforeTerminate => "record-before-terminate",
        }
    }

    pub fn parse(name: &str) -> Option<Fix> {
        Fix::ALL.into_iter().find(|f| f.name() == name)
    }
}

thread_local! {
    static OFF: Cell<u32> = const { Cell::new(0) };
}

/// Whether `fix` is on for this thread (always, unless a simulator test switched it off).
pub fn on(fix: Fix) -> bool {
    OFF.with(|off| off.get() & fix.bit() == 0)
}

/// Runs `f` with `fixes` switched off on this thread, and switches them back on after.
pub fn without<T>(fixes: &[Fix], f: impl FnOnce() -> T) -> T {
    struct Restore(u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            OFF.with(|off| off.set(self.0));
        }
    }
    let _restore = Restore(OFF.with(|off| off.replace(off.get() | fixes.iter().fold(0, |m, f| m | f.bit()))));
    f()
}

/// The fixes switched off on this thread, to carry over to a thread that plays a schedule.
pub(crate) fn current() -> u32 {
    OFF.with(Cell::get)
}

/// Switches off on this thread what [`current`] read on another.
pub(crate) fn set(off: u32) {
    OFF.with(|o| o.set(off));
}
