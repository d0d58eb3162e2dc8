//! What the server remembers across restarts: the identities it has seen,
//! which names belong to which identity, and the owner's bans. Nothing else
//! in the program writes SQL; everything goes through [`Store`]'s typed
//! functions.
//!
//! One SQLite file in the server's settings folder: the embedded default,
//! readable with the `sqlite3` tool (plain tables, text and integers, times
//! in unix seconds). It is opened in WAL mode with `synchronous=FULL`, so a
//! binding or ban that was answered for survives a power cut, and a reader
//! such as `sqlite3` never blocks the server. The schema is versioned from
//! the first day (`PRAGMA user_version`), with one list of migrations.
//!
//! One plain mutex around the connection: every operation is a few indexed
//! look-ups and at most a short write, done while a client joins or the
//! owner clicks, never in the relay of messages, so there is nothing to gain
//! from finer locking, and a transaction per call keeps each answer
//! consistent with the file. The one exception is joining: each encrypted
//! join claims its name, and a durable commit costs an fsync (milliseconds
//! on a busy disk), so claims that arrive while another commit is under way
//! wait for it and then go to disk together in one transaction (group
//! commit). Each join is still answered only once its claim is on disk.
//!
//! A database that cannot be used (damaged, from a newer version, locked by
//! another program, not openable) stops the server with a sentence naming
//! the file: starting empty instead would silently give every name and
//! every banned person back to whoever asks first.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use crate::common::profile::{name_keys, NameKeys};

/// How long a call waits for another program (a `sqlite3` session writing,
/// another server) to let go of the file before giving up with
/// [`StoreError::Locked`]: long enough for any short write, short enough
/// that a server starting beside a stuck one says so at once.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// The schema, one entry per version: entry `i` takes a database from
/// version `i` to `i + 1`. Version 2 is one more entry; never edit one that
/// has shipped.
const MIGRATIONS: &[&str] = &[SCHEMA_V1];

/// Identities are SHA-256 fingerprints of client certificates, in lower
/// case hex. A binding holds both forms of its name
/// ([`crate::common::profile::name_keys`]): `key_folded` (case folded,
/// then look-alikes mapped) and `key_mapped` (look-alikes mapped first).
const SCHEMA_V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE identities (
    fingerprint TEXT PRIMARY KEY NOT NULL
        CHECK (length(fingerprint) = 64 AND fingerprint NOT GLOB '*[^0-9a-f]*'),
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    last_name   TEXT NOT NULL
);
CREATE INDEX identities_by_last_seen ON identities (last_seen);
CREATE TABLE bindings (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    key_folded TEXT NOT NULL UNIQUE,
    key_mapped TEXT NOT NULL UNIQUE,
    identity   TEXT NOT NULL REFERENCES identities (fingerprint) ON DELETE CASCADE,
    bound_at   INTEGER NOT NULL,
    last_used  INTEGER NOT NULL
);
CREATE INDEX bindings_by_identity ON bindings (identity, last_used);
CREATE TABLE bans (
    kind      TEXT NOT NULL CHECK (kind IN ('identity', 'address')),
    target    TEXT NOT NULL,
    name      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    banned_at INTEGER NOT NULL,
    PRIMARY KEY (kind, target)
);
INSERT INTO meta (key, value) VALUES ('made_by', 'hubchat-server');
";

/// How much the store keeps, so a hostile client cannot fill the disk or
/// make every join slow by making up names or certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Names one identity may hold. A person uses one name, maybe a few;
    /// without a cap one client could walk through every name anyone might
    /// want and keep them all. Claiming one more releases the identity's
    /// least recently used name: a person who changes name now and then is
    /// never refused, while a name grabber only ever holds this many.
    pub names_per_identity: usize,
    /// Names held in all. Beyond it a new name is not bound
    /// ([`Claim::Full`]): the client is let in with it unbound, as before
    /// this store existed, rather than refused. Made-up identities each
    /// holding their 8 names run into this, not into the disk.
    pub bindings: usize,
    /// Identities remembered. Past it, the least recently seen identity
    /// that holds no name is forgotten; twice [`Limits::bindings`], so
    /// there always is one.
    pub identities: usize,
}

