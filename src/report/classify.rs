//! What a statement from the database's audit log does, by a SQL parser (sqlparser, MySQL
//! dialect) rather than by its first word: `WITH x AS (SELECT 1) DELETE FROM t` is a write,
//! `/*!50000 DROP TABLE t */` a DDL (MySQL runs versioned comments), and `PREPARE s FROM 'DROP
//! TABLE t'` a DDL through a prepared statement. What the parser cannot read, or reads as
//! something this module does not know, is [`StatementKind::Suspicious`]: the report names it
//! rather than count it as harmless.

use sqlparser::ast::{SetExpr, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::db_audit::StatementKind;

/// How deep a prepared statement's text is followed (`PREPARE a FROM 'PREPARE b FROM ...'`).
const MAX_DEPTH: usize = 3;

/// The kind of the statement(s) in `sql`: the most telling of them when a line holds several
/// (`PREPARE s FROM 'DROP TABLE t'; EXECUTE s` is DDL).
pub fn classify(sql: &str) -> StatementKind {
    classify_at(sql, 0)
}

fn classify_at(sql: &str, depth: usize) -> StatementKind {
    if depth > MAX_DEPTH {
        return StatementKind::Suspicious;
    }
    let Some(text) = uncomment_versioned(sql) else { return StatementKind::Suspicious };
    let dialect = MySqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, &text).tokenize() else { return StatementKind::Suspicious };
    let mut kinds = Vec::new();
    for chunk in tokens.split(|t| *t == Token::SemiColon) {
        let words: Vec<&Token> = chunk.iter().filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF)).collect();
        let Some(first) = words.first() else { continue };
        let keyword = |t: &Token| match t {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            _ => String::new(),
        };
        kinds.push(match keyword(first).as_str() {
            // MySQL's `PREPARE name FROM 'text'`: what the text does. From a variable: unknown.
            "PREPARE" => match (words.get(2).map(|t| keyword(t)).as_deref(), words.get(3), words.len()) {
                (Some("FROM"), Some(Token::SingleQuotedString(inner) | Token::DoubleQuotedString(inner)), 4) => match classify_at(inner, depth + 1) {
                    StatementKind::Read | StatementKind::Other => StatementKind::Other,
                    kind => kind,
                },
                _ => StatementKind::Suspicious,
            },
            // Runs what PREPARE made, which was classified there.
            "EXECUTE" | "DEALLOCATE" => StatementKind::Other,
            _ => match Parser::new(&dialect).with_tokens(chunk.to_vec()).parse_statements() {
                Ok(statements) if !statements.is_empty() => statements.iter().map(|s| statement(s, depth)).max().unwrap_or(StatementKind::Suspicious),
                _ => StatementKind::Suspicious,
            },
        });
    }
    kinds.into_iter().max().unwrap_or(StatementKind::Suspicious)
}

/// One parsed statement. Anything not listed is suspicious: a new kind of statement must be
/// added here knowingly, not counted as harmless by default.
fn statement(s: &Statement, depth: usize) -> StatementKind {
    match s {
        Statement::Query(q) => query(q),
        Statement::Explain { analyze, statement: inner, .. } => match statement(inner, depth) {
            // EXPLAIN ANALYZE runs the statement.
            kind if *analyze => kind.max(StatementKind::Read),
            _ => StatementKind::Read,
        },
        Statement::Prepare { statement: inner, .. } => statement(inner, depth + 1).max(StatementKind::Other),
        _ => {
            let debug = format!("{s:?}");
            let name = debug.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or_default();
            by_name(name)
        }
    }
}

fn by_name(name: &str) -> StatementKind {
    const WRITE: [&str; 11] = ["Insert", "Update", "Delete", "Merge", "LoadData", "Load", "Call", "Copy", "CopyIntoSnowflake", "Unload", "Directory"];
    const DDL: [&str; 12] = ["Truncate", "Grant", "GrantRole", "Revoke", "RevokeRole", "Deny", "Comment", "Install", "Msck", "OptimizeTable", "RefreshMaterializedView", "Vacuum"];
    const OTHER: [&str; 14] = [
        "Set", "Use", "StartTransaction", "Commit", "Rollback", "Savepoint", "ReleaseSavepoint", "Kill", "LockTables", "UnlockTables", "Lock", "Deallocate",
        "Execute", "Analyze",
    ];
    if WRITE.contains(&name) {
        StatementKind::Write
    } else if DDL.contains(&name) || ["Create", "Alter", "Drop", "Rename", "Attach", "Detach"].iter().any(|p| name.starts_with(p)) {
        StatementKind::Ddl
    } else if name.starts_with("Show") || name == "ExplainTable" {
        StatementKind::Read
    } else if OTHER.contains(&name) {
        StatementKind::Other
    } else {
        StatementKind::Suspicious
    }
}

/// A query: a read, unless its body or one of its common table expressions writes, or it
/// selects INTO something.
fn query(q: &sqlparser::ast::Query) -> StatementKind {
    let ctes = q.with.iter().flat_map(|w| w.cte_tables.iter()).map(|cte| query(&cte.query));
    ctes.chain(std::iter::once(set_expr(&q.body))).max().unwrap_or(StatementKind::Read)
}

fn set_expr(e: &SetExpr) -> StatementKind {
    match e {
        SetExpr::Select(s) if s.into.is_some() => StatementKind::Write,
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => StatementKind::Read,
        SetExpr::Query(q) => query(q),
        SetExpr::SetOperation { left, right, .. } => set_expr(left).max(set_expr(right)),
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => StatementKind::Write,
        #[allow(unreachable_patterns)]
        _ => StatementKind::Suspicious,
    }
}

