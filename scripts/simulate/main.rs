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
    let (violations, crashes, faults) = if verbose {
        let outcome = powerpole::sim::run(first);
        println!("seed {first}:\n  {}", outcome.schedule.join("\n  "));
        println!("sessions:\n  {}", outcome.trails.join("\n  "));
        if !outcome.violations.is_empty() {
            eprintln!("{}\n", outcome.report());
        }
        (outcome.violations.len(), outcome.crashes, outcome.faults)
    } else {
        // Spread over every core; a failure is reported with its seed, which replays alone.
        let batch = powerpole::sim::run_seeds(first, count);
        for outcome in &batch.failures {
            eprintln!("{}\n", outcome.report());
        }
        (batch.failures.iter().map(|o| o.violations.len()).sum(), batch.crashes, batch.faults)
    };
    println!("{crashes} crashes and {faults} faults injected");
    println!("{count} schedules, {violations} invariant violations");
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