impl Default for Limits {
    /// 8 names an identity, 100,000 names and 200,000 identities in all
    /// (some 30 MB of file at most).
    fn default() -> Self {
        Limits {
            names_per_identity: 8,
            bindings: 100_000,
            identities: 200_000,
        }
    }
}

/// The answer to [`Store::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The name is now bound to this identity. `released` is the name the
    /// identity let go of to stay within its limit, if any.
    Bound { released: Option<String> },
    /// The name was already this identity's.
    Owned,
    /// Another identity holds the name, or one it cannot be told from.
    Taken { owner_name: String },
    /// The store holds as many names as it may; the name stays unbound.
    Full,
}

/// A name that belongs to an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The name as it was when bound.
    pub name: String,
    /// The owner's fingerprint.
    pub identity: String,
    /// Unix seconds.
    pub bound_at: i64,
    /// When the owner last joined with this name, unix seconds.
    pub last_used: i64,
}

/// Who a ban keeps out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BanTarget {
    /// One installation, by its certificate's fingerprint.
    Identity(String),
    /// Everyone connecting from an address (the only way to keep out an
    /// original client, which has no identity).
    Address(IpAddr),
}

impl BanTarget {
    fn kind(&self) -> &'static str {
        match self {
            BanTarget::Identity(_) => "identity",
            BanTarget::Address(_) => "address",
        }
    }

    /// The target as kept: a fingerprint, or an address in its usual text
    /// form, an IPv4-mapped IPv6 address written as the IPv4 one (a dual-
    /// stack listener sees IPv4 clients that way).
    fn text(&self) -> String {
        match self {
            BanTarget::Identity(fingerprint) => fingerprint.clone(),
            BanTarget::Address(ip) => ip.to_canonical().to_string(),
        }
    }

    fn from_row(kind: &str, text: &str) -> Option<BanTarget> {
        match kind {
            "identity" if is_fingerprint(text) => Some(BanTarget::Identity(text.to_string())),
            "address" => text.parse().ok().map(BanTarget::Address),
            _ => None,
        }
    }
}

impl fmt::Display for BanTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // As the windows show a key: five groups of four.
            BanTarget::Identity(hex) => match crate::common::tls::Fingerprint::from_hex(hex) {
                Some(fingerprint) => write!(f, "computer {}", fingerprint.short()),
                None => write!(f, "computer {}", hex.get(..16).unwrap_or(hex)),
            },
            BanTarget::Address(ip) => write!(f, "address {}", ip.to_canonical()),
        }
    }
}

/// A ban the owner made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub target: BanTarget,
    /// The name the banned client had, so the list says who it was.
    pub name: String,
    /// Why, as the owner wrote it; may be empty.
    pub reason: String,
    /// Unix seconds.
    pub banned_at: i64,
}

