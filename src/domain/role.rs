//! Roles (READ, DML, DDL) and the privileges they grant.
//!
//! Only schema-level privileges that cannot be used to escalate exist as [`Privilege`] values, so a
//! dangerous privilege (ALL, GRANT OPTION, SUPER, FILE, PROCESS, SHUTDOWN, CREATE USER, ...) cannot
//! be represented, let alone granted. Scopes are never part of a privilege: grants are always
//! `ON `schema`.*` for the target's configured schemas, never `*.*`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The level of access a requester asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    /// Read-only: `SELECT`, `SHOW VIEW`. Served by the reader endpoint when the target has one.
    Read,
    /// READ plus `INSERT`, `UPDATE`, `DELETE`.
    Dml,
    /// DML plus schema changes.
    Ddl,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Read, Role::Dml, Role::Ddl];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "READ",
            Role::Dml => "DML",
            Role::Ddl => "DDL",
        }
    }

    /// The privileges of this role when the target does not override them (SPEC.md, "Roles").
    pub fn default_privileges(self) -> PrivilegeSet {
        use Privilege::*;
        let read = [Select, ShowView];
        let dml = [Insert, Update, Delete];
        // No TRIGGER or CREATE VIEW by default: a trigger or view outlives the session with the
        // temporary account as its DEFINER. On MariaDB dropping the account then breaks every
        // application write through the trigger (error 1449); on MySQL 8 the drop fails (4006).
        // Either way the account is kept locked until someone rewrites the objects. A target that
        // needs them lists them in `[targets.X.privileges] DDL`, knowing that.
        let ddl = [Create, Alter, Drop, Index, References];
        let set: BTreeSet<Privilege> = match self {
            Role::Read => read.into_iter().collect(),
            Role::Dml => read.into_iter().chain(dml).collect(),
            Role::Ddl => read.into_iter().chain(dml).chain(ddl).collect(),
        };
        PrivilegeSet(set)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not READ, DML or DDL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: use READ, DML or DDL")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "READ" => Ok(Role::Read),
            "DML" => Ok(Role::Dml),
            "DDL" => Ok(Role::Ddl),
            _ => Err(UnknownRole(s.trim().to_string())),
        }
    }
}

/// A schema-level privilege powerpole is willing to grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Privilege {
    Select,
    ShowView,
    Insert,
    Update,
    Delete,
    Create,
    Alter,
    Drop,
    Index,
    References,
    CreateView,
    Trigger,
    Execute,
    CreateRoutine,
    AlterRoutine,
    Event,
    LockTables,
    CreateTemporaryTables,
}

impl Privilege {
    const NAMES: [(Privilege, &'static str); 18] = [
        (Privilege::Select, "SELECT"),
        (Privilege::ShowView, "SHOW VIEW"),
        (Privilege::Insert, "INSERT"),
        (Privilege::Update, "UPDATE"),
        (Privilege::Delete, "DELETE"),
        (Privilege::Create, "CREATE"),
        (Privilege::Alter, "ALTER"),
        (Privilege::Drop, "DROP"),
        (Privilege::Index, "INDEX"),
        (Privilege::References, "REFERENCES"),
        (Privilege::CreateView, "CREATE VIEW"),
        (Privilege::Trigger, "TRIGGER"),
        (Privilege::Execute, "EXECUTE"),
        (Privilege::CreateRoutine, "CREATE ROUTINE"),
        (Privilege::AlterRoutine, "ALTER ROUTINE"),
        (Privilege::Event, "EVENT"),
        (Privilege::LockTables, "LOCK TABLES"),
        (Privilege::CreateTemporaryTables, "CREATE TEMPORARY TABLES"),
    ];

    /// The SQL keyword(s), exactly as they appear in a `GRANT` statement.
    pub fn sql(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(p, _)| *p == self)
            .map(|(_, n)| *n)
            .unwrap_or("SELECT")
    }

    /// Parses a privilege name from config (case and spacing insensitive: `show_view`, `Show View`).
    pub fn parse(name: &str) -> Result<Privilege, PrivilegeRefusal> {
        let normal = name.trim().replace(['_', '-'], " ").split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_uppercase();
        if let Some((p, _)) = Self::NAMES.iter().find(|(_, n)| *n == normal) {
            return Ok(*p);
        }
        if normal.contains("*.*") || normal.contains(" ON ") || normal.starts_with("ON ") || normal.contains('.') {
            return Err(PrivilegeRefusal::Scoped);
        }
        const FORBIDDEN: [&str; 14] = [
            "ALL", "ALL PRIVILEGES", "GRANT OPTION", "SUPER", "FILE", "PROCESS", "SHUTDOWN", "CREATE USER",
            "RELOAD", "REPLICATION SLAVE", "REPLICATION CLIENT", "CREATE TABLESPACE", "SHOW DATABASES", "PROXY",
        ];
        if FORBIDDEN.contains(&normal.as_str()) || normal.contains("ADMIN") || normal.starts_with("REPLICATION") {
            return Err(PrivilegeRefusal::Dangerous);
        }
        Err(PrivilegeRefusal::Unknown)
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql())
    }
}

/// Why a privilege name from config was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegeRefusal {
    /// Not a privilege powerpole knows.
    Unknown,
    /// Global or escalating (ALL, GRANT OPTION, SUPER, ...): never granted.
    Dangerous,
    /// Carries a scope (`*.*`, `ON db.*`): scopes come from the target's schemas only.
    Scoped,
}

