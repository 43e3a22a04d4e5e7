//! The database's own audit log, as MariaDB's server_audit plugin and Aurora MySQL's advanced
//! auditing write it: one CSV line per event,
//! `time,serverhost,username,host,connectionid,queryid,operation,database,'object',retcode`.
//! MariaDB writes the time as `20261130 10:00:05`; Aurora as microseconds since the epoch.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;

/// What a statement does, for the security team's counts, from the least to the most telling
/// (a line with several statements counts as its most telling one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    Read,
    /// SET, USE, transactions, EXECUTE of a prepared statement, ...
    Other,
    Write,
    Ddl,
    /// What could not be classified: unreadable by the parser, a statement kind the report does
    /// not know, or a prepared statement whose text is not in the log. Named in the summary.
    Suspicious,
}

impl StatementKind {
    /// By a SQL parser ([`super::classify`]), not by the first keyword.
    pub fn of(sql: &str) -> StatementKind {
        super::classify::classify(sql)
    }

    /// The audit log's own class of an event, where it has one: the table events of MariaDB's
    /// server_audit and Aurora's advanced auditing (`READ`, `WRITE`, `CREATE`, `ALTER`, `DROP`,
    /// `RENAME`, logged with the query id of the statement that caused them) and the
    /// `QUERY_DDL` / `QUERY_DML` / `QUERY_DCL` classes some servers write.
    pub fn of_operation(operation: &str) -> Option<StatementKind> {
        match operation.to_ascii_uppercase().as_str() {
            "READ" => Some(StatementKind::Read),
            "WRITE" | "QUERY_DML_NO_SELECT" => Some(StatementKind::Write),
            "CREATE" | "ALTER" | "DROP" | "RENAME" | "QUERY_DDL" | "QUERY_DCL" => Some(StatementKind::Ddl),
            _ => None,
        }
    }

    pub const ALL: [StatementKind; 5] = [StatementKind::Read, StatementKind::Write, StatementKind::Ddl, StatementKind::Other, StatementKind::Suspicious];

    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Read => "read",
            StatementKind::Write => "write",
            StatementKind::Ddl => "DDL",
            StatementKind::Other => "other",
            StatementKind::Suspicious => "suspicious",
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
    /// The server's query id: a statement and the table events it caused share it.
    pub query_id: String,
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

    /// What the statement does, by the parser and by the log's own class of the event, the
    /// more telling of the two.
    pub fn kind(&self) -> StatementKind {
        let parsed = StatementKind::of(&self.object);
        let upper = self.operation.to_ascii_uppercase();
        match upper.strip_prefix("QUERY_").and_then(|_| StatementKind::of_operation(&upper)) {
            Some(logged) => parsed.max(logged),
            None => parsed,
        }
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
    let query_id = head.next()?.to_string();
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
        query_id,
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
    fn the_logs_own_class_counts_where_it_has_one() {
        let line = |op: &str, object: &str| parse_line(&format!("20261130 10:00:05,vm,alice,10.0.1.5,12,34,{op},billing,'{object}',0")).unwrap();
        assert_eq!(line("QUERY_DDL", "SELECT 1").kind(), StatementKind::Ddl, "the server says DDL");
        assert_eq!(line("QUERY", "SELECT 1").kind(), StatementKind::Read);
        assert_eq!(line("QUERY", "SELECT 1").query_id, "34");
        assert_eq!(StatementKind::of_operation("DROP"), Some(StatementKind::Ddl));
        assert_eq!(StatementKind::of_operation("WRITE"), Some(StatementKind::Write));
        assert_eq!(StatementKind::of_operation("CONNECT"), None);
    }

    #[test]
    fn statements_are_classified_by_a_parser() {
        assert_eq!(StatementKind::of("  select 1"), StatementKind::Read);
        assert_eq!(StatementKind::of("UPDATE t SET a = 1"), StatementKind::Write);
        assert_eq!(StatementKind::of("alter table t add c int"), StatementKind::Ddl);
        assert_eq!(StatementKind::of("SET NAMES utf8mb4"), StatementKind::Other);
    }
}