/// MySQL and MariaDB run what is inside a versioned comment (`/*! ... */`, `/*!50000 ... */`,
/// MariaDB's `/*M!100100 ... */`) as part of the statement: the markers are removed so the
/// parser sees it. Other comments and quoted text are left as they are. `None` for a versioned
/// comment that never closes.
pub fn uncomment_versioned(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut i, mut copied) = (0, 0);
    let mut open_versioned = false;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' | b'`' => {
                quote = Some(c);
                i += 1;
            }
            b'*' if open_versioned && b.get(i + 1) == Some(&b'/') => {
                out.push_str(&sql[copied..i]);
                out.push(' ');
                open_versioned = false;
                i += 2;
                copied = i;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let marker = if b.get(i + 2) == Some(&b'!') {
                    Some(3)
                } else if b.get(i + 2) == Some(&b'M') && b.get(i + 3) == Some(&b'!') {
                    Some(4)
                } else {
                    None
                };
                match marker {
                    Some(len) if !open_versioned => {
                        out.push_str(&sql[copied..i]);
                        out.push(' ');
                        i += len;
                        while i < b.len() && b[i].is_ascii_digit() {
                            i += 1;
                        }
                        copied = i;
                        open_versioned = true;
                    }
                    _ => {
                        // A plain comment (or hint): skipped over whole, quotes inside it are text.
                        let end = sql[i + 2..].find("*/").map(|e| i + 2 + e + 2)?;
                        i = end;
                    }
                }
            }
            b'#' => i = sql[i..].find('\n').map_or(b.len(), |e| i + e),
            b'-' if b.get(i + 1) == Some(&b'-') && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) => {
                i = sql[i..].find('\n').map_or(b.len(), |e| i + e)
            }
            _ => i += 1,
        }
    }
    if open_versioned {
        return None;
    }
    out.push_str(&sql[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementKind::*;

    #[test]
    fn each_statement_of_the_review_is_classified_as_what_it_does() {
        assert_eq!(classify("WITH x AS (SELECT 1) DELETE FROM t"), Write);
        assert_eq!(classify("/*!*/ DROP TABLE t"), Ddl);
        assert_eq!(classify("/*!50000 DROP TABLE t */"), Ddl);
        assert_eq!(classify("/*M!100100 DROP TABLE t */"), Ddl);
        assert_eq!(classify("PREPARE s FROM 'DROP TABLE t'; EXECUTE s"), Ddl);
        assert_eq!(classify("PREPARE s FROM 'DROP TABLE t'"), Ddl);
        assert_eq!(classify("PREPARE s FROM @sql"), Suspicious, "the text is not in the log");
    }

    #[test]
    fn ordinary_statements_keep_their_kinds() {
        assert_eq!(classify("  select * from t where a = 1"), Read);
        assert_eq!(classify("(SELECT 1) UNION (SELECT 2)"), Read);
        assert_eq!(classify("SHOW TABLES"), Read);
        assert_eq!(classify("EXPLAIN SELECT 1"), Read);
        assert_eq!(classify("UPDATE t SET a = 1"), Write);
        assert_eq!(classify("INSERT INTO t (a) VALUES (1)"), Write);
        assert_eq!(classify("REPLACE INTO t (a) VALUES (1)"), Write);
        assert_eq!(classify("alter table t add c int"), Ddl);
        assert_eq!(classify("CREATE TABLE t (a INT)"), Ddl);
        assert_eq!(classify("TRUNCATE TABLE t"), Ddl);
        assert_eq!(classify("GRANT SELECT ON db.* TO 'x'@'%'"), Ddl);
        assert_eq!(classify("SET NAMES utf8mb4"), Other);
        assert_eq!(classify("USE billing"), Other);
        assert_eq!(classify("START TRANSACTION"), Other);
        assert_eq!(classify("SELECT 1; DELETE FROM t"), Write, "the most telling statement of a line");
    }

    #[test]
    fn comments_and_quotes_do_not_hide_or_invent_statements() {
        assert_eq!(classify("/* DROP TABLE t */ SELECT 1"), Read, "a plain comment is not run");
        assert_eq!(classify("SELECT '/*!50000 DROP TABLE t */'"), Read, "a versioned comment inside a string is text");
        assert_eq!(classify("SELECT 1 -- ; DROP TABLE t"), Read);
        assert_eq!(classify("SELECT 1 # ; DROP TABLE t"), Read);
        assert_eq!(classify("SELECT /*+ MAX_EXECUTION_TIME(1000) */ a FROM t"), Read);
        assert_eq!(classify("/*!50000 DROP TABLE t"), Suspicious, "a versioned comment that never closes");
    }

    #[test]
    fn what_cannot_be_classified_is_suspicious() {
        for s in ["", "   ", "DROPP TABLE t", "SELECT FROM WHERE", "\u{1b}[2K", "HANDLER t OPEN"] {
            assert_eq!(classify(s), Suspicious, "{s:?}");
        }
        let prepared = |text: &str| format!("PREPARE p FROM '{}'", text.replace('\'', "''"));
        let mut nested = "DROP TABLE t".to_string();
        for _ in 0..MAX_DEPTH {
            nested = prepared(&nested);
        }
        assert_eq!(classify(&nested), Ddl, "prepared within prepared, {MAX_DEPTH} deep");
        assert_eq!(classify(&prepared(&nested)), Suspicious, "deeper than anyone needs");
    }
}