/// A privilege override in a target's config that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivilegeError {
    #[error("target `{target}`, role {role}: `{name}` is not a privilege powerpole grants; use schema privileges such as SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER")]
    Unknown { target: String, role: Role, name: String },
    #[error("target `{target}`, role {role}: `{name}` is never granted (global or escalating privilege); remove it")]
    Dangerous { target: String, role: Role, name: String },
    #[error("target `{target}`, role {role}: `{name}` names a scope; privileges apply to the target's `schemas` only, never `*.*`; write the bare privilege")]
    Scoped { target: String, role: Role, name: String },
    #[error("target `{target}`, role {role}: the privilege list is empty; give at least one privilege or remove the override")]
    Empty { target: String, role: Role },
}

/// A non-empty set of grantable privileges, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegeSet(BTreeSet<Privilege>);

impl PrivilegeSet {
    /// Validates a per-target override. Every name is checked; the first refusal is returned.
    pub fn parse_override(target: &str, role: Role, names: &[String]) -> Result<PrivilegeSet, PrivilegeError> {
        Self::parse_override_all(target, role, names).map_err(|mut errors| errors.remove(0))
    }

    /// Like [`PrivilegeSet::parse_override`], but returns every problem (for `config check`).
    pub fn parse_override_all(target: &str, role: Role, names: &[String]) -> Result<PrivilegeSet, Vec<PrivilegeError>> {
        if names.is_empty() {
            return Err(vec![PrivilegeError::Empty { target: target.to_string(), role }]);
        }
        let mut set = BTreeSet::new();
        let mut errors = Vec::new();
        for name in names {
            let (target, name) = (target.to_string(), name.clone());
            match Privilege::parse(&name) {
                Ok(p) => {
                    set.insert(p);
                }
                Err(PrivilegeRefusal::Unknown) => errors.push(PrivilegeError::Unknown { target, role, name }),
                Err(PrivilegeRefusal::Dangerous) => errors.push(PrivilegeError::Dangerous { target, role, name }),
                Err(PrivilegeRefusal::Scoped) => errors.push(PrivilegeError::Scoped { target, role, name }),
            }
        }
        if errors.is_empty() {
            Ok(PrivilegeSet(set))
        } else {
            Err(errors)
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Privilege> + '_ {
        self.0.iter().copied()
    }

    pub fn contains(&self, p: Privilege) -> bool {
        self.0.contains(&p)
    }

    /// `SELECT, SHOW VIEW` as it goes into a GRANT statement.
    pub fn to_sql_list(&self) -> String {
        self.0.iter().map(|p| p.sql()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn roles_parse_case_insensitively_and_reject_others() {
        assert_eq!("read".parse::<Role>().unwrap(), Role::Read);
        assert_eq!(" DdL ".parse::<Role>().unwrap(), Role::Ddl);
        let err = "admin".parse::<Role>().unwrap_err();
        assert_eq!(err.to_string(), "unknown role `admin`: use READ, DML or DDL");
    }

    #[test]
    fn default_privileges_match_the_spec_and_nest() {
        assert_eq!(Role::Read.default_privileges().to_sql_list(), "SELECT, SHOW VIEW");
        assert_eq!(Role::Dml.default_privileges().to_sql_list(), "SELECT, SHOW VIEW, INSERT, UPDATE, DELETE");
        let ddl = Role::Ddl.default_privileges();
        for p in Role::Dml.default_privileges().iter() {
            assert!(ddl.contains(p));
        }
        for p in [Privilege::Create, Privilege::Alter, Privilege::Drop, Privilege::Index, Privilege::References] {
            assert!(ddl.contains(p), "{p}");
        }
        // Objects with a DEFINER outlive the person's account and break or block its drop: a
        // target that wants them lists them in its own DDL set.
        for p in [Privilege::CreateView, Privilege::Trigger] {
            assert!(!ddl.contains(p), "{p} is not a default DDL privilege");
        }
        assert_eq!(ddl.iter().count(), 10);
    }

    #[test]
    fn overrides_accept_spelling_variants() {
        let set = PrivilegeSet::parse_override("billing", Role::Read, &names(&["select", "show_view", "Lock  Tables"])).unwrap();
        assert_eq!(set.to_sql_list(), "SELECT, SHOW VIEW, LOCK TABLES");
    }

    #[test]
    fn dangerous_privileges_are_refused_naming_target_and_privilege() {
        for bad in ["ALL", "all privileges", "GRANT OPTION", "SUPER", "FILE", "PROCESS", "SHUTDOWN", "CREATE USER", "RELOAD", "replication slave", "SYSTEM_VARIABLES_ADMIN"] {
            let err = PrivilegeSet::parse_override("billing", Role::Ddl, &names(&["SELECT", bad])).unwrap_err();
            assert!(matches!(err, PrivilegeError::Dangerous { .. }), "{bad}: {err:?}");
            let text = err.to_string();
            assert!(text.contains("billing") && text.contains(bad), "{text}");
        }
    }

    #[test]
    fn scoped_and_unknown_privileges_are_refused() {
        let err = PrivilegeSet::parse_override("t", Role::Read, &names(&["SELECT ON *.*"])).unwrap_err();
        assert!(matches!(err, PrivilegeError::Scoped { .. }));
        let err = PrivilegeSet::parse_override("t", Role::Read, &names(&["*.*"])).unwrap_err();
        assert!(matches!(err, PrivilegeError::Scoped { .. }));
        let err = PrivilegeSet::parse_override("t", Role::Read, &names(&["SELEKT"])).unwrap_err();
        assert!(matches!(err, PrivilegeError::Unknown { .. }));
        let err = PrivilegeSet::parse_override("t", Role::Read, &[]).unwrap_err();
        assert!(matches!(err, PrivilegeError::Empty { .. }));
    }

    #[test]
    fn every_problem_is_reported() {
        let errs = PrivilegeSet::parse_override_all("t", Role::Dml, &names(&["SUPER", "SELEKT", "SELECT"])).unwrap_err();
        assert_eq!(errs.len(), 2);
    }
}
