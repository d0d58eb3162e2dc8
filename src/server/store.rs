//! What the server remembers across restarts: the identities it has seen
//! and the profile each last showed, which names belong to which identity,
//! the owner's bans, the messages kept for people who are away and the
//! receipts kept for senders who are away. Nothing else in the program
//! writes SQL; everything goes through [`Store`]'s typed functions.
//!
//! One SQLite file in the server's settings folder: the embedded default,
//! readable with the `sqlite3` tool (plain tables, text and integers, times
//! in unix seconds, those of kept messages and receipts in unix
//! milliseconds). It is opened in WAL mode with `synchronous=FULL`, so a
//! binding, ban or kept message that was answered for survives a power cut,
//! and a reader such as `sqlite3` never blocks the server. The schema is
//! versioned from the first day (`PRAGMA user_version`), with one list of
//! migrations.
//!
//! One plain mutex around the connection: every operation is a few indexed
//! look-ups and at most a short write, done while a client joins, the owner
//! clicks, or a message is kept for (or handed to) someone away; messages
//! between people who are both here never come near it. So there is nothing
//! to gain from finer locking, and a transaction per call keeps each answer
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

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::common::profile::{name_keys, NameKeys};
use crate::common::sqlite::{self, SchemaError, Trouble};

/// How long a call waits for another program (a `sqlite3` session writing,
/// another server) to let go of the file before giving up with
/// [`StoreError::Locked`]: long enough for any short write, short enough
/// that a server starting beside a stuck one says so at once.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// The schema, one entry per version: entry `i` takes a database from
/// version `i` to `i + 1`. A new version is one more entry; never edit one
/// that has shipped.
const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2];

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

/// Messages and receipts kept for people who are away (issue 13), and the
/// profile each identity last showed, so a person who is away can be shown
/// greyed in everyone's list with their colour and picture.
///
/// `kept.sender` is the sender's key: its fingerprint, or `name:<key>` for
/// a sender without identity; with `msg_id` it names a message, so a sender
/// resending after a lost acknowledgement finds it already kept. `seq` is
/// arrival order. `kept_at` is when the server took the message, unix ms:
/// expiry counts from it, never from `sent_at`, which is the sender's to
/// say. `receipts.recipient` is the original sender, who will be told.
///
/// `kept_totals` is one row the triggers keep equal to the number and text
/// size of all kept messages, so the store-wide limits cost one look-up
/// rather than a pass over every message at each keep. Triggers also run
/// for deletes by `ON DELETE CASCADE` and for edits made with `sqlite3`.
const SCHEMA_V2: &str = "
ALTER TABLE identities ADD COLUMN last_color TEXT NOT NULL DEFAULT 'gray';
ALTER TABLE identities ADD COLUMN last_image TEXT NOT NULL DEFAULT 'image_1.png';
CREATE TABLE kept (
    seq             INTEGER PRIMARY KEY,
    recipient       TEXT NOT NULL REFERENCES identities (fingerprint) ON DELETE CASCADE,
    sender          TEXT NOT NULL,
    sender_name     TEXT NOT NULL,
    sender_identity TEXT,
    msg_id          TEXT NOT NULL,
    text            TEXT NOT NULL,
    sent_at         INTEGER NOT NULL,
    kept_at         INTEGER NOT NULL,
    UNIQUE (recipient, sender, msg_id)
);
CREATE INDEX kept_by_recipient ON kept (recipient, seq);
CREATE INDEX kept_by_age ON kept (kept_at);
CREATE TABLE kept_totals (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    messages INTEGER NOT NULL,
    bytes    INTEGER NOT NULL
);
INSERT INTO kept_totals (id, messages, bytes) VALUES (1, 0, 0);
CREATE TRIGGER kept_added AFTER INSERT ON kept BEGIN
    UPDATE kept_totals
    SET messages = messages + 1, bytes = bytes + octet_length(new.text);
END;
CREATE TRIGGER kept_removed AFTER DELETE ON kept BEGIN
    UPDATE kept_totals
    SET messages = messages - 1, bytes = bytes - octet_length(old.text);
END;
CREATE TRIGGER kept_edited AFTER UPDATE OF text ON kept BEGIN
    UPDATE kept_totals
    SET bytes = bytes - octet_length(old.text) + octet_length(new.text);
END;
CREATE TABLE receipts (
    seq        INTEGER PRIMARY KEY,
    recipient  TEXT NOT NULL REFERENCES identities (fingerprint) ON DELETE CASCADE,
    about_name TEXT NOT NULL,
    msg_id     TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('delivered', 'read', 'failed')),
    detail     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    UNIQUE (recipient, msg_id, state)
);
CREATE INDEX receipts_by_recipient ON receipts (recipient, seq);
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
    /// that holds no name is forgotten (those with no messages or receipts
    /// kept for them first); twice [`Limits::bindings`], so there always
    /// is one.
    pub identities: usize,
    /// Messages kept for one person who is away. A month of an ordinary
    /// away fits many times over; past it the sender is told at once that
    /// the message was not kept ([`FullReason::Messages`]), rather than the
    /// person coming back to a flood, or one sender filling the disk
    /// through one recipient.
    pub kept_per_recipient: usize,
    /// Bytes of text kept for one person who is away: the same reason, for
    /// long messages (64 of the largest a client may send).
    pub kept_text_per_recipient: usize,
    /// How long a message waits for its recipient. Past it the message is
    /// dropped and its sender told ([`Store::expire`]): a person gone for a
    /// month is not coming back for it, and the sender should know.
    pub kept_for: Duration,
    /// Messages kept for everyone together. Each made-up identity could be
    /// sent its own [`Limits::kept_per_recipient`]; this caps them all, so
    /// made-up identities cannot fill the disk.
    pub kept_total: usize,
    /// Bytes of text kept for everyone together: [`Limits::kept_total`]
    /// messages of the largest size would be 13 GB.
    pub kept_text_total: usize,
    /// Receipts kept for one sender who is away. Past it the oldest are
    /// dropped so the newest fit: the newest say the most, and no receipt
    /// is worth refusing a message for.
    pub receipts_per_recipient: usize,
}