/// Why the store cannot be used. Each says, in a sentence, which file and
/// what the owner can do.
#[derive(Debug)]
pub enum StoreError {
    /// The folder the database goes in could not be made.
    Folder { path: PathBuf, source: io::Error },
    /// The file cannot be opened or written: permissions, read-only, a
    /// folder in its place.
    CannotOpen { path: PathBuf, detail: String },
    /// The file is not a database, or a damaged one.
    Damaged { path: PathBuf, detail: String },
    /// A database, but another program's.
    Foreign { path: PathBuf },
    /// Written by a newer HubChat, whose schema this one does not know.
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// Another program holds the file locked.
    Locked { path: PathBuf },
    /// Reading or writing failed for another reason (disk full, I/O).
    Failed { path: PathBuf, detail: String },
    /// An identity that is not a fingerprint (64 lower-case hex digits).
    NotAFingerprint { value: String },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Folder { path, source } => write!(
                f,
                "The folder for the server's database {} could not be made ({source}). \
                 Check that the settings folder can be written.",
                path.display()
            ),
            StoreError::CannotOpen { path, detail } => write!(
                f,
                "The server's database {} cannot be opened ({detail}). Check that it is \
                 a file this user may read and write.",
                path.display()
            ),
            StoreError::Damaged { path, detail } => write!(
                f,
                "The server's database {} is damaged ({detail}). Move it away to start \
                 with no bindings and bans, or restore a backup.",
                path.display()
            ),
            StoreError::Foreign { path } => write!(
                f,
                "The file {} is another program's database, not the HubChat server's. \
                 Move it away to start with no bindings and bans.",
                path.display()
            ),
            StoreError::Newer { path, found, known } => write!(
                f,
                "The server's database {} was written by a newer HubChat (schema \
                 version {found}; this one knows up to {known}). Run the newer version, \
                 or move the file away to start with no bindings and bans.",
                path.display()
            ),
            StoreError::Locked { path } => write!(
                f,
                "The server's database {} is locked by another program (another HubChat \
                 server with the same settings folder?). Close that program and try again.",
                path.display()
            ),
            StoreError::Failed { path, detail } => write!(
                f,
                "The server's database {} could not be read or written ({detail}). Check \
                 that the disk has free space and works.",
                path.display()
            ),
            StoreError::NotAFingerprint { value } => write!(
                f,
                "\"{value}\" is not a computer's identity (64 lower-case hexadecimal digits)."
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Folder { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl StoreError {
    /// Sorts an SQLite error into what the owner can do about it.
    fn from_sqlite(path: &Path, err: rusqlite::Error) -> StoreError {
        Self::classify(path, err.sqlite_error_code(), err.to_string())
    }

    fn classify(path: &Path, code: Option<ErrorCode>, detail: String) -> StoreError {
        let path = path.to_path_buf();
        match code {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::Damaged { path, detail }
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Locked { path }
            }
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
                StoreError::CannotOpen { path, detail }
            }
            Some(ErrorCode::DiskFull) => StoreError::Failed {
                path,
                detail: "the disk is full".to_string(),
            },
            _ => StoreError::Failed { path, detail },
        }
    }
}

/// The server's durable memory. `Send + Sync`: share it in an `Arc`.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// Claims waiting for the next commit; whoever next holds `conn` takes
    /// them all.
    claims: Mutex<Vec<Queued>>,
    /// For error sentences.
    path: PathBuf,
    limits: Limits,
}

