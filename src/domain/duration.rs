//! Durations as people type them (`30m`, `2h`, `1h30m`) and the limits they must respect.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A positive whole number of seconds, written and read as `1d2h30m15s`-style text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccessDuration {
    secs: u64,
}

/// A duration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("no duration given: write one like 30m, 2h or 1h30m")]
    Empty,
    #[error("`{0}` is not a duration: write one like 30m, 2h or 1h30m (units d, h, m, s, largest first)")]
    Invalid(String),
    #[error("a duration must be longer than zero")]
    Zero,
    #[error("{requested} exceeds the {what} of {max}")]
    TooLong { requested: AccessDuration, max: AccessDuration, what: &'static str },
}

const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
/// Nothing powerpole schedules or keeps is longer than ten years; this keeps arithmetic far from overflow.
const CEILING_SECS: u64 = 3_660 * 86_400;

impl AccessDuration {
    pub fn from_secs(secs: u64) -> Result<AccessDuration, DurationError> {
        match secs {
            0 => Err(DurationError::Zero),
            s if s > CEILING_SECS => Err(DurationError::Invalid(format!("{s}s"))),
            s => Ok(AccessDuration { secs: s }),
        }
    }

    /// For constants: `None` when zero or beyond the ceiling.
    pub const fn const_minutes(minutes: u64) -> Option<AccessDuration> {
        if minutes == 0 || minutes > CEILING_SECS / 60 {
            None
        } else {
            Some(AccessDuration { secs: minutes * 60 })
        }
    }

    pub fn from_minutes(minutes: u64) -> Result<AccessDuration, DurationError> {
        Self::from_secs(minutes.saturating_mul(60))
    }

    pub fn as_secs(self) -> u64 {
        self.secs
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.secs)
    }

    pub fn to_chrono(self) -> chrono::Duration {
        // Bounded by CEILING_SECS, so the conversion cannot fail.
        chrono::Duration::seconds(self.secs as i64)
    }

    /// Refuses `self` when it is longer than `max`; `what` names the limit ("maximum of target `billing`").
    pub fn check_within(self, max: AccessDuration, what: &'static str) -> Result<AccessDuration, DurationError> {
        if self > max {
            Err(DurationError::TooLong { requested: self, max, what })
        } else {
            Ok(self)
        }
    }

    /// `self + other`, for extensions (bounded like any duration).
    pub fn plus(self, other: AccessDuration) -> Result<AccessDuration, DurationError> {
        Self::from_secs(self.secs.saturating_add(other.secs))
    }
}

impl FromStr for AccessDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim().to_ascii_lowercase();
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        let invalid = || DurationError::Invalid(text.trim().to_string());
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut last_unit_rank = None;
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let rank = UNITS.iter().position(|(u, _)| *u == c).ok_or_else(invalid)?;
            // Units must appear once each, largest first: `30m2h` is a typo, not 2h30m.
            if digits.is_empty() || digits.len() > 6 || last_unit_rank.is_some_and(|r| rank <= r) {
                return Err(invalid());
            }
            let n: u64 = digits.parse().map_err(|_| invalid())?;
            total = total.saturating_add(n.saturating_mul(UNITS[rank].1));
            digits.clear();
            last_unit_rank = Some(rank);
        }
        if !digits.is_empty() || last_unit_rank.is_none() {
            return Err(invalid());
        }
        AccessDuration::from_secs(total).map_err(|e| match e {
            DurationError::Zero => DurationError::Zero,
            _ => invalid(),
        })
    }
}

impl fmt::Display for AccessDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.secs;
        for (unit, size) in UNITS {
            if rest >= size {
                write!(f, "{}{}", rest / size, unit)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl TryFrom<String> for AccessDuration {
    type Error = DurationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<AccessDuration> for String {
    fn from(value: AccessDuration) -> String {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> AccessDuration {
        s.parse().unwrap()
    }

    #[test]
    fn common_forms_parse() {
        assert_eq!(d("30m").as_secs(), 1800);
        assert_eq!(d("2h").as_secs(), 7200);
        assert_eq!(d("1h30m").as_secs(), 5400);
        assert_eq!(d(" 1H30M ").as_secs(), 5400);
        assert_eq!(d("3d").as_secs(), 3 * 86_400);
        assert_eq!(d("90s").as_secs(), 90);
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(d("90m").to_string(), "1h30m");
        assert_eq!(d("1d").to_string(), "1d");
        assert_eq!(d("3661s").to_string(), "1h1m1s");
    }

    #[test]
    fn bad_forms_say_how_to_write_one() {
        for bad in ["", "abc", "30", "m", "30x", "30m2h", "1h1h", "-5m", "1.5h", "9999999h"] {
            let err = bad.parse::<AccessDuration>().unwrap_err();
            assert!(err.to_string().contains("30m") || matches!(err, DurationError::Empty), "{bad}: {err}");
        }
        assert_eq!("0m".parse::<AccessDuration>(), Err(DurationError::Zero));
    }

    #[test]
    fn limits_name_both_values() {
        let err = d("3d").check_within(d("12h"), "global limit").unwrap_err();
        assert_eq!(err.to_string(), "3d exceeds the global limit of 12h");
        assert_eq!(d("2h").check_within(d("2h"), "x"), Ok(d("2h")));
    }

    proptest! {
        #[test]
        fn display_round_trips(secs in 1u64..=CEILING_SECS) {
            let value = AccessDuration::from_secs(secs).unwrap();
            prop_assert_eq!(value.to_string().parse::<AccessDuration>(), Ok(value));
        }
    }
}