impl Default for Limits {
    /// 8 names an identity, 100,000 names and 200,000 identities in all
    /// (some 30 MB of file); 1,000 messages and 4 MiB of text kept for a
    /// person for 30 days, 200,000 messages and 256 MiB of text in all;
    /// 10,000 receipts a person.
    fn default() -> Self {
        Limits {
            names_per_identity: 8,
            bindings: 100_000,
            identities: 200_000,
            kept_per_recipient: 1_000,
            kept_text_per_recipient: 4 * 1024 * 1024,
            kept_for: Duration::from_secs(30 * 24 * 60 * 60),
            kept_total: 200_000,
            kept_text_total: 256 * 1024 * 1024,
            receipts_per_recipient: 10_000,
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

/// Someone who holds a name, as last seen: what everyone's list shows of a
/// person who is away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The fingerprint.
    pub identity: String,
    /// The name of its most recently used binding: a name it owns, never
    /// one it was last let use unbound.
    pub name: String,
    /// The colour and picture it last showed.
    pub color: String,
    pub image_name: String,
    /// Unix seconds.
    pub last_seen: i64,
}

/// A message to keep for someone who is away ([`Store::keep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewKept<'a> {
    /// The fingerprint of the person away.
    pub recipient: &'a str,
    /// The sender's key: its fingerprint, or `name:<key>` for a sender
    /// without identity.
    pub sender: &'a str,
    pub sender_name: &'a str,
    /// The sender's fingerprint, if it has one, so a receipt can be kept
    /// for it.
    pub sender_identity: Option<&'a str>,
    /// The sender's id for the message, unique among its messages.
    pub msg_id: &'a str,
    pub text: &'a str,
    /// Unix milliseconds.
    pub sent_at: i64,
}

/// A message kept for someone who is away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// Arrival order.
    pub seq: i64,
    pub recipient: String,
    pub sender: String,
    pub sender_name: String,
    pub sender_identity: Option<String>,
    pub msg_id: String,
    pub text: String,
    /// Unix milliseconds.
    pub sent_at: i64,
    /// When the server took it, unix milliseconds: what [`Store::expire`]
    /// counts from.
    pub kept_at: i64,
}

/// The answer to [`Store::keep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepOutcome {
    /// Kept, on disk.
    Kept,
    /// Kept before (the sender resent it): nothing changed.
    AlreadyKept,
    /// Not kept; the sender should be told why.
    Full(FullReason),
    /// The store does not remember the recipient (never seen, or forgotten
    /// to make room): there is nobody to keep it for. An answer, not a
    /// [`StoreError`], because the store works and the caller has a sender
    /// to tell.
    UnknownRecipient,
}

/// Which limit a message to keep would pass (see [`Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullReason {
    /// The recipient has this many messages waiting.
    Messages { limit: usize },
    /// The recipient has this much text waiting.
    Text { limit_bytes: usize },
    /// The server keeps this many messages for everyone together.
    ServerMessages { limit: usize },
    /// The server keeps this much text for everyone together.
    ServerText { limit_bytes: usize },
}

/// What a receipt says happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptState {
    /// The recipient's program has it.
    Delivered,
    /// The recipient read it.
    Read,
    /// It will not be delivered (kept too long, refused).
    Failed,
}

impl ReceiptState {
    fn text(self) -> &'static str {
        match self {
            ReceiptState::Delivered => "delivered",
            ReceiptState::Read => "read",
            ReceiptState::Failed => "failed",
        }
    }
}

impl rusqlite::types::FromSql for ReceiptState {
    /// The table's CHECK allows only these three; anything else is damage,
    /// which fails the whole read (and rolls back a take) rather than
    /// losing the receipt.
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match value.as_str()? {
            "delivered" => Ok(ReceiptState::Delivered),
            "read" => Ok(ReceiptState::Read),
            "failed" => Ok(ReceiptState::Failed),
            other => Err(rusqlite::types::FromSqlError::Other(
                format!("a receipt has the unknown state \"{other}\"").into(),
            )),
        }
    }
}

/// A receipt to keep for a sender who is away ([`Store::keep_receipt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewReceipt<'a> {
    /// The fingerprint of the original sender, who will be told.
    pub recipient: &'a str,
    /// Whose program confirmed, or to whom it failed.
    pub about_name: &'a str,
    pub msg_id: &'a str,
    pub state: ReceiptState,
    /// The sentence for [`ReceiptState::Failed`], else empty.
    pub detail: &'a str,
    /// Unix milliseconds.
    pub at: i64,
}