impl Store {
    /// Opens the database at `path`, making it (and its folder) if missing,
    /// and brings its schema up to date. Checks the whole file's structure
    /// first, so a damaged file is found now rather than at the first join.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|source| StoreError::Folder {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::from_sqlite(path, e))?;
        Self::start(conn, path.to_path_buf())
    }

    /// A store that keeps nothing after it is dropped, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from("(in memory)");
        let conn = Connection::open_in_memory().map_err(|e| StoreError::from_sqlite(&path, e))?;
        Self::start(conn, path)
    }

    /// The same store with other limits (tests use small ones).
    pub fn with_limits(mut self, limits: Limits) -> Store {
        self.limits = limits;
        self
    }

    /// The file, as given to [`Store::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn start(mut conn: Connection, path: PathBuf) -> Result<Store, StoreError> {
        let fail = |e| StoreError::from_sqlite(&path, e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        // "wal", or "memory" in memory; a file system without shared
        // memory keeps the rollback journal, which is as durable.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(fail)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(fail)?;
        if let Some(problem) = first_problem(&conn).map_err(fail)? {
            return Err(StoreError::Damaged {
                path,
                detail: problem,
            });
        }
        migrate(&mut conn, &path)?;
        Ok(Store {
            conn: Mutex::new(conn),
            claims: Mutex::new(Vec::new()),
            path,
            limits: Limits::default(),
        })
    }

    /// The connection. A panic elsewhere while holding it cannot leave a
    /// transaction open (rusqlite rolls back on drop), so a poisoned lock is
    /// still a usable connection.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fail(&self, err: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, err)
    }

    /// Runs `work` in one write transaction, committed only if it succeeds.
    fn write<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(e))?;
        let value = work(&tx).map_err(|e| self.fail(e))?;
        tx.commit().map_err(|e| self.fail(e))?;
        Ok(value)
    }

    /// Identity `identity` joins as `name` at `now` (unix seconds): binds the
    /// name to it if nobody holds it or a look-alike, and records the
    /// identity as seen. The answer says whether it may use the name.
    ///
    /// Claims made at the same time are committed together (see the module
    /// doc); each is decided in turn, so of two computers claiming one name
    /// at once the first in line gets it.
    pub fn claim(&self, name: &NameKeys, identity: &str, now: i64) -> Result<Claim, StoreError> {
        check_fingerprint(identity)?;
        let (answer, answered) = crossbeam_channel::bounded(1);
        self.queued().push(Queued {
            name: name.clone(),
            identity: identity.to_string(),
            now,
            answer,
        });
        loop {
            if let Ok(result) = answered.try_recv() {
                return result;
            }
            // Waits while another caller commits, perhaps with ours.
            let mut conn = self.conn();
            if let Ok(result) = answered.try_recv() {
                return result;
            }
            let batch = std::mem::take(&mut *self.queued());
            self.commit_claims(&mut conn, batch);
        }
    }

    fn queued(&self) -> MutexGuard<'_, Vec<Queued>> {
        self.claims.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides `batch` in one transaction, each claim in a savepoint of
    /// its own (so one failing does not undo the others), commits once,
    /// then answers each.
    fn commit_claims(&self, conn: &mut Connection, batch: Vec<Queued>) {
        let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => return self.answer_all(batch, &e),
        };
        let mut results = Vec::with_capacity(batch.len());
        for q in &batch {
            let result = tx.savepoint().and_then(|sp| {
                let claim = decide_claim(&sp, &q.name, &q.identity, q.now, self.limits)?;
                sp.commit()?;
                Ok(claim)
            });
            results.push(result);
        }
        if let Err(e) = tx.commit() {
            return self.answer_all(batch, &e);
        }
        for (q, result) in batch.into_iter().zip(results) {
            let _ = q.answer.send(result.map_err(|e| self.fail(e)));
        }
    }

    /// Tells every claim in `batch` that the database failed with `err`.
    fn answer_all(&self, batch: Vec<Queued>, err: &rusqlite::Error) {
        for q in batch {
            let e = StoreError::classify(&self.path, err.sqlite_error_code(), err.to_string());
            let _ = q.answer.send(Err(e));
        }
    }

    /// Who holds `name`, or a name it cannot be told from. Original clients
    /// (no identity) may use only names nobody holds.
    pub fn owner(&self, name: &NameKeys) -> Result<Option<Binding>, StoreError> {
        let conn = self.conn();
        let found = holders(&conn, name.keys()).map_err(|e| self.fail(e))?;
        Ok(found.into_iter().next())
    }

    /// The owner frees `name` (and any binding it cannot be told from).
    /// Whether anything was bound.
    pub fn release(&self, name: &str) -> Result<bool, StoreError> {
        let keys = name_keys(name);
        let [a, b] = keys.keys();
        self.write(|tx| {
            let freed = tx.execute(
                "DELETE FROM bindings
                 WHERE key_folded IN (?1, ?2) OR key_mapped IN (?1, ?2)",
                params![a, b],
            )?;
            Ok(freed > 0)
        })
    }

    /// Every binding, by name, for the owner's list.
    pub fn bindings(&self) -> Result<Vec<Binding>, StoreError> {
        let conn = self.conn();
        let read = || -> rusqlite::Result<Vec<Binding>> {
            let mut statement = conn.prepare(
                "SELECT name, identity, bound_at, last_used FROM bindings
                 ORDER BY key_folded, id",
            )?;
            let rows = statement.query_map([], binding_from_row)?;
            rows.collect()
        };
        read().map_err(|e| self.fail(e))
    }

    /// Bans `target` (again, if it was: the name and reason are replaced).
    pub fn ban(
        &self,
        target: &BanTarget,
        name: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        if let BanTarget::Identity(fingerprint) = target {
            check_fingerprint(fingerprint)?;
        }
        self.write(|tx| {
            tx.execute(
                "INSERT INTO bans (kind, target, name, reason, banned_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, target) DO UPDATE
                 SET name = excluded.name, reason = excluded.reason,
                     banned_at = excluded.banned_at",
                params![target.kind(), target.text(), name, reason, now],
            )?;
            Ok(())
        })
    }

    /// Lifts the ban on `target`. Whether there was one.
    pub fn lift(&self, target: &BanTarget) -> Result<bool, StoreError> {
        self.write(|tx| {
            let lifted = tx.execute(
                "DELETE FROM bans WHERE kind = ?1 AND target = ?2",
                params![target.kind(), target.text()],
            )?;
            Ok(lifted > 0)
        })
    }

    /// Every ban, oldest first.
    pub fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        let rows = {
            let conn = self.conn();
            let read = || -> rusqlite::Result<Vec<BanRow>> {
                let mut statement = conn.prepare(
                    "SELECT kind, target, name, reason, banned_at FROM bans
                     ORDER BY banned_at, kind, target",
                )?;
                let rows = statement.query_map([], BanRow::read)?;
                rows.collect()
            };
            read().map_err(|e| self.fail(e))?
        };
        rows.into_iter()
            .map(|row| row.into_ban(&self.path))
            .collect()
    }

    /// The ban keeping out a client with this identity (none for original
    /// clients) connecting from `addr`, if any; a ban on the identity is
    /// named before one on the address.
    pub fn banned(&self, identity: Option<&str>, addr: IpAddr) -> Result<Option<Ban>, StoreError> {
        let address = BanTarget::Address(addr).text();
        let row = {
            let conn = self.conn();
            conn.prepare_cached(
                "SELECT kind, target, name, reason, banned_at FROM bans
                 WHERE (kind = 'identity' AND target = ?1)
                    OR (kind = 'address' AND target = ?2)
                 ORDER BY kind DESC LIMIT 1",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![identity, address], BanRow::read)
                    .optional()
            })
            .map_err(|e| self.fail(e))?
        };
        row.map(|row| row.into_ban(&self.path)).transpose()
    }

    /// A value kept under `key` in the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()
        .map_err(|e| self.fail(e))
    }

    /// Keeps `value` under `key` in the `meta` table.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
    }
}

