//! The MySQL user name of a requester, derived from their Slack e-mail address.
//!
//! # The rule
//!
//! 1. The address is trimmed and its **ASCII** letters lower-cased (mail systems treat local parts
//!    case-insensitively in practice, and Slack lower-cases them). Only ASCII is folded: Unicode case
//!    folding maps some non-ASCII characters onto ASCII letters (`K`, the Kelvin sign, becomes `k`),
//!    which would give a distinct address a plain name that belongs to someone else. It must be
//!    `local@domain` with a non-empty domain and a local part of 1 to 64 characters (RFC 5321) with
//!    no whitespace or control characters; the local part is everything before the *last* `@`.
//! 2. The local part is used **as is** when it is already a safe name: 1 to 32 characters from
//!    `[a-z0-9_]`, starting with a letter or digit, not a reserved account name (`root`, `admin`,
//!    `rdsadmin`, ...), not ending in the suffix shape of rule 3, and the domain is a *home domain*
//!    (see [`UsernamePolicy`]). `alice@example.com` becomes `alice`.
//! 3. Otherwise the name is `<base>_<h>`: `<base>` is the local part with every run of characters
//!    outside `[a-z0-9]` turned into one `_`, trimmed of `_`, cut to 15 characters (or `user` when
//!    nothing is left), and `<h>` is the first 16 hex digits (64 bits) of SHA-256 of the whole
//!    folded address. `alice.smith@example.com` becomes `alice_smith_` + 16 hex digits: at most
//!    15 + 1 + 16 = 32 characters. A local part with any non-ASCII character always takes this form.
//!
//! Why this set: `[a-z0-9_]` needs no quoting in any shell, MySQL client, or log parser, cannot
//! carry SQL or LIKE metacharacters (`%` and `_` in a *user* name are literal in MySQL, but we keep
//! `_` because it is so common), and 32 characters is MySQL 8's user name limit (MariaDB allows 80).
//!
//! Distinctness: names from rule 2 never have the rule 3 suffix shape, so the two rules cannot meet;
//! rule 2 is the identity on (ASCII-folded) local parts; rule 3 names differ unless two addresses
//! share a base *and* a 64-bit hash prefix, which no search finds (about 2^32 work for *some* pair,
//! 2^64 for a chosen victim). Even that is not relied on: the store reserves each name for one
//! Slack user id with a conditional write, so a collision is refused, not shared. Addresses in different home domains with the same local part are
//! the same person by definition of "home domain"; an address outside the home domains always
//! gets the hashed form, so `alice@contractor.io` never becomes the employee `alice`.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The longest name any supported server accepts (MySQL 8 / Aurora MySQL 3).
pub const MAX_LEN: usize = 32;
/// 64 bits of hash: a birthday search for any colliding pair costs ~2^32 SHA-256 of addresses
/// *and* a mail account at each; a name taken from a chosen person costs ~2^64.
const HASH_HEX: usize = 16;
const BASE_LEN: usize = MAX_LEN - HASH_HEX - 1;

/// Account names that exist on MySQL, MariaDB or RDS for the system itself, or that an operator
/// would mistake for one. A requester whose local part is one of these gets the hashed form.
const RESERVED: [&str; 14] = [
    "root", "admin", "administrator", "rdsadmin", "rdsrepladmin", "rdsproxyadmin", "rds_superuser_role", "mysql", "mariadb",
    "sys", "public", "mariadb_sys", "powerpole", "event_scheduler",
];

/// Which e-mail domains belong to the organisation. An empty list makes no domain a home domain
/// (everyone gets the hashed form); `config check` requires the list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsernamePolicy {
    pub home_domains: Vec<String>,
}

impl UsernamePolicy {
    fn is_home(&self, domain: &str) -> bool {
        self.home_domains.iter().any(|d| d.trim().eq_ignore_ascii_case(domain))
    }
}

/// A MySQL user name that is safe to put in SQL, a shell command and a log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DbUsername(String);

/// An e-mail address that cannot become a user name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("the Slack profile has no e-mail address; ask a Slack admin to add one (powerpole names the database account after it)")]
    Empty,
    #[error("`{0}` is not an e-mail address of the form local@domain")]
    NotAnAddress(String),
    #[error("the e-mail local part is longer than 64 characters")]
    TooLong,
    #[error("the e-mail address contains whitespace or control characters")]
    BadCharacters,
    #[error("`{0}` is not a valid database user name: 1 to 32 characters from a-z, 0-9 and _")]
    InvalidName(String),
}

impl DbUsername {
    /// Derives the user name from a Slack e-mail address by the rule in the module docs.
    pub fn from_slack_email(email: &str, policy: &UsernamePolicy) -> Result<DbUsername, UsernameError> {
        Self::derive(email, policy, HASH_HEX)
    }