/// A receipt kept for a sender who was away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReceipt {
    /// Arrival order.
    pub seq: i64,
    pub recipient: String,
    pub about_name: String,
    pub msg_id: String,
    pub state: ReceiptState,
    pub detail: String,
    /// Unix milliseconds.
    pub at: i64,
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
        Self::from_trouble(path, sqlite::trouble(&err))
    }

    fn from_trouble(path: &Path, trouble: Trouble) -> StoreError {
        let path = path.to_path_buf();
        match trouble {
            Trouble::Damaged(detail) => StoreError::Damaged { path, detail },
            Trouble::Locked => StoreError::Locked { path },
            Trouble::CannotOpen(detail) => StoreError::CannotOpen { path, detail },
            Trouble::Failed(detail) => StoreError::Failed { path, detail },
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
    /// What this store keeps at most.
    pub fn limits(&self) -> Limits {
        self.limits
    }

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
        sqlite::migrate::<StoreError>(&mut conn, &path, MIGRATIONS)?;
        Ok(Store {
            conn: Mutex::new(conn),
            claims: Mutex::new(Vec::new()),
            path,
            limits: Limits::default(),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        sqlite::lock(&self.conn)
    }

    fn fail(&self, err: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, err)
    }

    /// Runs `work` in one write transaction, committed only if it succeeds.
    fn write<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        sqlite::write(&self.conn, |e| self.fail(e), work)
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
            let e = StoreError::from_trouble(&self.path, sqlite::trouble(err));
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

    /// `identity` showed this profile at `now` (unix seconds): kept so the
    /// list can show the person greyed, as they looked, while they are
    /// away. An identity the store does not remember is left unknown: only
    /// [`Store::claim`] makes one, within its limits. Nothing is written
    /// when the profile is the one already kept, the usual case: every
    /// join of an identity calls this, and a write would cost each join a
    /// flush to disk (the claim already noted when it was seen).
    pub fn remember_profile(
        &self,
        identity: &str,
        name: &str,
        color: &str,
        image_name: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        check_fingerprint(identity)?;
        // A read first: the write lock is what every join's claim waits
        // for, so the usual join (same look as last time) must not take it.
        let changed = {
            let conn = self.conn();
            conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM identities WHERE fingerprint = ?1
                   AND (last_name <> ?2 OR last_color <> ?3 OR last_image <> ?4))",
            )
            .and_then(|mut s| {
                s.query_row(params![identity, name, color, image_name], |row| {
                    row.get::<_, bool>(0)
                })
            })
            .map_err(|e| self.fail(e))?
        };
        if !changed {
            return Ok(());
        }
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE identities
                 SET last_name = ?2, last_color = ?3, last_image = ?4,
                     last_seen = max(last_seen, ?5)
                 WHERE fingerprint = ?1
                   AND (last_name <> ?2 OR last_color <> ?3 OR last_image <> ?4)",
            )?
            .execute(params![identity, name, color, image_name, now])?;
            Ok(())
        })
    }

    /// The people who hold a name, most recently seen first, at most
    /// `limit`: those everyone's list can show while they are away. Only
    /// owners of a name, because a name nobody owns may be anyone's the
    /// next minute.
    pub fn people(&self, limit: usize) -> Result<Vec<Person>, StoreError> {
        let conn = self.conn();
        let read = || -> rusqlite::Result<Vec<Person>> {
            let mut statement = conn.prepare_cached(
                "SELECT i.fingerprint,
                        (SELECT b.name FROM bindings AS b WHERE b.identity = i.fingerprint
                         ORDER BY b.last_used DESC, b.id DESC LIMIT 1),
                        i.last_color, i.last_image, i.last_seen
                 FROM identities AS i
                 WHERE EXISTS (SELECT 1 FROM bindings AS b WHERE b.identity = i.fingerprint)
                 ORDER BY i.last_seen DESC, i.rowid DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([sql_count(limit)], |row| {
                Ok(Person {
                    identity: row.get(0)?,
                    name: row.get(1)?,
                    color: row.get(2)?,
                    image_name: row.get(3)?,
                    last_seen: row.get(4)?,
                })
            })?;
            rows.collect()
        };
        read().map_err(|e| self.fail(e))
    }

    /// Keeps `message` for its recipient, who is away, at `now_ms` (unix
    /// milliseconds). Answered only once it is on disk, so a sender told
    /// "kept" can forget it. The same message again (same recipient,
    /// sender and id: a sender resending after a lost acknowledgement) is
    /// [`KeepOutcome::AlreadyKept`] and changes nothing, even when the
    /// recipient is full, so it is never doubled. A message that would pass
    /// a limit of [`Limits`] is not kept: [`KeepOutcome::Full`] says which.
    pub fn keep(&self, message: &NewKept<'_>, now_ms: i64) -> Result<KeepOutcome, StoreError> {
        check_fingerprint(message.recipient)?;
        if let Some(identity) = message.sender_identity {
            check_fingerprint(identity)?;
        }
        let limits = self.limits;
        self.write(|tx| keep_one(tx, message, now_ms, limits))
    }

    /// Every message kept for `recipient`, in the order they arrived.
    pub fn kept_for(&self, recipient: &str) -> Result<Vec<Kept>, StoreError> {
        let conn = self.conn();
        let read = || -> rusqlite::Result<Vec<Kept>> {
            let mut statement = conn.prepare_cached(
                "SELECT seq, recipient, sender, sender_name, sender_identity, msg_id, text,
                        sent_at, kept_at
                 FROM kept WHERE recipient = ?1 ORDER BY seq",
            )?;
            let rows = statement.query_map([recipient], kept_from_row)?;
            rows.collect()
        };
        read().map_err(|e| self.fail(e))
    }

    /// How many messages are kept for `recipient`.
    pub fn kept_count(&self, recipient: &str) -> Result<usize, StoreError> {
        let conn = self.conn();
        let count: i64 = conn
            .prepare_cached("SELECT count(*) FROM kept WHERE recipient = ?1")
            .and_then(|mut statement| statement.query_row([recipient], |row| row.get(0)))
            .map_err(|e| self.fail(e))?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// The recipient's program confirmed it has the message: it is no
    /// longer kept. The message, so its sender can be told; `None` if it
    /// was not kept (confirmed before, expired, or never kept), when there
    /// is nobody to tell again.
    pub fn delivered(
        &self,
        recipient: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<Kept>, StoreError> {
        self.write(|tx| {
            tx.prepare_cached(
                "DELETE FROM kept WHERE recipient = ?1 AND sender = ?2 AND msg_id = ?3
                 RETURNING seq, recipient, sender, sender_name, sender_identity, msg_id,
                           text, sent_at, kept_at",
            )?
            .query_row([recipient, sender, msg_id], kept_from_row)
            .optional()
        })
    }

    /// Drops the messages kept longer than [`Limits::kept_for`] at `now_ms`
    /// (unix milliseconds) and returns them, in the order they arrived, so
    /// their senders can be told they were not delivered.
    pub fn expire(&self, now_ms: i64) -> Result<Vec<Kept>, StoreError> {
        let kept_for = i64::try_from(self.limits.kept_for.as_millis()).unwrap_or(i64::MAX);
        let oldest_kept = now_ms.saturating_sub(kept_for);
        let mut expired = self.write(|tx| {
            let mut statement = tx.prepare_cached(
                "DELETE FROM kept WHERE kept_at < ?1
                 RETURNING seq, recipient, sender, sender_name, sender_identity, msg_id,
                           text, sent_at, kept_at",
            )?;
            let rows = statement.query_map([oldest_kept], kept_from_row)?;
            rows.collect::<rusqlite::Result<Vec<Kept>>>()
        })?;
        // RETURNING gives rows in no promised order.
        expired.sort_by_key(|kept| kept.seq);
        Ok(expired)
    }

    /// Keeps a receipt for a sender who is away. The same receipt again
    /// (same sender, message and state) is ignored. Past
    /// [`Limits::receipts_per_recipient`] the sender's oldest receipts are
    /// dropped so the newest fit. A receipt for an identity the store does
    /// not remember is dropped: there is nobody left to tell.
    pub fn keep_receipt(&self, r: &NewReceipt<'_>) -> Result<(), StoreError> {
        check_fingerprint(r.recipient)?;
        let limit = sql_count(self.limits.receipts_per_recipient);
        self.write(|tx| {
            let added = tx
                .prepare_cached(
                    "INSERT INTO receipts (recipient, about_name, msg_id, state, detail, at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6
                     WHERE EXISTS (SELECT 1 FROM identities WHERE fingerprint = ?1)
                     ON CONFLICT (recipient, msg_id, state) DO NOTHING",
                )?
                .execute(params![
                    r.recipient,
                    r.about_name,
                    r.msg_id,
                    r.state.text(),
                    r.detail,
                    r.at
                ])?;
            if added > 0 {
                tx.prepare_cached(
                    "DELETE FROM receipts WHERE recipient = ?1 AND seq <= (
                         SELECT seq FROM receipts WHERE recipient = ?1
                         ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                )?
                .execute(params![r.recipient, limit])?;
            }
            Ok(())
        })
    }

    /// The receipts kept for `recipient`, in the order they came, dropped
    /// in the same transaction: a receipt is told once.
    pub fn take_receipts(&self, recipient: &str) -> Result<Vec<KeptReceipt>, StoreError> {
        // Most joins have none: a read says so without taking the write
        // lock (every join of an identity asks).
        let any = {
            let conn = self.conn();
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM receipts WHERE recipient = ?1)")
                .and_then(|mut s| s.query_row([recipient], |row| row.get::<_, bool>(0)))
                .map_err(|e| self.fail(e))?
        };
        if !any {
            return Ok(Vec::new());
        }
        let mut taken = self.write(|tx| {
            let mut statement = tx.prepare_cached(
                "DELETE FROM receipts WHERE recipient = ?1
                 RETURNING seq, recipient, about_name, msg_id, state, detail, at",
            )?;
            let rows = statement.query_map([recipient], |row| {
                Ok(KeptReceipt {
                    seq: row.get(0)?,
                    recipient: row.get(1)?,
                    about_name: row.get(2)?,
                    msg_id: row.get(3)?,
                    state: row.get(4)?,
                    detail: row.get(5)?,
                    at: row.get(6)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<KeptReceipt>>>()
        })?;
        // RETURNING gives rows in no promised order.
        taken.sort_by_key(|receipt| receipt.seq);
        Ok(taken)
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

impl SchemaError for StoreError {
    fn sqlite(path: &Path, err: rusqlite::Error) -> Self {
        StoreError::from_sqlite(path, err)
    }
    fn damaged(path: &Path, detail: String) -> Self {
        StoreError::Damaged {
            path: path.to_path_buf(),
            detail,
        }
    }
    fn newer(path: &Path, found: i64, known: i64) -> Self {
        StoreError::Newer {
            path: path.to_path_buf(),
            found,
            known,
        }
    }
    fn foreign(path: &Path) -> Self {
        StoreError::Foreign {
            path: path.to_path_buf(),
        }
    }
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
/// A new identity first makes room if the store remembers as many as it may:
/// the least recently seen identities that hold no name, those with nothing
/// kept for them first, since forgetting an identity drops its kept messages
/// and receipts unannounced.
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
    let mut excess = count + 1 - max_identities as i64;
    if excess > 0 {
        let forgotten = tx
            .prepare_cached(
                "DELETE FROM identities WHERE fingerprint IN (
                     SELECT fingerprint FROM identities AS i
                     WHERE NOT EXISTS (SELECT 1 FROM bindings AS b WHERE b.identity = i.fingerprint)
                       AND NOT EXISTS (SELECT 1 FROM kept AS k WHERE k.recipient = i.fingerprint)
                       AND NOT EXISTS (SELECT 1 FROM receipts AS r WHERE r.recipient = i.fingerprint)
                     ORDER BY last_seen LIMIT ?1)",
            )?
            .execute([excess])?;
        excess -= sql_count(forgotten);
    }
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

/// A limit or count as SQLite's integer (a limit past it is no limit).
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Decides and keeps one message (see [`Store::keep`]) inside an open
/// transaction. A repeat is looked for before any limit, so a resend is
/// answered "kept" even when the recipient has since filled up.
fn keep_one(
    tx: &Connection,
    m: &NewKept<'_>,
    now_ms: i64,
    limits: Limits,
) -> rusqlite::Result<KeepOutcome> {
    let known: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM identities WHERE fingerprint = ?1)")?
        .query_row([m.recipient], |row| row.get(0))?;
    if !known {
        return Ok(KeepOutcome::UnknownRecipient);
    }
    let already: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM kept
                            WHERE recipient = ?1 AND sender = ?2 AND msg_id = ?3)",
        )?
        .query_row([m.recipient, m.sender, m.msg_id], |row| row.get(0))?;
    if already {
        return Ok(KeepOutcome::AlreadyKept);
    }
    let text_bytes = sql_count(m.text.len());
    // octet_length reads each row's size from its header, not its text.
    let (messages, bytes): (i64, i64) = tx
        .prepare_cached(
            "SELECT count(*), coalesce(sum(octet_length(text)), 0)
             FROM kept WHERE recipient = ?1",
        )?
        .query_row([m.recipient], |row| Ok((row.get(0)?, row.get(1)?)))?;
    if messages + 1 > sql_count(limits.kept_per_recipient) {
        return Ok(KeepOutcome::Full(FullReason::Messages {
            limit: limits.kept_per_recipient,
        }));
    }
    if bytes.saturating_add(text_bytes) > sql_count(limits.kept_text_per_recipient) {
        return Ok(KeepOutcome::Full(FullReason::Text {
            limit_bytes: limits.kept_text_per_recipient,
        }));
    }
    let (messages, bytes): (i64, i64) = tx
        .prepare_cached("SELECT messages, bytes FROM kept_totals WHERE id = 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    if messages + 1 > sql_count(limits.kept_total) {
        return Ok(KeepOutcome::Full(FullReason::ServerMessages {
            limit: limits.kept_total,
        }));
    }
    if bytes.saturating_add(text_bytes) > sql_count(limits.kept_text_total) {
        return Ok(KeepOutcome::Full(FullReason::ServerText {
            limit_bytes: limits.kept_text_total,
        }));
    }
    tx.prepare_cached(
        "INSERT INTO kept (recipient, sender, sender_name, sender_identity, msg_id, text,
                           sent_at, kept_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        m.recipient,
        m.sender,
        m.sender_name,
        m.sender_identity,
        m.msg_id,
        m.text,
        m.sent_at,
        now_ms
    ])?;
    Ok(KeepOutcome::Kept)
}

fn kept_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Kept> {
    Ok(Kept {
        seq: row.get(0)?,
        recipient: row.get(1)?,
        sender: row.get(2)?,
        sender_name: row.get(3)?,
        sender_identity: row.get(4)?,
        msg_id: row.get(5)?,
        text: row.get(6)?,
        sent_at: row.get(7)?,
        kept_at: row.get(8)?,
    })
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

    /// A fresh folder for one test's database file.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hubchat-store-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Computer `n` joins as `name` at `now` (unix seconds).
    fn join(store: &Store, n: u8, name: &str, now: i64) -> Claim {
        store.claim(&name_keys(name), &fingerprint(n), now).unwrap()
    }

    /// A message from the original client "bob" (no identity).
    fn from_bob<'a>(recipient: &'a str, msg_id: &'a str, text: &'a str) -> NewKept<'a> {
        NewKept {
            recipient,
            sender: "name:bob",
            sender_name: "Bob",
            sender_identity: None,
            msg_id,
            text,
            sent_at: 500,
        }
    }

    fn texts(kept: &[Kept]) -> Vec<&str> {
        kept.iter().map(|k| k.text.as_str()).collect()
    }

    fn receipt<'a>(recipient: &'a str, msg_id: &'a str, state: ReceiptState) -> NewReceipt<'a> {
        NewReceipt {
            recipient,
            about_name: "Alice",
            msg_id,
            state,
            detail: "",
            at: 7_000,
        }
    }

    #[test]
    fn messages_kept_for_someone_away_come_back_in_the_order_they_arrived() {
        let store = Store::open_in_memory().unwrap();
        join(&store, 1, "alice", 10);
        join(&store, 2, "carol", 10);
        let (alice, carol) = (fingerprint(1), fingerprint(2));
        let carols = NewKept {
            recipient: &alice,
            sender: &carol,
            sender_name: "Carol",
            sender_identity: Some(&carol),
            msg_id: "c1",
            text: "from carol",
            sent_at: 1_500,
        };
        assert_eq!(
            store.keep(&from_bob(&alice, "9", "first"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        assert_eq!(store.keep(&carols, 2_000).unwrap(), KeepOutcome::Kept);
        // Arrival order, not the order of ids or of the senders' clocks.
        assert_eq!(
            store.keep(&from_bob(&alice, "1", "third"), 3_000).unwrap(),
            KeepOutcome::Kept
        );
        assert_eq!(
            store
                .keep(&from_bob(&carol, "2", "not alice's"), 4_000)
                .unwrap(),
            KeepOutcome::Kept
        );

        let kept = store.kept_for(&alice).unwrap();
        assert_eq!(texts(&kept), ["first", "from carol", "third"]);
        assert_eq!(store.kept_count(&alice).unwrap(), 3);
        let second = &kept[1];
        assert_eq!(second.recipient, alice);
        assert_eq!(second.sender, carol);
        assert_eq!(second.sender_name, "Carol");
        assert_eq!(second.sender_identity.as_deref(), Some(carol.as_str()));
        assert_eq!(second.msg_id, "c1");
        assert_eq!((second.sent_at, second.kept_at), (1_500, 2_000));
        assert_eq!(kept[0].sender_identity, None);
        assert!(store.kept_for(&fingerprint(3)).unwrap().is_empty());
    }

    #[test]
    fn a_message_sent_again_is_already_kept_and_not_doubled() {
        let store = Store::open_in_memory().unwrap();
        join(&store, 1, "alice", 10);
        let alice = fingerprint(1);
        assert_eq!(
            store.keep(&from_bob(&alice, "7", "hello"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        // The acknowledgement was lost; Bob's program sends it again.
        assert_eq!(
            store
                .keep(&from_bob(&alice, "7", "hello, edited"), 2_000)
                .unwrap(),
            KeepOutcome::AlreadyKept
        );
        let kept = store.kept_for(&alice).unwrap();
        assert_eq!(texts(&kept), ["hello"]);
        assert_eq!(kept[0].kept_at, 1_000);
        // The same id from another sender is another message.
        let other = NewKept {
            sender: "name:dave",
            ..from_bob(&alice, "7", "dave's")
        };
        assert_eq!(store.keep(&other, 3_000).unwrap(), KeepOutcome::Kept);
        assert_eq!(store.kept_count(&alice).unwrap(), 2);
    }

    #[test]
    fn a_message_for_an_unknown_or_malformed_recipient_is_not_kept() {
        let store = Store::open_in_memory().unwrap();
        let stranger = fingerprint(9);
        assert_eq!(
            store.keep(&from_bob(&stranger, "1", "hi"), 1_000).unwrap(),
            KeepOutcome::UnknownRecipient
        );
        assert!(matches!(
            store.keep(&from_bob("alice", "1", "hi"), 1_000),
            Err(StoreError::NotAFingerprint { .. })
        ));
        join(&store, 1, "alice", 10);
        let alice = fingerprint(1);
        let bad_sender = NewKept {
            sender_identity: Some("not a fingerprint"),
            ..from_bob(&alice, "1", "hi")
        };
        assert!(matches!(
            store.keep(&bad_sender, 1_000),
            Err(StoreError::NotAFingerprint { .. })
        ));
        assert_eq!(store.kept_count(&alice).unwrap(), 0);
        assert_eq!(store.kept_count(&stranger).unwrap(), 0);
    }

    #[test]
    fn a_recipient_with_as_many_messages_as_allowed_refuses_one_more() {
        let store = Store::open_in_memory().unwrap().with_limits(Limits {
            kept_per_recipient: 2,
            ..Limits::default()
        });
        join(&store, 1, "alice", 10);
        join(&store, 2, "carol", 10);
        let (alice, carol) = (fingerprint(1), fingerprint(2));
        assert_eq!(
            store.keep(&from_bob(&alice, "1", "a"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        assert_eq!(
            store.keep(&from_bob(&alice, "2", "b"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        assert_eq!(
            store.keep(&from_bob(&alice, "3", "c"), 1_000).unwrap(),
            KeepOutcome::Full(FullReason::Messages { limit: 2 })
        );
        assert_eq!(texts(&store.kept_for(&alice).unwrap()), ["a", "b"]);
        // A resend of a kept one is still answered as kept.
        assert_eq!(
            store.keep(&from_bob(&alice, "2", "b"), 1_000).unwrap(),
            KeepOutcome::AlreadyKept
        );
        // The limit is each person's own.
        assert_eq!(
            store.keep(&from_bob(&carol, "3", "c"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        // Room again once one is delivered.
        store.delivered(&alice, "name:bob", "1").unwrap();
        assert_eq!(
            store.keep(&from_bob(&alice, "3", "c"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
    }

    #[test]
    fn a_recipient_with_as_much_text_as_allowed_refuses_more() {
        let store = Store::open_in_memory().unwrap().with_limits(Limits {
            kept_text_per_recipient: 10,
            ..Limits::default()
        });
        join(&store, 1, "alice", 10);
        let alice = fingerprint(1);
        // Bytes, not characters: "é" is two.
        assert_eq!(
            store.keep(&from_bob(&alice, "1", "ééé"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        assert_eq!(
            store.keep(&from_bob(&alice, "2", "12345"), 1_000).unwrap(),
            KeepOutcome::Full(FullReason::Text { limit_bytes: 10 })
        );
        assert_eq!(
            store.keep(&from_bob(&alice, "3", "1234"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        assert_eq!(texts(&store.kept_for(&alice).unwrap()), ["ééé", "1234"]);
    }

    #[test]
    fn the_server_refuses_more_messages_or_text_than_it_keeps_for_everyone() {
        let store = Store::open_in_memory().unwrap().with_limits(Limits {
            kept_total: 2,
            kept_text_total: 8,
            ..Limits::default()
        });
        for n in 1..=3 {
            join(&store, n, &format!("user{n}"), 10);
        }
        let (a, b, c) = (fingerprint(1), fingerprint(2), fingerprint(3));
        assert_eq!(
            store.keep(&from_bob(&a, "1", "12345"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        assert_eq!(
            store.keep(&from_bob(&b, "2", "1234"), 1_000).unwrap(),
            KeepOutcome::Full(FullReason::ServerText { limit_bytes: 8 })
        );
        assert_eq!(
            store.keep(&from_bob(&b, "2", "123"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        assert_eq!(
            store.keep(&from_bob(&c, "3", ""), 1_000).unwrap(),
            KeepOutcome::Full(FullReason::ServerMessages { limit: 2 })
        );
        assert_eq!(store.kept_count(&c).unwrap(), 0);
        // Delivered and expired messages give their room back.
        store.delivered(&a, "name:bob", "1").unwrap();
        assert_eq!(
            store.keep(&from_bob(&c, "3", "12345"), 2_000).unwrap(),
            KeepOutcome::Kept
        );
        let later = 2_000 + Limits::default().kept_for.as_millis() as i64 + 1;
        assert_eq!(store.expire(later).unwrap().len(), 2);
        assert_eq!(
            store.keep(&from_bob(&a, "4", "1234"), later).unwrap(),
            KeepOutcome::Kept
        );
        assert_eq!(
            store.keep(&from_bob(&b, "5", "1234"), later).unwrap(),
            KeepOutcome::Kept
        );
    }

    #[test]
    fn a_delivered_message_is_no_longer_kept_and_is_confirmed_once() {
        let store = Store::open_in_memory().unwrap();
        join(&store, 1, "alice", 10);
        join(&store, 2, "carol", 10);
        let (alice, carol) = (fingerprint(1), fingerprint(2));
        for (id, text) in [("1", "one"), ("2", "two"), ("3", "three")] {
            store.keep(&from_bob(&alice, id, text), 1_000).unwrap();
        }
        store
            .keep(&from_bob(&carol, "2", "carol's two"), 1_000)
            .unwrap();

        let confirmed = store.delivered(&alice, "name:bob", "2").unwrap().unwrap();
        assert_eq!(
            (confirmed.msg_id.as_str(), confirmed.text.as_str()),
            ("2", "two")
        );
        assert_eq!(confirmed.recipient, alice);
        assert_eq!(texts(&store.kept_for(&alice).unwrap()), ["one", "three"]);
        assert_eq!(texts(&store.kept_for(&carol).unwrap()), ["carol's two"]);
        // Confirmed twice, or by the wrong person, or never kept: nothing.
        assert_eq!(store.delivered(&alice, "name:bob", "2").unwrap(), None);
        assert_eq!(store.delivered(&alice, "name:dave", "1").unwrap(), None);
        assert_eq!(store.delivered(&alice, "name:bob", "99").unwrap(), None);
        assert_eq!(store.kept_count(&alice).unwrap(), 2);
    }

    #[test]
    fn messages_kept_too_long_are_dropped_and_returned_for_their_senders() {
        let store = Store::open_in_memory().unwrap().with_limits(Limits {
            kept_for: Duration::from_secs(10),
            ..Limits::default()
        });
        join(&store, 1, "alice", 10);
        join(&store, 2, "carol", 10);
        let (alice, carol) = (fingerprint(1), fingerprint(2));
        store.keep(&from_bob(&alice, "1", "oldest"), 1_000).unwrap();
        store.keep(&from_bob(&carol, "2", "old"), 2_000).unwrap();
        store
            .keep(&from_bob(&alice, "3", "on the line"), 5_000)
            .unwrap();
        store.keep(&from_bob(&alice, "4", "new"), 12_000).unwrap();

        // At 15 s, whatever was kept before 5 s is more than 10 s old.
        let expired = store.expire(15_000).unwrap();
        assert_eq!(texts(&expired), ["oldest", "old"]);
        assert_eq!(expired[1].recipient, carol);
        assert_eq!(
            texts(&store.kept_for(&alice).unwrap()),
            ["on the line", "new"]
        );
        assert!(store.kept_for(&carol).unwrap().is_empty());
        assert!(store.expire(15_000).unwrap().is_empty());
        assert_eq!(texts(&store.expire(15_001).unwrap()), ["on the line"]);
    }

    #[test]
    fn everything_kept_is_still_there_after_a_restart() {
        let dir = scratch("kept-restart");
        let path = dir.join("hubchat-server.db");
        let (alice, bob) = (fingerprint(1), fingerprint(2));
        {
            let store = Store::open(&path).unwrap();
            join(&store, 1, "alice", 10);
            join(&store, 2, "bob", 10);
            store
                .remember_profile(&alice, "alice", "#336699", "image_7.png", 20)
                .unwrap();
            store.keep(&from_bob(&alice, "1", "one"), 1_000).unwrap();
            store.keep(&from_bob(&alice, "2", "two"), 2_000).unwrap();
            store
                .keep_receipt(&receipt(&bob, "m1", ReceiptState::Read))
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let kept = store.kept_for(&alice).unwrap();
        assert_eq!(texts(&kept), ["one", "two"]);
        assert_eq!(kept[1].kept_at, 2_000);
        let people = store.people(10).unwrap();
        let person = people.iter().find(|p| p.identity == alice).unwrap();
        assert_eq!(
            (person.color.as_str(), person.image_name.as_str()),
            ("#336699", "image_7.png")
        );
        let receipts = store.take_receipts(&bob).unwrap();
        assert_eq!(receipts.len(), 1);
        assert_eq!(receipts[0].state, ReceiptState::Read);
        // A resend is still recognised after the restart.
        assert_eq!(
            store.keep(&from_bob(&alice, "1", "one"), 3_000).unwrap(),
            KeepOutcome::AlreadyKept
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_version_1_database_keeps_its_names_and_bans_and_can_keep_messages() {
        let dir = scratch("from-v1");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hubchat-server.db");
        let alice = fingerprint(1);
        {
            // As the first release left it: only the first migration.
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute_batch(MIGRATIONS[0]).unwrap();
            tx.pragma_update(None, "user_version", 1).unwrap();
            let claim = decide_claim(&tx, &name_keys("alice"), &alice, 100, Limits::default());
            assert_eq!(claim.unwrap(), Claim::Bound { released: None });
            tx.execute(
                "INSERT INTO bans (kind, target, name, reason, banned_at)
                 VALUES ('address', '10.0.0.9', 'mallory', 'spam', 200)",
                [],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let bindings = store.bindings().unwrap();
        assert_eq!(bindings.len(), 1);
        assert_eq!(
            (bindings[0].name.as_str(), bindings[0].identity.as_str()),
            ("alice", alice.as_str())
        );
        let bans = store.bans().unwrap();
        assert_eq!(bans.len(), 1);
        assert_eq!(
            bans[0].target,
            BanTarget::Address("10.0.0.9".parse().unwrap())
        );
        assert_eq!(bans[0].reason, "spam");
        // Identities from before have the default look until seen again.
        let people = store.people(10).unwrap();
        assert_eq!(people.len(), 1);
        assert_eq!(
            (people[0].color.as_str(), people[0].image_name.as_str()),
            ("gray", "image_1.png")
        );
        assert_eq!(
            store.keep(&from_bob(&alice, "1", "hi"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, 2);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn people_are_name_owners_most_recently_seen_first_under_their_last_used_name() {
        let store = Store::open_in_memory().unwrap();
        join(&store, 1, "alice", 10);
        join(&store, 1, "ally", 20);
        assert_eq!(store.people(1).unwrap()[0].name, "ally");
        join(&store, 1, "alice", 30);
        assert_eq!(store.people(1).unwrap()[0].name, "alice");
        join(&store, 2, "bob", 40);
        join(&store, 3, "carol", 25);
        // Dave may only use an owned name unbound: he owns nothing.
        assert!(matches!(join(&store, 4, "bob", 50), Claim::Taken { .. }));
        // Alice shows herself under a name she does not own.
        let alice = fingerprint(1);
        store
            .remember_profile(&alice, "guest", "red", "image_3.png", 60)
            .unwrap();
        // An identity the store never saw stays unseen.
        store
            .remember_profile(&fingerprint(9), "ghost", "blue", "image_2.png", 70)
            .unwrap();

        let people = store.people(10).unwrap();
        let seen: Vec<(&str, &str, i64)> = people
            .iter()
            .map(|p| (p.identity.as_str(), p.name.as_str(), p.last_seen))
            .collect();
        assert_eq!(
            seen,
            [
                (alice.as_str(), "alice", 60),
                (fingerprint(2).as_str(), "bob", 40),
                (fingerprint(3).as_str(), "carol", 25),
            ]
        );
        assert_eq!(
            (people[0].color.as_str(), people[0].image_name.as_str()),
            ("red", "image_3.png")
        );
        assert_eq!(
            (people[1].color.as_str(), people[1].image_name.as_str()),
            ("gray", "image_1.png")
        );
        let first_two: Vec<String> = store
            .people(2)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(first_two, ["alice", "bob"]);
    }

    #[test]
    fn receipts_kept_for_an_away_sender_are_told_once_in_order() {
        let store = Store::open_in_memory().unwrap();
        join(&store, 2, "bob", 10);
        let bob = fingerprint(2);
        store
            .keep_receipt(&receipt(&bob, "m1", ReceiptState::Delivered))
            .unwrap();
        store
            .keep_receipt(&NewReceipt {
                about_name: "Carol",
                detail: "Carol was away for 30 days.",
                ..receipt(&bob, "m2", ReceiptState::Failed)
            })
            .unwrap();
        store
            .keep_receipt(&receipt(&bob, "m1", ReceiptState::Read))
            .unwrap();
        // The same receipt again is ignored.
        store
            .keep_receipt(&NewReceipt {
                at: 9_000,
                ..receipt(&bob, "m1", ReceiptState::Delivered)
            })
            .unwrap();
        // Nobody to tell: dropped without complaint.
        store
            .keep_receipt(&receipt(&fingerprint(9), "m1", ReceiptState::Read))
            .unwrap();

        let taken = store.take_receipts(&bob).unwrap();
        let told: Vec<(&str, ReceiptState, i64)> = taken
            .iter()
            .map(|r| (r.msg_id.as_str(), r.state, r.at))
            .collect();
        assert_eq!(
            told,
            [
                ("m1", ReceiptState::Delivered, 7_000),
                ("m2", ReceiptState::Failed, 7_000),
                ("m1", ReceiptState::Read, 7_000),
            ]
        );
        assert_eq!(taken[1].about_name, "Carol");
        assert_eq!(taken[1].detail, "Carol was away for 30 days.");
        assert_eq!(taken[1].recipient, bob);
        assert!(store.take_receipts(&bob).unwrap().is_empty());
        assert!(store.take_receipts(&fingerprint(9)).unwrap().is_empty());
    }

    #[test]
    fn past_its_limit_a_sender_keeps_only_the_newest_receipts() {
        let store = Store::open_in_memory().unwrap().with_limits(Limits {
            receipts_per_recipient: 3,
            ..Limits::default()
        });
        join(&store, 2, "bob", 10);
        join(&store, 3, "carol", 10);
        let (bob, carol) = (fingerprint(2), fingerprint(3));
        store
            .keep_receipt(&receipt(&carol, "c", ReceiptState::Read))
            .unwrap();
        for id in ["m1", "m2", "m3", "m4", "m5"] {
            store
                .keep_receipt(&receipt(&bob, id, ReceiptState::Delivered))
                .unwrap();
        }
        let ids: Vec<String> = store
            .take_receipts(&bob)
            .unwrap()
            .into_iter()
            .map(|r| r.msg_id)
            .collect();
        assert_eq!(ids, ["m3", "m4", "m5"]);
        assert_eq!(store.take_receipts(&carol).unwrap().len(), 1);
    }

    #[test]
    fn forgetting_an_identity_drops_what_was_kept_for_it_and_frees_its_room() {
        // No names can be bound, so every identity may be forgotten; the
        // store remembers one, and keeps one message in all.
        let store = Store::open_in_memory().unwrap().with_limits(Limits {
            bindings: 0,
            identities: 1,
            kept_total: 1,
            ..Limits::default()
        });
        assert_eq!(join(&store, 1, "alice", 10), Claim::Full);
        let alice = fingerprint(1);
        assert_eq!(
            store.keep(&from_bob(&alice, "1", "hi"), 1_000).unwrap(),
            KeepOutcome::Kept
        );
        store
            .keep_receipt(&receipt(&alice, "a1", ReceiptState::Read))
            .unwrap();

        join(&store, 2, "bob", 20);
        let bob = fingerprint(2);
        assert_eq!(store.kept_count(&alice).unwrap(), 0);
        assert!(store.take_receipts(&alice).unwrap().is_empty());
        assert_eq!(
            store.keep(&from_bob(&alice, "2", "hi"), 2_000).unwrap(),
            KeepOutcome::UnknownRecipient
        );
        // The store-wide count went down with it.
        assert_eq!(
            store.keep(&from_bob(&bob, "3", "hi"), 2_000).unwrap(),
            KeepOutcome::Kept
        );
    }

    #[test]
    fn identities_with_something_kept_for_them_are_forgotten_last() {
        let store = Store::open_in_memory().unwrap().with_limits(Limits {
            bindings: 0,
            identities: 3,
            ..Limits::default()
        });
        for (n, now) in [(1, 10), (2, 20), (3, 30), (4, 40)] {
            join(&store, n, &format!("user{n}"), now);
        }
        // 1 was forgotten: the least recently seen.
        assert_eq!(
            store
                .keep(&from_bob(&fingerprint(1), "1", "hi"), 1_000)
                .unwrap(),
            KeepOutcome::UnknownRecipient
        );
        // 2 is now the least recently seen, but has a message waiting, and
        // 3 a receipt: 4, with nothing waiting, goes first.
        assert_eq!(
            store
                .keep(&from_bob(&fingerprint(2), "1", "hi"), 1_000)
                .unwrap(),
            KeepOutcome::Kept
        );
        store
            .keep_receipt(&receipt(&fingerprint(3), "r", ReceiptState::Read))
            .unwrap();
        join(&store, 5, "user5", 50);
        assert_eq!(store.kept_count(&fingerprint(2)).unwrap(), 1);
        assert_eq!(store.take_receipts(&fingerprint(3)).unwrap().len(), 1);
        assert_eq!(
            store
                .keep(&from_bob(&fingerprint(4), "1", "hi"), 1_000)
                .unwrap(),
            KeepOutcome::UnknownRecipient
        );
    }
}
