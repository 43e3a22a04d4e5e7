//! `powerpole db admin-sql`: the SQL an operator runs once (as the cluster's master user) to
//! create the account powerpole administers a target with, with the least it needs.
//!
//! [`admin_privileges`] is the one list of what the admin account holds and why; change it there
//! (and only there) when powerpole starts issuing a statement that needs more.

use std::collections::BTreeSet;

use super::sql::{grant_schema, marker_role, string_literal, Unquotable};
use super::Password;
use crate::config::{Dialect, KillStatement, TargetConfig};
use crate::domain::DeploymentId;
use crate::domain::Privilege;

/// One `GRANT` of the admin account: what, on what, and why powerpole needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPrivilege {
    pub privileges: Vec<String>,
    /// `*.*`, `` `schema`.* ``, `mysql.user`, `PROCEDURE mysql.rds_kill`.
    pub on: String,
    pub with_grant_option: bool,
    pub why: &'static str,
}

fn grant(privileges: &[&str], on: &str, why: &'static str) -> AdminPrivilege {
    AdminPrivilege { privileges: privileges.iter().map(|p| p.to_string()).collect(), on: on.to_string(), with_grant_option: false, why }
}

/// Everything the admin account of `target` holds, by the statements `grants/sql` sends.
pub fn admin_privileges(target: &TargetConfig) -> Vec<AdminPrivilege> {
    let mut out = vec![grant(
        &["CREATE USER", "PROCESS"],
        "*.*",
        "CREATE USER: create, alter, lock and drop the per-person accounts and revoke everything from them; PROCESS: see their connections to kill them",
    )];
    match (target.kill_statement, target.dialect) {
        (KillStatement::KillConnection, Dialect::Mariadb) => out.push(grant(&["CONNECTION ADMIN"], "*.*", "KILL CONNECTION of a per-person account's sessions at teardown (MariaDB 10.5.2+)")),
        (KillStatement::KillConnection, Dialect::Mysql8) => out.push(grant(&["CONNECTION_ADMIN"], "*.*", "KILL CONNECTION of a per-person account's sessions at teardown")),
        (KillStatement::RdsKill, _) => out.push(grant(&["EXECUTE"], "PROCEDURE mysql.rds_kill", "CALL mysql.rds_kill of a per-person account's sessions at teardown (RDS/Aurora)")),
    }
    let roles_table = match target.dialect {
        Dialect::Mariadb => "mysql.roles_mapping",
        Dialect::Mysql8 => "mysql.role_edges",
    };
    out.push(grant(&["SELECT"], "mysql.user", "does the account exist (converging a half-made account)"));
    out.push(grant(&["SELECT"], roles_table, "which accounts hold the marker role (reconcile finds powerpole's accounts only)"));
    // Every privilege any role may be granted on this target, and only those, on its schemas only.
    let role_privileges: BTreeSet<Privilege> = target.privileges.values().flat_map(|set| set.iter()).collect();
    let list: Vec<&str> = role_privileges.iter().map(|p| p.sql()).collect();
    for schema in &target.schemas {
        out.push(AdminPrivilege {
            privileges: list.iter().map(|p| p.to_string()).collect(),
            on: grant_schema(schema),
            with_grant_option: true,
            why: "grant exactly a role's privileges on this schema to a per-person account",
        });
    }
    out
}

/// The admin account's name and where it connects from.
#[derive(Debug, Clone)]
pub struct AdminAccount {
    pub user: String,
    /// `%`, or the subnet of `serve` / the Lambdas (`10.0.0.0/255.255.0.0`).
    pub host: String,
}

/// The statements, in order, with a comment line before each saying why; `password` is the new
/// account's (goes into the target's admin secret, nowhere else); `deployment`'s marker role is
/// the one the account may grant.
pub fn admin_sql(target: &TargetConfig, deployment: &DeploymentId, account: &AdminAccount, password: &Password) -> Result<String, Unquotable> {
    let who = format!("{}@{}", string_literal(&account.user)?, string_literal(&account.host)?);
    let role = string_literal(&marker_role(deployment))?;
    let tls = if target.require_ssl { "REQUIRE SSL" } else { "REQUIRE NONE" };
    let flavour = match target.dialect {
        Dialect::Mariadb => "MariaDB 10.5+",
        Dialect::Mysql8 => "MySQL 8 / Aurora MySQL 3",
    };
    let mut out = vec![
        format!("-- powerpole admin account for target `{}` ({flavour}); run as the cluster's master user.", target.name),
        format!("CREATE USER {who} IDENTIFIED BY {} {tls};", string_literal(password.expose())?),
        "-- The marker role every per-person account holds; the admin may grant and revoke it.".to_string(),
        format!("CREATE ROLE IF NOT EXISTS {role};"),
        format!("GRANT {role} TO {who} WITH ADMIN OPTION;"),
    ];
    for p in admin_privileges(target) {
        out.push(format!("-- {}", p.why));
        let option = if p.with_grant_option { " WITH GRANT OPTION" } else { "" };
        out.push(format!("GRANT {} ON {} TO {who}{option};", p.privileges.join(", "), p.on));
    }
    Ok(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dialect: Dialect, kill: KillStatement) -> TargetConfig {
        let config = crate::config::Config::from_toml_str(include_str!("../../powerpole.example.toml")).expect("the example config");
        let mut t = config.targets.values().next().cloned().expect("a target");
        t.dialect = dialect;
        t.kill_statement = kill;
        t
    }

    #[test]
    fn never_global_data_privileges_nor_all() {
        for (d, k) in [(Dialect::Mariadb, KillStatement::KillConnection), (Dialect::Mysql8, KillStatement::RdsKill), (Dialect::Mysql8, KillStatement::KillConnection)] {
            let t = target(d, k);
            let sql = admin_sql(&t, &DeploymentId::default(), &AdminAccount { user: "powerpole_admin".into(), host: "%".into() }, &Password::generate()).unwrap();
            assert!(!sql.contains("ALL PRIVILEGES") && !sql.contains("SUPER"), "{sql}");
            for line in sql.lines().filter(|l| l.contains(" ON *.* ")) {
                let privileges = line.trim_start_matches("GRANT ").split(" ON ").next().unwrap();
                for p in privileges.split(", ") {
                    assert!(["CREATE USER", "PROCESS", "CONNECTION ADMIN", "CONNECTION_ADMIN"].contains(&p), "global {p} in {line}");
                }
            }
            for schema in &t.schemas {
                assert!(sql.contains(&format!("ON {} TO", grant_schema(schema))), "{sql}");
            }
        }
    }

    #[test]
    fn the_kill_privilege_follows_the_target() {
        let rds = admin_privileges(&target(Dialect::Mysql8, KillStatement::RdsKill));
        assert!(rds.iter().any(|p| p.on == "PROCEDURE mysql.rds_kill"));
        assert!(!rds.iter().any(|p| p.privileges.iter().any(|x| x.contains("CONNECTION"))));
        let maria = admin_privileges(&target(Dialect::Mariadb, KillStatement::KillConnection));
        assert!(maria.iter().any(|p| p.privileges == ["CONNECTION ADMIN"]));
        assert!(maria.iter().any(|p| p.on == "mysql.roles_mapping"));
    }
}