/// Now, in the unix seconds the store keeps (0 for a clock before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What `PRAGMA quick_check` finds wrong first, if anything: it checks
/// every page and index entry's structure (not contents against indexes),
/// some milliseconds for a full store. Its report starts with a heading
/// ("*** in database main ***") that says nothing; the line after it does.
fn first_problem(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let mut statement = conn.prepare("PRAGMA quick_check(5)")?;
    let lines = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if lines.iter().any(|line| line == "ok") {
        return Ok(None);
    }
    let problem = lines
        .iter()
        .find(|line| !line.starts_with("***"))
        .or(lines.first())
        .map_or_else(|| "its check gave no answer".to_string(), Clone::clone);
    Ok(Some(problem))
}

/// Brings the schema from the file's version to this program's, in one
/// transaction taken for writing at once: a file another program is
/// writing to is reported as locked now, not at the first join.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let fail = |e| StoreError::from_sqlite(path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(fail)?;
    let known = MIGRATIONS.len() as i64;
    let Ok(from) = usize::try_from(found) else {
        return Err(StoreError::Damaged {
            path: path.to_path_buf(),
            detail: format!("its schema version is {found}"),
        });
    };
    if found > known {
        return Err(StoreError::Newer {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    if from == 0 && has_tables(&tx).map_err(fail)? {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)
            .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

/// Whether a database of version 0 has tables: a new file has none; one
/// with tables was made by something else, which must not be written to.
fn has_tables(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) > 0 FROM sqlite_schema", [], |row| {
        row.get(0)
    })
}

