//! `make simulate SEEDS=N [FIRST=S]`: plays N schedules of the deterministic simulator
//! (`powerpole::sim`) from seed S (default 0) and prints each failure with its seed and
//! schedule. `make simulate SEED=S` replays one seed and prints its schedule.
//!
//! Ends with `N schedules, V invariant violations`; exits non-zero if V > 0.

use std::process::ExitCode;

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

fn main() -> ExitCode {
    let (first, count, verbose) = match arg("--seed") {
        Some(seed) => (seed, 1, true),
        None => (arg("--first").unwrap_or(0), arg("--seeds").unwrap_or(1000), false),
    };
    let (mut violations, mut crashes, mut faults) = (0usize, 0u64, 0u64);
    for seed in first..first + count {
        let outcome = powerpole::sim::run(seed);
        crashes += outcome.crashes;
        faults += outcome.faults;
        if verbose {
            println!("seed {seed}:\n  {}", outcome.schedule.join("\n  "));
            println!("sessions:\n  {}", outcome.trails.join("\n  "));
        }
        if !outcome.violations.is_empty() {
            violations += outcome.violations.len();
            eprintln!("{}\n", outcome.report());
        }
    }
    println!("{crashes} crashes and {faults} faults injected");
    println!("{count} schedules, {violations} invariant violations");
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
