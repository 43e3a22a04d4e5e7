//! The database's own audit log, as MariaDB's server_audit plugin and Aurora MySQL's advanced
//! auditing write it: one CSV line per event,
//! `time,serverhost,username,host,connectionid,queryid,operation,database,'object',retcode`.
//! MariaDB writes the time as `20261130 10:00:05`; Aurora as microseconds since the epoch.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;

/// What a statement does, for the security team's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    Read,
    Write,
    Ddl,
    /// Anything else (SET, USE, transactions, ...).
    Other,
}

impl StatementKind {
    /// By the statement's first keyword.
    pub fn of(sql: &str) -> StatementKind {
        let word = sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(').split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default().to_ascii_uppercase();
        match word.as_str() {
            "SELECT" | "SHOW" | "DESCRIBE" | "DESC" | "EXPLAIN" | "WITH" | "TABLE" => StatementKind::Read,
            "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "LOAD" | "CALL" | "MERGE" => StatementKind::Write,
            "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "RENAME" | "GRANT" | "REVOKE" => StatementKind::Ddl,
            _ => StatementKind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Read => "read",
            StatementKind::Write => "write",
            StatementKind::Ddl => "DDL",
            StatementKind::Other => "other",
        }
    }
}

/// One event of the database audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbEvent {
    pub at: DateTime<Utc>,
    pub user: String,
    pub host: String,
    pub connection: String,
    /// `CONNECT`, `DISCONNECT`, `FAILED_CONNECT`, `QUERY`, ...
    pub operation: String,
    pub database: String,
    /// The statement (for `QUERY`), as the server logged it.
    pub object: String,
    /// The server's return code: 0 is success; anything else was refused or failed.
    pub retcode: u32,
}

impl DbEvent {
    pub fn is_statement(&self) -> bool {
        self.operation.starts_with("QUERY")
    }

    pub fn kind(&self) -> StatementKind {
        StatementKind::of(&self.object)
    }

    pub fn refused(&self) -> bool {
        self.retcode != 0
    }
}

fn time(field: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = NaiveDateTime::parse_from_str(field, "%Y%m%d %H:%M:%S") {
        return Some(t.and_utc());
    }
    let micros: i64 = field.parse().ok()?;
    Utc.timestamp_micros(micros).single()
}

/// Reads one audit line; `None` for a line that is not one.
pub fn parse_line(line: &str) -> Option<DbEvent> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut head = line.splitn(9, ',');
    let at = time(head.next()?)?;
    let _server = head.next()?;
    let user = head.next()?.to_string();
    let host = head.next()?.to_string();
    let connection = head.next()?.to_string();
    let _query = head.next()?;
    let operation = head.next()?.to_string();
    let database = head.next()?.to_string();
    let rest = head.next()?;
    let (object, retcode) = rest.rsplit_once(',')?;
    let object = object.strip_prefix('\'').and_then(|o| o.strip_suffix('\'')).unwrap_or(object);
    Some(DbEvent {
        at,
        user,
        host,
        connection,
        operation,
        database,
        object: object.replace("\\'", "'").replace("\\\\", "\\"),
        retcode: retcode.trim().parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_and_aurora_lines_are_read() {
        let m = parse_line("20261130 10:00:05,vm,alice,10.0.1.5,12,34,QUERY,billing,'SELECT * FROM t WHERE note = \\'a,b\\'',0").unwrap();
        assert_eq!(m.at, Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 5).unwrap());
        assert_eq!((m.user.as_str(), m.host.as_str(), m.database.as_str()), ("alice", "10.0.1.5", "billing"));
        assert_eq!(m.object, "SELECT * FROM t WHERE note = 'a,b'");
        assert_eq!(m.kind(), StatementKind::Read);
        assert!(!m.refused());
        let a = parse_line("1796119205000000,ip-10-1-1-1,alice,10.0.1.5,26,123,QUERY,billing,'DROP TABLE t',1142").unwrap();
        assert_eq!(a.at, Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 5).unwrap());
        assert_eq!(a.kind(), StatementKind::Ddl);
        assert!(a.refused());
        let c = parse_line("20261130 10:00:04,vm,alice,10.0.1.5,12,0,CONNECT,billing,,0").unwrap();
        assert!(!c.is_statement());
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn statements_are_classified_by_their_first_keyword() {
        assert_eq!(StatementKind::of("  select 1"), StatementKind::Read);
        assert_eq!(StatementKind::of("UPDATE t SET a = 1"), StatementKind::Write);
        assert_eq!(StatementKind::of("alter table t add c int"), StatementKind::Ddl);
        assert_eq!(StatementKind::of("SET NAMES utf8mb4"), StatementKind::Other);
    }
}
