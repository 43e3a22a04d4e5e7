//! `make simulate SEEDS=N [FIRST=S]`: plays N schedules of the deterministic simulator
//! (`powerpole::sim`) from seed S (default 0) and prints each failure with its seed and
//! schedule. `make simulate SEED=S` replays one seed and prints its schedule.
//!
//! `--break FIX` (`make simulate BREAK=FIX`) switches one race fix off in every schedule
//! (`powerpole::sim::fixes`): how many schedules that fix holds.
//!
//! Prints the work the schedules did (hand-overs, expiries, ...), then ends with
//! `N schedules, V invariant violations`; exits non-zero if V > 0.

use std::process::ExitCode;

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let broken: Vec<powerpole::sim::fixes::Fix> = match args.iter().position(|a| a == "--break").and_then(|i| args.get(i + 1)) {
        None => Vec::new(),
        Some(name) if name.is_empty() => Vec::new(),
        Some(name) => match powerpole::sim::fixes::Fix::parse(name) {
            Some(fix) => vec![fix],
            None => {
                let known: Vec<&str> = powerpole::sim::fixes::Fix::ALL.iter().map(|f| f.name()).collect();
                eprintln!("--break {name}: no such fix; the fixes are {}", known.join(", "));
                return ExitCode::from(2);
            }
        },
    };
    let (first, count, verbose) = match arg("--seed") {
        Some(seed) => (seed, 1, true),
        None => (arg("--first").unwrap_or(0), arg("--seeds").unwrap_or(1000), false),
    };
    let (violations, crashes, faults) = if verbose {
        let outcome = powerpole::sim::fixes::without(&broken, || powerpole::sim::run(first));
        println!("seed {first}:\n  {}", outcome.schedule.join("\n  "));
        println!("sessions:\n  {}", outcome.trails.join("\n  "));
        if !outcome.violations.is_empty() {
            eprintln!("{}\n", outcome.report());
        }
        println!("work done: {}", outcome.coverage);
        (outcome.violations.len(), outcome.crashes, outcome.faults)
    } else {
        // Spread over every core; a failure is reported with its seed, which replays alone.
        let batch = powerpole::sim::run_seeds_without(first, count, &broken);
        for outcome in &batch.failures {
            eprintln!("{}\n", outcome.report());
        }
        println!("work done: {}", batch.coverage);
        let seeds: Vec<String> = batch.failures.iter().map(|o| o.seed.to_string()).collect();
        if !broken.is_empty() {
            println!("with {} switched off: {} of {count} schedules failed (seeds {})", broken[0].name(), batch.failures.len(), seeds.join(" "));
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
