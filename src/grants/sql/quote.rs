//! Turning values that were already validated into SQL text.
//!
//! Validation happens first, in the domain types ([`DbUsername`], [`SchemaName`]) and in
//! [`Account::new`] for hosts; quoting here is the second wall, written so that it stays correct
//! even for a value that slipped through: string literals double `'` and refuse `\` and control
//! characters (whose meaning depends on the server's `NO_BACKSLASH_ESCAPES` mode, so no escaping
//! of them is right on every server), identifiers double `` ` ``.

use std::fmt;
use std::net::Ipv4Addr;

use crate::config::AccountHost;
use crate::domain::{DbUsername, SchemaName};

/// Text that cannot be put in a SQL string literal safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a value for SQL contains a backslash or control character, which powerpole never quotes")]
pub struct Unquotable;

/// `'text'` with `'` doubled; `\` and control characters are refused.
pub fn string_literal(text: &str) -> Result<String, Unquotable> {
    if text.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(Unquotable);
    }
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// `` `name` `` with `` ` `` doubled.
pub fn identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The database part of `GRANT ... ON db.*`. MySQL and MariaDB read `_` and `%` there as `LIKE`
/// wildcards, so `billing_v2` would also cover `billingXv2`; escaping them as `\_` and `\%`
/// makes the grant cover exactly the named schema. (Inside backquotes a backslash is an ordinary
/// character; the grant tables interpret it.)
pub fn grant_schema(schema: &SchemaName) -> String {
    let escaped = schema.as_str().replace('_', "\\_").replace('%', "\\%");
    format!("{}.*", identifier(&escaped))
}

/// A host the account may not be bound to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an account host powerpole binds accounts to: use an IPv4 address or a CIDR from /16 to /32 such as 10.1.0.0/24 (no `%`)")]
pub struct InvalidHost(pub String);

/// `'user'@'host'`: a per-person account whose parts were validated.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    user: DbUsername,
    host: String,
    /// `'user'@'host'`, quoted once here so that no later step can fall back to anything else.
    quoted: String,
}

impl Account {
    /// Validates the host the way target config does ([`AccountHost::parse`]): an IPv4 address,
    /// a CIDR (normalised to `address/netmask`, the form both MariaDB and MySQL 8 accept; MySQL
    /// 8.0.23+ would also take `/16`, MariaDB would not), an address/netmask, or a dotted prefix
    /// ending in `%`. Never `%` alone, never a name.
    pub fn new(user: DbUsername, host: &str) -> Result<Account, InvalidHost> {
        let invalid = || InvalidHost(host.to_string());
        let Ok(AccountHost::Pattern(pattern)) = AccountHost::parse(host) else {
            return Err(invalid());
        };
        let quoted = format!(
            "{}@{}",
            string_literal(user.as_str()).map_err(|_| invalid())?,
            string_literal(&pattern).map_err(|_| invalid())?
        );
        Ok(Account { user, host: pattern, quoted })
    }

    pub fn user(&self) -> &DbUsername {
        &self.user
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// `'user'@'host'` for a statement.
    pub fn sql(&self) -> &str {
        &self.quoted
    }

    /// Whether a connection listed in `information_schema.PROCESSLIST` with `HOST` =
    /// `client` (`10.0.1.5:51234`) belongs to this account. A client address that cannot be read
    /// (a host name, when the server resolves names) is [`ClientMatch::Unreadable`]: the caller
    /// decides, and never kills it when the user name could belong to another account.
    pub fn client_match(&self, client: &str) -> ClientMatch {
        let Some(ip) = client_ip(client) else {
            return ClientMatch::Unreadable;
        };
        let yes = if let Some((base, mask)) = self.host.split_once('/') {
            match (base.parse::<Ipv4Addr>(), mask.parse::<Ipv4Addr>()) {
                (Ok(base), Ok(mask)) => u32::from(ip) & u32::from(mask) == u32::from(base) & u32::from(mask),
                _ => return ClientMatch::Unreadable,
            }
        } else {
            match self.host.parse::<Ipv4Addr>() {
                Ok(h) => h == ip,
                Err(_) => return ClientMatch::Unreadable,
            }
        };
        if yes {
            ClientMatch::Yes
        } else {
            ClientMatch::No
        }
    }
}

/// Whether a process-list entry is a session of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMatch {
    Yes,
    No,
    /// The client address could not be read as an IPv4 address.
    Unreadable,
}

/// The IPv4 address of a `PROCESSLIST.HOST` value (`ip:port`, `::ffff:ip:port`, or bare `ip`).
fn client_ip(client: &str) -> Option<Ipv4Addr> {
    let without_port = match client.rsplit_once(':') {
        Some((addr, port)) if port.bytes().all(|b| b.is_ascii_digit()) => addr,
        _ => client,
    };
    let without_prefix = without_port.trim_start_matches("::ffff:").trim_start_matches('[').trim_end_matches(']');
    without_prefix.parse().ok()
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'@'{}'", self.user, self.host)
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'@'{}'", self.user, self.host)
    }
}
