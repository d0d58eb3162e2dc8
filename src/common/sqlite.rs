//! What the two SQLite files HubChat keeps have in common: the server's
//! store (names, bans, messages kept for people who are away) and the
//! client's conversation history. Each keeps its own schema, its own
//! error type and its own sentences (one speaks to a server's owner, the
//! other to a person chatting); this module holds the steps they take the
//! same way: sorting an SQLite error into what someone can do about it,
//! bringing a schema up to date, and running a write transaction.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

/// What an SQLite error means for whoever has to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// Not a database, or a damaged one.
    Damaged(String),
    /// Another program holds the file.
    Locked,
    /// The file cannot be opened or written: permissions, read-only.
    CannotOpen(String),
    /// Anything else, said as it is (a full disk in those words).
    Failed(String),
}

/// Sorts an SQLite error.
pub fn trouble(err: &rusqlite::Error) -> Trouble {
    let detail = err.to_string();
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Trouble::Damaged(detail),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Trouble::Locked,
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            Trouble::CannotOpen(detail)
        }
        Some(ErrorCode::DiskFull) => Trouble::Failed("the disk is full".to_string()),
        _ => Trouble::Failed(detail),
    }
}

/// The errors a database's schema can meet, in its owner's own type.
pub trait SchemaError: Sized {
    /// Any SQLite error (see [`trouble`]).
    fn sqlite(path: &Path, err: rusqlite::Error) -> Self;
    /// The schema version makes no sense.
    fn damaged(path: &Path, detail: String) -> Self;
    /// A newer HubChat wrote it: schema version `found`, this one knows
    /// up to `known`.
    fn newer(path: &Path, found: i64, known: i64) -> Self;
    /// It is another program's database.
    fn foreign(path: &Path) -> Self;
}

/// Brings the schema from the file's version to the last of
/// `migrations` (entry `i` takes a database from version `i` to `i + 1`;
/// the version is `PRAGMA user_version`), in one transaction taken for
/// writing at once: a file another program is writing to is reported as
/// locked now, not at the first write. A file of version 0 with tables in
/// it was made by something else and is not touched.
pub fn migrate<E: SchemaError>(
    conn: &mut Connection,
    path: &Path,
    migrations: &[&str],
) -> Result<(), E> {
    let fail = |e| E::sqlite(path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(fail)?;
    let known = migrations.len() as i64;
    let Ok(from) = usize::try_from(found) else {
        return Err(E::damaged(path, format!("its schema version is {found}")));
    };
    if found > known {
        return Err(E::newer(path, found, known));
    }
    if from == 0 && has_tables(&tx).map_err(fail)? {
        return Err(E::foreign(path));
    }
    for (version, sql) in migrations.iter().enumerate().skip(from) {
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)
            .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

/// Whether a database has tables: a new file has none.
fn has_tables(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) > 0 FROM sqlite_schema", [], |row| {
        row.get(0)
    })
}

/// The connection behind its mutex. A panic elsewhere while holding it
/// cannot leave a transaction open (rusqlite rolls back on drop), so a
/// poisoned lock is still a usable connection.
pub fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `work` in one write transaction, committed only if it succeeds;
/// errors become `E` through `fail`.
pub fn write<T, E>(
    conn: &Mutex<Connection>,
    fail: impl Fn(rusqlite::Error) -> E,
    work: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
) -> Result<T, E> {
    let mut conn = lock(conn);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&fail)?;
    let value = work(&tx).map_err(&fail)?;
    tx.commit().map_err(&fail)?;
    Ok(value)
}