fn is_fingerprint(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_fingerprint(value: &str) -> Result<(), StoreError> {
    if is_fingerprint(value) {
        Ok(())
    } else {
        Err(StoreError::NotAFingerprint {
            value: value.chars().take(80).collect(),
        })
    }
}

fn binding_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Binding> {
    Ok(Binding {
        name: row.get(0)?,
        identity: row.get(1)?,
        bound_at: row.get(2)?,
        last_used: row.get(3)?,
    })
}

/// The bindings holding either form of a name (at most two).
fn holders(conn: &Connection, keys: &[String; 2]) -> rusqlite::Result<Vec<Binding>> {
    let mut statement = conn.prepare_cached(
        "SELECT name, identity, bound_at, last_used FROM bindings
         WHERE key_folded IN (?1, ?2) OR key_mapped IN (?1, ?2)
         ORDER BY id",
    )?;
    let rows = statement.query_map(params![keys[0], keys[1]], binding_from_row)?;
    rows.collect()
}

/// Decides one claim (see [`Store::claim`]) inside an open transaction.
fn decide_claim(
    tx: &Connection,
    name: &NameKeys,
    identity: &str,
    now: i64,
    limits: Limits,
) -> rusqlite::Result<Claim> {
    let holders = holders(tx, name.keys())?;
    let taken = holders.iter().find(|b| b.identity != identity);
    let used_name = if taken.is_some() {
        None
    } else {
        Some(name.name())
    };
    seen(tx, identity, used_name, now, limits.identities)?;
    if let Some(other) = taken {
        return Ok(Claim::Taken {
            owner_name: other.name.clone(),
        });
    }
    if !holders.is_empty() {
        touch(tx, name.keys(), identity, now)?;
        return Ok(Claim::Owned);
    }
    bind(tx, name, identity, now, limits)
}

/// A claim waiting for the next commit, and where its answer goes.
#[derive(Debug)]
struct Queued {
    name: NameKeys,
    identity: String,
    now: i64,
    answer: crossbeam_channel::Sender<Result<Claim, StoreError>>,
}

/// Records `identity` as seen at `now`, under `name` if it was let use one.
/// A new identity first makes room if the store remembers as many as it may.
fn seen(
    tx: &Connection,
    identity: &str,
    name: Option<&str>,
    now: i64,
    max_identities: usize,
) -> rusqlite::Result<()> {
    let updated = tx
        .prepare_cached(
            "UPDATE identities
             SET last_seen = max(last_seen, ?2), last_name = coalesce(?3, last_name)
             WHERE fingerprint = ?1",
        )?
        .execute(params![identity, now, name])?;
    if updated > 0 {
        return Ok(());
    }
    let count: i64 = tx
        .prepare_cached("SELECT count(*) FROM identities")?
        .query_row([], |row| row.get(0))?;
    let excess = count + 1 - max_identities as i64;
    if excess > 0 {
        tx.prepare_cached(
            "DELETE FROM identities WHERE fingerprint IN (
                 SELECT fingerprint FROM identities AS i
                 WHERE NOT EXISTS (SELECT 1 FROM bindings AS b WHERE b.identity = i.fingerprint)
                 ORDER BY last_seen LIMIT ?1)",
        )?
        .execute([excess])?;
    }
    tx.prepare_cached(
        "INSERT INTO identities (fingerprint, first_seen, last_seen, last_name)
         VALUES (?1, ?2, ?2, coalesce(?3, ''))",
    )?
    .execute(params![identity, now, name])?;
    Ok(())
}

/// The owner used its name again: it becomes its most recently used one.
fn touch(tx: &Connection, keys: &[String; 2], identity: &str, now: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE bindings SET last_used = max(last_used, ?4)
         WHERE identity = ?3 AND (key_folded IN (?1, ?2) OR key_mapped IN (?1, ?2))",
    )?
    .execute(params![keys[0], keys[1], identity, now])?;
    Ok(())
}

