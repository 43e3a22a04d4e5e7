//! What the demo prints: a timeline (each line with the time since the start) and the checks,
//! each shown as it is made and once more in the summary at the end.

use std::time::Instant;

use chrono::{DateTime, Utc};

/// One thing the demo verified.
struct Check {
    what: String,
    ok: bool,
    detail: String,
}

/// The timeline and the checks of one run.
pub struct Report {
    started: Instant,
    started_at: DateTime<Utc>,
    checks: Vec<Check>,
}

impl Report {
    pub fn new() -> Self {
        Self { started: Instant::now(), started_at: Utc::now(), checks: Vec::new() }
    }

    /// Seconds since the start of the run.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Seconds from the start of the run to `at` (a time another system recorded).
    pub fn offset_of(&self, at: DateTime<Utc>) -> f64 {
        (at - self.started_at).num_milliseconds() as f64 / 1000.0
    }

    /// A new section of the timeline.
    pub fn step(&self, title: &str) {
        println!();
        println!("{} ━━ {title}", stamp(self.elapsed()));
    }

    /// A line of the timeline, now.
    pub fn say(&self, line: impl AsRef<str>) {
        println!("{}    {}", stamp(self.elapsed()), line.as_ref());
    }

    /// A line of the timeline at a time another system recorded.
    pub fn say_at(&self, at: DateTime<Utc>, line: impl AsRef<str>) {
        println!("{}    {}", stamp(self.offset_of(at)), line.as_ref());
    }

    /// Lines quoted under the previous one (a message, a query result), without times.
    pub fn quote(&self, text: &str) {
        for line in text.lines() {
            println!("{}      │ {line}", " ".repeat(STAMP_WIDTH));
        }
    }

    /// Records a check and prints it at once.
    pub fn check(&mut self, what: &str, ok: bool, detail: impl Into<String>) -> bool {
        let detail = detail.into();
        let mark = if ok { "✓" } else { "✗" };
        match detail.split_once('\n') {
            None if detail.is_empty() => println!("{}    {mark} {what}", stamp(self.elapsed())),
            None => println!("{}    {mark} {what} ({detail})", stamp(self.elapsed())),
            Some(_) => {
                println!("{}    {mark} {what}:", stamp(self.elapsed()));
                self.quote(&detail);
            }
        }
        self.checks.push(Check { what: what.to_owned(), ok, detail });
        ok
    }

    /// A step that could not be done at all: a failed check with the reason.
    pub fn fail(&mut self, what: &str, error: &anyhow::Error) {
        self.check(what, false, format!("{error:#}"));
    }

    pub fn all_passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    /// Every check, once more, and the verdict.
    pub fn summary(&self) {
        let passed = self.checks.iter().filter(|c| c.ok).count();
        println!();
        println!("{} ━━ Summary: {passed} of {} checks held", stamp(self.elapsed()), self.checks.len());
        for c in &self.checks {
            let mark = if c.ok { "✓" } else { "✗" };
            let shown = if c.ok || c.detail.is_empty() { String::new() } else { format!(": {}", c.detail) };
            let mut lines = shown.lines();
            println!("  {mark} {}{}", c.what, lines.next().unwrap_or_default());
            lines.for_each(|line| println!("      {line}"));
        }
        println!();
        if self.all_passed() {
            println!("make demo: every check held.");
        } else {
            println!("make demo: FAILED ({} check(s) did not hold).", self.checks.len() - passed);
        }
    }
}

const STAMP_WIDTH: usize = 9;

fn stamp(seconds: f64) -> String {
    format!("[{:>6.1}s]", seconds)
}