    /// The rule with a narrower hash, so that tests can force two addresses onto one name and
    /// check that the store's reservation refuses the second person. Never used outside tests.
    #[doc(hidden)]
    pub fn from_slack_email_with_hash_width(email: &str, policy: &UsernamePolicy, hex_digits: usize) -> Result<DbUsername, UsernameError> {
        Self::derive(email, policy, hex_digits.clamp(1, HASH_HEX))
    }

    fn derive(email: &str, policy: &UsernamePolicy, hex_digits: usize) -> Result<DbUsername, UsernameError> {
        let trimmed = email.trim();
        if trimmed.is_empty() {
            return Err(UsernameError::Empty);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UsernameError::BadCharacters);
        }
        let (original_local, _) = trimmed.rsplit_once('@').ok_or_else(|| UsernameError::NotAnAddress(trimmed.to_string()))?;
        if original_local.chars().count() > 64 {
            return Err(UsernameError::TooLong);
        }
        let address = trimmed.to_ascii_lowercase();
        let (local, domain) = address.rsplit_once('@').ok_or_else(|| UsernameError::NotAnAddress(address.clone()))?;
        if local.is_empty() || domain.is_empty() {
            return Err(UsernameError::NotAnAddress(address.clone()));
        }
        if policy.is_home(domain) && is_plain(local) {
            return Ok(DbUsername(local.to_string()));
        }
        Ok(DbUsername(format!("{}_{}", base(local), short_hash(&address, hex_digits))))
    }

    /// Accepts a name that is already valid (read back from the store or from `mysql.user`).
    pub fn parse(name: &str) -> Result<DbUsername, UsernameError> {
        let ok = (1..=MAX_LEN).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(DbUsername(name.to_string()))
        } else {
            Err(UsernameError::InvalidName(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_plain(local: &str) -> bool {
    let first_ok = local.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok
        && local.len() <= MAX_LEN
        && local.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !RESERVED.contains(&local)
        && !has_suffix_shape(local)
}

/// `..._` followed by exactly 16 lowercase hex digits at the end: the shape of rule 3.
fn has_suffix_shape(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > HASH_HEX
        && bytes[bytes.len() - HASH_HEX - 1] == b'_'
        && bytes[bytes.len() - HASH_HEX..].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn base(local: &str) -> String {
    let mut out = String::new();
    for c in local.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed: String = out.trim_matches('_').chars().take(BASE_LEN).collect();
    let trimmed = trimmed.trim_end_matches('_');
    if trimmed.is_empty() {
        "user".to_string()
    } else {
        trimmed.to_string()
    }
}

fn short_hash(address: &str, hex_digits: usize) -> String {
    let digest = Sha256::digest(address.as_bytes());
    hex::encode(digest)[..hex_digits].to_string()
}

impl fmt::Display for DbUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DbUsername {
    type Error = UsernameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        DbUsername::parse(&value)
    }
}

impl From<DbUsername> for String {
    fn from(value: DbUsername) -> String {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(email: &str) -> String {
        DbUsername::from_slack_email(email, &home(&["example.com"])).unwrap().to_string()
    }

    fn home(domains: &[&str]) -> UsernamePolicy {
        UsernamePolicy { home_domains: domains.iter().map(|d| d.to_string()).collect() }
    }

    #[test]
    fn a_plain_local_part_is_the_name() {
        assert_eq!(name("alice@example.com"), "alice");
        assert_eq!(name("  Bob_2@Example.COM "), "bob_2");
    }

    #[test]
    fn other_characters_become_underscores_with_a_stable_suffix() {
        let n = name("alice.smith@example.com");
        assert!(n.starts_with("alice_smith_") && n.len() == "alice_smith_".len() + 16, "{n}");
        assert_eq!(n, name("alice.smith@example.com"), "deterministic");
        assert_ne!(n, name("alice-smith@example.com"), "near-duplicates differ");
        assert_ne!(name("alice_smith@example.com"), n);
    }

    #[test]
    fn reserved_and_suffix_shaped_names_are_hashed() {
        assert!(name("root@example.com").starts_with("root_"));
        assert!(name("admin@example.com").starts_with("admin_"));
        let lookalike = name("al_0123456789abcdef@example.com");
        assert_ne!(lookalike, "al_0123456789abcdef");
    }

    #[test]
    fn foreign_domains_never_take_a_home_name() {
        let policy = home(&["example.com"]);
        let employee = DbUsername::from_slack_email("alice@example.com", &policy).unwrap();
        let contractor = DbUsername::from_slack_email("alice@contractor.io", &policy).unwrap();
        assert_eq!(employee.as_str(), "alice");
        assert_ne!(employee, contractor);
        assert!(contractor.as_str().starts_with("alice_"));
    }

    #[test]
    fn unusable_addresses_are_errors() {
        let p = UsernamePolicy::default();
        assert_eq!(DbUsername::from_slack_email("", &p), Err(UsernameError::Empty));
        assert!(matches!(DbUsername::from_slack_email("no-at-sign", &p), Err(UsernameError::NotAnAddress(_))));
        assert!(matches!(DbUsername::from_slack_email("@example.com", &p), Err(UsernameError::NotAnAddress(_))));
        assert!(matches!(DbUsername::from_slack_email("alice@", &p), Err(UsernameError::NotAnAddress(_))));
        assert_eq!(DbUsername::from_slack_email("al ice@example.com", &p), Err(UsernameError::BadCharacters));
        assert_eq!(DbUsername::from_slack_email(&format!("{}@example.com", "a".repeat(65)), &p), Err(UsernameError::TooLong));
    }

    #[test]
    fn hostile_local_parts_give_safe_names() {
        for local in ["';DROP/**/USER/**/root;--", "`x`", "%", "_", "\\", "a%b", "ä.ö", "日本", "\"quoted\"", &"x".repeat(64)] {
            let n = name(&format!("{local}@example.com"));
            assert!(DbUsername::parse(&n).is_ok(), "{local:?} -> {n:?}");
        }
    }

    #[test]
    fn only_ascii_is_case_folded() {
        // U+212A KELVIN SIGN lower-cases (in Unicode) to `k`: it must not become `kate`.
        let kelvin = name("\u{212A}ate@example.com");
        assert_ne!(kelvin, "kate");
        assert_ne!(kelvin, name("kate@example.com"));
        assert!(kelvin.len() <= MAX_LEN);
        // Any non-ASCII local part is hashed, even one with nothing to fold.
        assert!(name("jos\u{e9}@example.com").starts_with("jos_"));
        assert_eq!(name("KATE@EXAMPLE.COM"), "kate");
    }

    #[test]
    fn no_home_domains_means_everyone_is_hashed() {
        let n = DbUsername::from_slack_email("alice@example.com", &UsernamePolicy::default()).unwrap();
        assert_ne!(n.as_str(), "alice");
    }

    #[test]
    fn the_longest_names_fit_mysql_8() {
        let n = name(&format!("{}@example.com", "a.".repeat(30)));
        assert_eq!(n.len(), MAX_LEN, "{n}");
    }

    proptest! {
        #[test]
        fn every_address_maps_to_a_valid_deterministic_name(local in "[^@\\s\\p{Cc}]{1,64}", domain in "[a-z]{1,10}\\.[a-z]{2,3}") {
            let email = format!("{local}@{domain}");
            let policy = home(&["example.com"]);
            let a = DbUsername::from_slack_email(&email, &policy).unwrap();
            prop_assert!(DbUsername::parse(a.as_str()).is_ok());
            prop_assert!(a.as_str().len() <= MAX_LEN);
            prop_assert_eq!(a, DbUsername::from_slack_email(&email, &policy).unwrap());
        }

        #[test]
        fn distinct_local_parts_give_distinct_names(a in "[a-z0-9._+'%-]{1,40}", b in "[a-z0-9._+'%-]{1,40}") {
            prop_assume!(a != b);
            prop_assert_ne!(name(&format!("{a}@example.com")), name(&format!("{b}@example.com")));
        }

        /// Distinct addresses (after ASCII case folding, the only folding there is), anything
        /// from any script, home domain or not: never one name.
        #[test]
        fn distinct_addresses_never_share_a_name(
            a in "[^@\\s\\p{Cc}]{1,20}", b in "[^@\\s\\p{Cc}]{1,20}",
            da in "(example\\.com|contractor\\.io|EXAMPLE\\.com)", db in "(example\\.com|contractor\\.io)",
        ) {
            let (x, y) = (format!("{a}@{da}"), format!("{b}@{db}"));
            prop_assume!(x.to_ascii_lowercase() != y.to_ascii_lowercase());
            let policy = home(&["example.com"]);
            // Two home addresses with one local part are one person (that is what home means).
            let same_person = a.to_ascii_lowercase() == b.to_ascii_lowercase() && policy.is_home(&da.to_ascii_lowercase()) && policy.is_home(&db);
            prop_assume!(!same_person);
            let (nx, ny) = (DbUsername::from_slack_email(&x, &policy).unwrap(), DbUsername::from_slack_email(&y, &policy).unwrap());
            prop_assert_ne!(nx, ny, "{} and {}", x, y);
        }
    }
}