/// Binds an unheld name to `identity`, releasing its least recently used
/// names first if it holds as many as it may.
fn bind(
    tx: &Connection,
    name: &NameKeys,
    identity: &str,
    now: i64,
    limits: Limits,
) -> rusqlite::Result<Claim> {
    let held: i64 = tx
        .prepare_cached("SELECT count(*) FROM bindings WHERE identity = ?1")?
        .query_row([identity], |row| row.get(0))?;
    let excess = held + 1 - limits.names_per_identity as i64;
    let released = if excess > 0 {
        release_least_used(tx, identity, excess)?
    } else {
        let total: i64 = tx
            .prepare_cached("SELECT count(*) FROM bindings")?
            .query_row([], |row| row.get(0))?;
        if total >= limits.bindings as i64 {
            return Ok(Claim::Full);
        }
        None
    };
    let [folded, mapped] = name.keys();
    tx.prepare_cached(
        "INSERT INTO bindings (name, key_folded, key_mapped, identity, bound_at, last_used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![name.name(), folded, mapped, identity, now])?;
    Ok(Claim::Bound { released })
}

/// Releases `count` of `identity`'s least recently used names; the last
/// one released (normally the only one).
fn release_least_used(
    tx: &Connection,
    identity: &str,
    count: i64,
) -> rusqlite::Result<Option<String>> {
    let mut statement = tx.prepare(
        "DELETE FROM bindings WHERE id IN (
             SELECT id FROM bindings WHERE identity = ?1
             ORDER BY last_used, id LIMIT ?2)
         RETURNING name",
    )?;
    let names = statement
        .query_map(params![identity, count], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names.into_iter().last())
}

/// A ban as read, before its target is checked.
struct BanRow {
    kind: String,
    target: String,
    name: String,
    reason: String,
    banned_at: i64,
}

impl BanRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<BanRow> {
        Ok(BanRow {
            kind: row.get(0)?,
            target: row.get(1)?,
            name: row.get(2)?,
            reason: row.get(3)?,
            banned_at: row.get(4)?,
        })
    }

    /// A ban whose target cannot be read (edited by hand?) is damage, not
    /// something to skip: skipping would let the banned one in.
    fn into_ban(self, path: &Path) -> Result<Ban, StoreError> {
        let target =
            BanTarget::from_row(&self.kind, &self.target).ok_or_else(|| StoreError::Damaged {
                path: path.to_path_buf(),
                detail: format!(
                    "a ban has the unreadable target {} \"{}\"",
                    self.kind, self.target
                ),
            })?;
        Ok(Ban {
            target,
            name: self.name,
            reason: self.reason,
            banned_at: self.banned_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::profile::name_keys;

    fn fingerprint(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    #[test]
    fn claims_made_at_once_are_each_decided_in_turn_and_all_kept() {
        let dir = std::env::temp_dir().join(format!("hubchat-store-group-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("hubchat-server.db");
        let store = Store::open(&path).unwrap();
        // 40 computers at once: 20 each claim a name of their own, and 20
        // more all claim "shared".
        let answers: Vec<(u8, Claim)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..40u8)
                .map(|n| {
                    let store = &store;
                    s.spawn(move || {
                        let name = if n < 20 {
                            format!("user{n}")
                        } else {
                            "shared".into()
                        };
                        let keys = name_keys(&name);
                        (n, store.claim(&keys, &fingerprint(n), 1_000).unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let bound = |c: &Claim| matches!(c, Claim::Bound { .. });
        assert!(answers[..20].iter().all(|(_, c)| bound(c)), "{answers:?}");
        let winners: Vec<u8> = answers[20..]
            .iter()
            .filter(|(_, c)| bound(c))
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(winners.len(), 1, "one computer gets the name: {answers:?}");
        assert!(answers[20..]
            .iter()
            .all(|(_, c)| bound(c) || matches!(c, Claim::Taken { .. })));
        drop(store);

        // Everything answered for is on disk.
        let again = Store::open(&path).unwrap();
        let bindings = again.bindings().unwrap();
        assert_eq!(bindings.len(), 21);
        let shared = bindings.iter().find(|b| b.name == "shared").unwrap();
        assert_eq!(shared.identity, fingerprint(winners[0]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
