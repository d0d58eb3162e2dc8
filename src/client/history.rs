//! What the client remembers of its conversations: every line it sent or
//! received, per server, with its time and delivery state, so windows come
//! back after a restart, people you talked with stay in the list while they
//! are offline, and old lines can be searched. Nothing else in the client
//! writes SQL; the window layer calls [`History`]'s typed functions, and
//! nothing here knows about FLTK.
//!
//! One SQLite file in the settings folder ([`FILE_NAME`], see
//! [`default_path`]), readable with the `sqlite3` tool: a `conversations`
//! table (one row per server and partner, with the partner's face as last
//! seen) and a `lines` table (text, times in unix milliseconds, states as
//! words). The schema is versioned from the first day (`PRAGMA
//! user_version`), with one list of migrations.
//!
//! **Exactly once.** HubChat peers give each message a random id. A line
//! received with an id already kept for the same server, conversation and
//! author is not added again ([`History::add_incoming`] answers `None`), and
//! the ids are in the file, so this holds across restarts: a server that
//! delivers a kept message again after the client crashed before
//! confirming it shows it once. Lines without an id (from original peers,
//! notices) are never taken for duplicates. A client running without
//! history should still open [`History::open_in_memory`] for each run: it
//! then shows each message once within the run, and can still send its
//! unconfirmed messages again after a reconnect ([`History::unsent`]).
//!
//! **Durability.** WAL mode with `synchronous=NORMAL`: a commit is in the
//! write-ahead log, handed to the operating system, before a call returns,
//! so a crash of the program loses nothing; the log is flushed to the disk
//! at each checkpoint (every 1,000 pages of log, about a hundred messages),
//! so a power cut or a crash of the whole system can lose the lines written
//! since the last one, but never damages the file. The server's store pays
//! an fsync per commit (`FULL`) because a binding it answered for must not
//! be handed to someone else after a power cut; here the cost would be an
//! fsync per message, on the window's thread, to save the last lines in an
//! event that also takes down the window showing them. A line lost that
//! way loses its id too, so a server delivering it again adds it again:
//! once, not twice.
//!
//! **Search.** An FTS5 index over the lines' text (an external-content
//! table, kept by triggers, so the text is stored once), with the
//! `unicode61` tokenizer removing diacritics: "cafe" finds "café", case
//! never matters. What the user types is never FTS5 syntax: each word
//! becomes a quoted phrase, the last one a prefix (the user may still be
//! typing it), so no input can make a syntax error. Hits come newest first,
//! not best first: people look for something said recently far more often
//! than for the line with the most matching words, ranking by relevance
//! favours short lines over the sentence being looked for, and FTS5 can
//! read its index newest first, so a search for a common word stops after
//! `limit` hits instead of ranking them all. Scripts written without
//! spaces (Chinese, Japanese, Thai) are one word per run of characters to
//! `unicode61`: a search finds the start of such a run, not a word inside.
//!
//! **Forgetting.** Clearing a conversation removes its words from the file,
//! not only from view: deleted content is overwritten (`secure_delete`),
//! the search index is rid of the lines' words (at once, or by rewriting
//! it, whichever is quicker), and the write-ahead log is emptied
//! afterwards. Copies outside the file (backups, the file system's own)
//! are beyond its reach.
//!
//! One plain mutex around the connection: each call is one short
//! transaction made by the window's thread (or the controller beside it),
//! so there is nothing to gain from finer locking.
//!
//! A history that cannot be used (damaged, from a newer version, another
//! program's) gives a [`HistoryError`] naming the file, for the client to
//! show. Unlike the server's store, nothing is checked beyond the schema at
//! opening: a full check reads the whole file, which grows without bound,
//! and a damaged history is a loss, not a security matter. Damage met later
//! is reported by the call that meets it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::common::sqlite::{self, SchemaError, Trouble};

/// The history's file name in the settings folder.
pub const FILE_NAME: &str = "history.sqlite";

/// How long a call waits for another program (a second client with the
/// same settings folder, a `sqlite3` session) to let go of the file before
/// giving up with [`HistoryError::Locked`]. Writes here take milliseconds;
/// waiting longer would only freeze the window.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// The most words of a search that are used; the rest are ignored. Each
/// word is one more read of the index (about a millisecond for a common
/// word in a history of 100,000 lines), and a pasted paragraph is not a
/// search anyone means.
pub const MAX_SEARCH_WORDS: usize = 32;

/// The most words of context a search hit's snippet shows.
const SNIPPET_WORDS: i64 = 16;

/// Where a snippet's match starts and ends, from `snippet()`: private-use
/// characters no keyboard types (a line that holds one anyway gets a
/// snippet without marks, see [`snippet_pieces`]).
const MARK_OPEN: char = '\u{E000}';
const MARK_CLOSE: char = '\u{E001}';

/// The schema, one entry per version: entry `i` takes a database from
/// version `i` to `i + 1`. Version 2 is one more entry; never edit one that
/// has shipped.
const MIGRATIONS: &[&str] = &[SCHEMA_V1];

/// Times are unix milliseconds. A conversation is one partner (or room) on
/// one server: `server` and `conv` are the caller's keys, kept as given.
/// Line ids (`AUTOINCREMENT`) are never reused, so a row a window holds
/// never comes to name another line. `lines_once` is the exactly-once rule;
/// its first column also finds my own message by id for its receipts. The
/// search index keeps no per-line sizes (`columnsize = 0`): hits are not
/// ranked, and only ranking needs them.
const SCHEMA_V1: &str = "
CREATE TABLE conversations (
    id            INTEGER PRIMARY KEY,
    server        TEXT NOT NULL,
    conv          TEXT NOT NULL,
    partner_name  TEXT NOT NULL,
    partner_color TEXT NOT NULL,
    partner_image TEXT NOT NULL,
    last_at_ms    INTEGER NOT NULL,
    UNIQUE (server, conv)
);
CREATE INDEX conversations_by_last_line ON conversations (server, last_at_ms);
CREATE TABLE lines (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    conv_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    msg_id  TEXT,
    mine    INTEGER NOT NULL CHECK (mine IN (0, 1)),
    author  TEXT NOT NULL,
    text    TEXT NOT NULL,
    at_ms   INTEGER NOT NULL,
    state   TEXT NOT NULL CHECK (state IN
        ('sending', 'sent', 'kept', 'delivered', 'read', 'failed', 'received')),
    detail  TEXT NOT NULL
);
CREATE INDEX lines_by_conversation ON lines (conv_id);
CREATE UNIQUE INDEX lines_once ON lines (msg_id, conv_id, author)
    WHERE msg_id IS NOT NULL;
CREATE INDEX lines_sending ON lines (conv_id) WHERE state = 'sending';
CREATE VIRTUAL TABLE lines_fts USING fts5 (
    text,
    content = 'lines', content_rowid = 'id', columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER lines_fts_insert AFTER INSERT ON lines BEGIN
    INSERT INTO lines_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER lines_fts_delete AFTER DELETE ON lines BEGIN
    INSERT INTO lines_fts (lines_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER lines_fts_update AFTER UPDATE OF text ON lines BEGIN
    INSERT INTO lines_fts (lines_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO lines_fts (rowid, text) VALUES (new.id, new.text);
END;
";

/// Where a line of mine has got to, or that a line is someone else's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Mine, written but not yet acknowledged by the server: sent again,
    /// with the same id, after a reconnect or restart ([`History::unsent`]).
    Sending,
    /// Mine, handed to a server that cannot confirm anything (an original
    /// server): as far as anyone will ever know.
    Sent,
    /// Mine; the server keeps it until the recipient, who is away, returns.
    Kept,
    /// Mine; the recipient's program has it.
    Delivered,
    /// Mine; the recipient has seen it.
    Read,
    /// Mine; it will not arrive. The line's detail says why.
    Failed,
    /// Someone else's, received.
    Received,
}

impl State {
    /// The word the file keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Sending => "sending",
            State::Sent => "sent",
            State::Kept => "kept",
            State::Delivered => "delivered",
            State::Read => "read",
            State::Failed => "failed",
            State::Received => "received",
        }
    }

    /// The state a word from the file names.
    pub fn parse(word: &str) -> Option<State> {
        Some(match word {
            "sending" => State::Sending,
            "sent" => State::Sent,
            "kept" => State::Kept,
            "delivered" => State::Delivered,
            "read" => State::Read,
            "failed" => State::Failed,
            "received" => State::Received,
            _ => return None,
        })
    }

    /// Whether a message of mine in state `self` may move to `next`: only
    /// forward (Read beats Delivered beats Kept or Sent beats Sending; Kept
    /// and Sent are level, neither follows the other), and to Failed only
    /// while nothing has confirmed it arrived. A message
    /// that was given up on may still turn out delivered or read: a receipt
    /// from the recipient is the last word.
    pub fn may_become(self, next: State) -> bool {
        use State::*;
        match next {
            Sending | Received => false,
            Sent | Kept => self == Sending,
            Failed => matches!(self, Sending | Sent | Kept),
            Delivered => matches!(self, Sending | Sent | Kept | Failed),
            Read => matches!(self, Sending | Sent | Kept | Delivered | Failed),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The other side of a conversation as it looked when a line was added:
/// the list shows the last one seen while the partner is offline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Partner {
    pub name: String,
    /// As the partner gave it: a Tk colour name or `#rrggbb`.
    pub color: String,
    /// The partner's picture, `image_<n>.png` or another name it gave.
    pub image_name: String,
}

/// One line of a conversation as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    /// Its row: what [`History::around`] takes and [`History::set_state`]
    /// answers.
    pub row: i64,
    /// The id a HubChat peer gave it; none from original peers and notices.
    pub msg_id: Option<String>,
    /// Written by this client.
    pub mine: bool,
    /// The author's name at the time.
    pub author: String,
    pub text: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub state: State,
    /// Why it failed, or another sentence about its state; may be empty.
    pub detail: String,
}

/// A message of mine the server has not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsent {
    pub conv: String,
    /// The partner's name as last seen, to address it.
    pub partner_name: String,
    pub row: i64,
    pub msg_id: String,
    pub text: String,
    pub at_ms: i64,
}

/// One conversation of a server, for the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub conv: String,
    /// As last seen.
    pub partner: Partner,
    /// The time of its latest line, unix milliseconds.
    pub last_at_ms: i64,
}

/// A line of mine whose state [`History::set_state`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub conv: String,
    pub row: i64,
}

/// A part of a search hit's snippet; `hit` parts are what matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub hit: bool,
}

/// A line found by [`History::search`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub server: String,
    pub conv: String,
    /// The conversation's partner as last seen.
    pub partner_name: String,
    pub row: i64,
    pub mine: bool,
    pub author: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The whole line.
    pub text: String,
    /// Up to 16 words around the match, "…" where cut, the match marked.
    pub snippet: Vec<Piece>,
}

/// Why the history cannot be used. Each says, in a sentence, which file and
/// what the user can do.
#[derive(Debug)]
pub enum HistoryError {
    /// The folder the file goes in could not be made.
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
    /// A message of mine with this id is already in the conversation: ids
    /// must be new for each message.
    IdInUse { msg_id: String },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::Folder { path, source } => write!(
                f,
                "The folder for the conversation history {} could not be made ({source}). \
                 Check that the settings folder can be written.",
                path.display()
            ),
            HistoryError::CannotOpen { path, detail } => write!(
                f,
                "The conversation history {} cannot be opened ({detail}). Check that it is \
                 a file this user may read and write.",
                path.display()
            ),
            HistoryError::Damaged { path, detail } => write!(
                f,
                "The conversation history {} is damaged ({detail}). Move it away to start \
                 a new history, or restore a backup.",
                path.display()
            ),
            HistoryError::Foreign { path } => write!(
                f,
                "The file {} is another program's database, not HubChat's conversation \
                 history. Move it away to start a new history.",
                path.display()
            ),
            HistoryError::Newer { path, found, known } => write!(
                f,
                "The conversation history {} was written by a newer HubChat (schema \
                 version {found}; this one knows up to {known}). Run the newer version, \
                 or move the file away to start a new history.",
                path.display()
            ),
            HistoryError::Locked { path } => write!(
                f,
                "The conversation history {} is locked by another program (another \
                 HubChat client with the same settings folder?). Close that program and \
                 try again.",
                path.display()
            ),
            HistoryError::Failed { path, detail } => write!(
                f,
                "The conversation history {} could not be read or written ({detail}). \
                 Check that the disk has free space and works.",
                path.display()
            ),
            HistoryError::IdInUse { msg_id } => write!(
                f,
                "A message of yours with the id \"{}\" is already in this conversation; \
                 each message needs a new id.",
                msg_id.escape_debug()
            ),
        }
    }
}

impl std::error::Error for HistoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HistoryError::Folder { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl HistoryError {
    /// Sorts an SQLite error into what the user can do about it.
    fn from_sqlite(path: &Path, err: rusqlite::Error) -> HistoryError {
        let path = path.to_path_buf();
        match sqlite::trouble(&err) {
            Trouble::Damaged(detail) => HistoryError::Damaged { path, detail },
            Trouble::Locked => HistoryError::Locked { path },
            Trouble::CannotOpen(detail) => HistoryError::CannotOpen { path, detail },
            Trouble::Failed(detail) => HistoryError::Failed { path, detail },
        }
    }
}

/// The history file in the settings folder, if there is one.
pub fn default_path() -> Option<PathBuf> {
    crate::common::settings::config_dir().map(|dir| dir.join(FILE_NAME))
}

/// The client's conversations. `Send + Sync`: share it in an `Arc`.
#[derive(Debug)]
pub struct History {
    conn: Mutex<Connection>,
    /// For error sentences.
    path: PathBuf,
}

impl History {
    /// Opens the history at `path`, making it (and its folder) if missing,
    /// and brings its schema up to date.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|source| HistoryError::Folder {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| HistoryError::from_sqlite(path, e))?;
        Self::start(conn, path.to_path_buf())
    }

    /// A history that keeps nothing after it is dropped: for tests, and
    /// for a client told to keep no history (see the module doc: it still
    /// needs the ids to show each message once).
    pub fn open_in_memory() -> Result<History, HistoryError> {
        let path = PathBuf::from("(in memory)");
        let conn = Connection::open_in_memory().map_err(|e| HistoryError::from_sqlite(&path, e))?;
        Self::start(conn, path)
    }

    /// The file, as given to [`History::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn start(mut conn: Connection, path: PathBuf) -> Result<History, HistoryError> {
        let fail = |e| HistoryError::from_sqlite(&path, e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        // "wal", or "memory" in memory; a file system without shared
        // memory keeps the rollback journal, which works the same.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(fail)?;
        // Enough for a client: see the module doc, "Durability".
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(fail)?;
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(fail)?;
        sqlite::migrate::<HistoryError>(&mut conn, &path, MIGRATIONS)?;
        Ok(History {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        sqlite::lock(&self.conn)
    }

    fn fail(&self, err: rusqlite::Error) -> HistoryError {
        HistoryError::from_sqlite(&self.path, err)
    }

    /// Runs `work` in one write transaction, committed only if it succeeds.
    fn write<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, HistoryError> {
        sqlite::write(&self.conn, |e| self.fail(e), work)
    }

    /// Runs one read on the connection.
    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, HistoryError> {
        let conn = self.conn();
        work(&conn).map_err(|e| self.fail(e))
    }

    /// Keeps a line someone else wrote in conversation `conv` of `server`,
    /// with `partner` as the conversation's face from now on. Its new row,
    /// or `None` if a line with the same id from the same author is already
    /// in the conversation: the message was delivered again, and must be
    /// shown only once (the partner's face is still brought up to date).
    /// Lines without an id are always new.
    // One argument per part of the line, as the window layer has them.
    #[allow(clippy::too_many_arguments)]
    pub fn add_incoming(
        &self,
        server: &str,
        conv: &str,
        partner: &Partner,
        msg_id: Option<&str>,
        author: &str,
        text: &str,
        at_ms: i64,
    ) -> Result<Option<i64>, HistoryError> {
        self.write(|tx| {
            let conv_id = touch_conversation(tx, server, conv, partner, at_ms)?;
            tx.prepare_cached(
                "INSERT INTO lines (conv_id, msg_id, mine, author, text, at_ms, state, detail)
                 VALUES (?1, ?2, 0, ?3, ?4, ?5, 'received', '')
                 ON CONFLICT (msg_id, conv_id, author) WHERE msg_id IS NOT NULL DO NOTHING
                 RETURNING id",
            )?
            .query_row(params![conv_id, msg_id, author, text, at_ms], |row| {
                row.get(0)
            })
            .optional()
        })
    }

    /// Keeps a message I wrote as `author` in conversation `conv` of
    /// `server`, [`State::Sending`] until [`History::set_state`] says more.
    /// Its new row.
    // One argument per part of the line, as the window layer has them.
    #[allow(clippy::too_many_arguments)]
    pub fn add_outgoing(
        &self,
        server: &str,
        conv: &str,
        partner: &Partner,
        msg_id: &str,
        author: &str,
        text: &str,
        at_ms: i64,
    ) -> Result<i64, HistoryError> {
        let row = self.write(|tx| {
            let conv_id = touch_conversation(tx, server, conv, partner, at_ms)?;
            tx.prepare_cached(
                "INSERT INTO lines (conv_id, msg_id, mine, author, text, at_ms, state, detail)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5, 'sending', '')
                 ON CONFLICT (msg_id, conv_id, author) WHERE msg_id IS NOT NULL DO NOTHING
                 RETURNING id",
            )?
            .query_row(params![conv_id, msg_id, author, text, at_ms], |row| {
                row.get(0)
            })
            .optional()
        })?;
        row.ok_or_else(|| HistoryError::IdInUse {
            msg_id: msg_id.chars().take(80).collect(),
        })
    }

    /// Moves my message `msg_id` on `server` to `state`, with `detail`
    /// (why it failed, or empty), if that is forward ([`State::may_become`]).
    /// Which line changed, or `None` if none did: no such message of mine,
    /// or a state it has already passed (a late or repeated receipt).
    pub fn set_state(
        &self,
        server: &str,
        msg_id: &str,
        state: State,
        detail: &str,
    ) -> Result<Option<Changed>, HistoryError> {
        let path = &self.path;
        let mut bad_state = None;
        let changed = self.write(|tx| {
            let found = tx
                .prepare_cached(
                    "SELECT l.id, l.state, c.conv FROM lines AS l
                     JOIN conversations AS c ON c.id = l.conv_id
                     WHERE l.msg_id = ?2 AND l.mine = 1 AND c.server = ?1
                     ORDER BY l.id DESC LIMIT 1",
                )?
                .query_row(params![server, msg_id], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .optional()?;
            let Some((row, word, conv)) = found else {
                return Ok(None);
            };
            let Some(now) = State::parse(&word) else {
                bad_state = Some(word);
                return Ok(None);
            };
            if !now.may_become(state) {
                return Ok(None);
            }
            tx.prepare_cached("UPDATE lines SET state = ?2, detail = ?3 WHERE id = ?1")?
                .execute(params![row, state.as_str(), detail])?;
            Ok(Some(Changed { conv, row }))
        })?;
        match bad_state {
            Some(word) => Err(unreadable_state(path, &word)),
            None => Ok(changed),
        }
    }

    /// My messages on `server` the server has not acknowledged, in the
    /// order they were written: to send again, with the same ids, after a
    /// reconnect or restart.
    pub fn unsent(&self, server: &str) -> Result<Vec<Unsent>, HistoryError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT c.conv, c.partner_name, l.id, l.msg_id, l.text, l.at_ms
                 FROM lines AS l JOIN conversations AS c ON c.id = l.conv_id
                 WHERE l.state = 'sending' AND l.mine = 1 AND l.msg_id IS NOT NULL
                   AND c.server = ?1
                 ORDER BY l.id",
            )?;
            let rows = statement.query_map([server], |row| {
                Ok(Unsent {
                    conv: row.get(0)?,
                    partner_name: row.get(1)?,
                    row: row.get(2)?,
                    msg_id: row.get(3)?,
                    text: row.get(4)?,
                    at_ms: row.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The last `limit` lines of conversation `conv` of `server`, oldest
    /// first (in the order they were written): what a window shows when it
    /// opens.
    pub fn recent(
        &self,
        server: &str,
        conv: &str,
        limit: usize,
    ) -> Result<Vec<StoredLine>, HistoryError> {
        let rows = self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, msg_id, mine, author, text, at_ms, state, detail FROM lines
                 WHERE conv_id = (SELECT id FROM conversations WHERE server = ?1 AND conv = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows =
                statement.query_map(params![server, conv, sql_limit(limit)], LineRow::read)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter()
            .rev()
            .map(|row| row.into_line(&self.path))
            .collect()
    }

    /// Line `row` with up to `before` lines of its conversation before it
    /// and `after` after it, oldest first: a search hit in its context.
    /// Empty if there is no such line (any more).
    pub fn around(
        &self,
        row: i64,
        before: usize,
        after: usize,
    ) -> Result<Vec<StoredLine>, HistoryError> {
        // One statement, so all three parts come from the same moment.
        let rows = self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT * FROM (
                     SELECT id, msg_id, mine, author, text, at_ms, state, detail FROM lines
                     WHERE conv_id = (SELECT conv_id FROM lines WHERE id = ?1) AND id < ?1
                     ORDER BY id DESC LIMIT ?2)
                 UNION ALL
                 SELECT id, msg_id, mine, author, text, at_ms, state, detail FROM lines
                 WHERE id = ?1
                 UNION ALL
                 SELECT * FROM (
                     SELECT id, msg_id, mine, author, text, at_ms, state, detail FROM lines
                     WHERE conv_id = (SELECT conv_id FROM lines WHERE id = ?1) AND id > ?1
                     ORDER BY id LIMIT ?3)
                 ORDER BY 1",
            )?;
            let rows = statement.query_map(
                params![row, sql_limit(before), sql_limit(after)],
                LineRow::read,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter()
            .map(|row| row.into_line(&self.path))
            .collect()
    }

    /// Every conversation of `server`, the one with the latest line first:
    /// the people talked with, shown even while offline, and the windows
    /// to bring back after a restart.
    pub fn conversations(&self, server: &str) -> Result<Vec<Summary>, HistoryError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT conv, partner_name, partner_color, partner_image, last_at_ms
                 FROM conversations WHERE server = ?1
                 ORDER BY last_at_ms DESC, id DESC",
            )?;
            let rows = statement.query_map([server], |row| {
                Ok(Summary {
                    conv: row.get(0)?,
                    partner: Partner {
                        name: row.get(1)?,
                        color: row.get(2)?,
                        image_name: row.get(3)?,
                    },
                    last_at_ms: row.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The lines holding every word the user typed in `typed` (the last
    /// one may be the start of a word), on `server` or on any server,
    /// newest first, at most `limit`. Case and accents do not matter;
    /// nothing typed is taken as search syntax, and blank input finds
    /// nothing.
    pub fn search(
        &self,
        server: Option<&str>,
        typed: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, HistoryError> {
        let Some(query) = fts_query(typed) else {
            return Ok(Vec::new());
        };
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT c.server, c.conv, c.partner_name, l.id, l.mine, l.author, l.at_ms,
                        l.text, snippet(lines_fts, 0, ?3, ?4, '…', ?5)
                 FROM lines_fts
                 JOIN lines AS l ON l.id = lines_fts.rowid
                 JOIN conversations AS c ON c.id = l.conv_id
                 WHERE lines_fts MATCH ?1 AND (?2 IS NULL OR c.server = ?2)
                 ORDER BY lines_fts.rowid DESC
                 LIMIT ?6",
            )?;
            let rows = statement.query_map(
                params![
                    query,
                    server,
                    MARK_OPEN.to_string(),
                    MARK_CLOSE.to_string(),
                    SNIPPET_WORDS,
                    sql_limit(limit)
                ],
                |row| {
                    let text: String = row.get(7)?;
                    let snippet: String = row.get(8)?;
                    Ok(Hit {
                        server: row.get(0)?,
                        conv: row.get(1)?,
                        partner_name: row.get(2)?,
                        row: row.get(3)?,
                        mine: row.get(4)?,
                        author: row.get(5)?,
                        at_ms: row.get(6)?,
                        snippet: snippet_pieces(&snippet, &text),
                        text,
                    })
                },
            )?;
            rows.collect()
        })
    }

    /// Forgets conversation `conv` of `server`: its lines, their words in
    /// the search index and the conversation itself. How many lines went.
    /// No word of it is left in the file (see [`Scrub`] for how).
    pub fn clear(&self, server: &str, conv: &str) -> Result<usize, HistoryError> {
        self.clear_by(server, conv, Scrub::Quicker)
    }

    fn clear_by(&self, server: &str, conv: &str, scrub: Scrub) -> Result<usize, HistoryError> {
        let removed = self.write(|tx| {
            let conv_id: Option<i64> = tx
                .prepare_cached("SELECT id FROM conversations WHERE server = ?1 AND conv = ?2")?
                .query_row([server, conv], |row| row.get(0))
                .optional()?;
            let Some(conv_id) = conv_id else {
                return Ok(0);
            };
            let lines: i64 = tx
                .prepare_cached("SELECT count(*) FROM lines WHERE conv_id = ?1")?
                .query_row([conv_id], |row| row.get(0))?;
            let all: i64 = tx
                .prepare_cached("SELECT count(*) FROM lines")?
                .query_row([], |row| row.get(0))?;
            let line_by_line = match scrub {
                Scrub::Quicker => lines.saturating_mul(Scrub::REWRITE_PER_LINE) < all,
                #[cfg(test)]
                Scrub::LineByLine => true,
                #[cfg(test)]
                Scrub::Rewrite => false,
            };
            if line_by_line {
                tx.execute_batch(
                    "INSERT INTO lines_fts (lines_fts, rank) VALUES ('secure-delete', 1)",
                )?;
            }
            let removed = tx
                .prepare_cached("DELETE FROM lines WHERE conv_id = ?1")?
                .execute([conv_id])?;
            tx.prepare_cached("DELETE FROM conversations WHERE id = ?1")?
                .execute([conv_id])?;
            tx.execute_batch(if line_by_line {
                "INSERT INTO lines_fts (lines_fts, rank) VALUES ('secure-delete', 0)"
            } else {
                "INSERT INTO lines_fts (lines_fts) VALUES ('optimize')"
            })?;
            Ok(removed)
        })?;
        self.empty_log()?;
        Ok(removed)
    }

    /// Forgets every conversation of every server, and gives the space
    /// back to the disk. The lines' deletion leaves its markers in the
    /// index (emptying the index first instead would have it asked to
    /// remove words it no longer holds, which it takes for damage); then
    /// the index is emptied in one step.
    pub fn clear_all(&self) -> Result<(), HistoryError> {
        self.write(|tx| {
            tx.execute_batch(
                "DELETE FROM lines;
                 DELETE FROM conversations;
                 INSERT INTO lines_fts (lines_fts) VALUES ('delete-all');",
            )
        })?;
        self.read(|conn| conn.execute_batch("VACUUM"))?;
        self.empty_log()
    }

    /// Copies the write-ahead log into the file and empties it, so what
    /// was just deleted is not left in the log either. A reader in another
    /// program can keep part of it there until it finishes; that part goes
    /// at the next checkpoint.
    fn empty_log(&self) -> Result<(), HistoryError> {
        self.read(|conn| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
    }
}

/// How a cleared conversation's words leave the search index. The index
/// keeps a deleted line's words until it next merges the part holding
/// them, unless told to remove them at once (FTS5's `secure-delete`),
/// which costs about 0.7 ms a line (9 s for a conversation of 14,000
/// lines). The other way leaves markers and then rewrites the whole index
/// without what they mark (`optimize`): 0.4 to 1 s for a history of
/// 100,000 lines, about as long as removing 1 line in 150 at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scrub {
    /// Whichever is quicker for this conversation and history.
    Quicker,
    /// Each line's words removed at once (tests choose each way).
    #[cfg(test)]
    LineByLine,
    /// Markers, then the index rewritten.
    #[cfg(test)]
    Rewrite,
}

impl Scrub {
    /// Rewriting the index costs about as much as removing one line in
    /// this many at once.
    const REWRITE_PER_LINE: i64 = 150;
}

/// Makes or updates the conversation a line is added to: its partner's
/// face becomes `partner`, and its last line's time moves on to `at_ms`
/// (never back: a kept message delivered late keeps its own time). Its id.
fn touch_conversation(
    tx: &Connection,
    server: &str,
    conv: &str,
    partner: &Partner,
    at_ms: i64,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO conversations
             (server, conv, partner_name, partner_color, partner_image, last_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (server, conv) DO UPDATE SET
             partner_name = excluded.partner_name,
             partner_color = excluded.partner_color,
             partner_image = excluded.partner_image,
             last_at_ms = max(last_at_ms, excluded.last_at_ms)
         RETURNING id",
    )?
    .query_row(
        params![
            server,
            conv,
            partner.name,
            partner.color,
            partner.image_name,
            at_ms
        ],
        |row| row.get(0),
    )
}

/// A count as SQL takes it (a `LIMIT` beyond `i64` is no limit).
fn sql_limit(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The FTS5 query for what the user typed, or `None` if there is no word
/// in it: each word a phrase in double quotes (a quote inside doubled), so
/// FTS5 reads every character as text to look for, never as an operator,
/// and the last one a prefix (`"wor"*`). Phrases side by side must all be
/// in a line. A word with nothing FTS5 counts as a letter or digit (`-`,
/// an emoji) is a phrase of no words, which FTS5 leaves out. Control
/// characters separate words too: FTS5 reads its query as a C string, so
/// a NUL inside a phrase would end the query there, unterminated.
fn fts_query(typed: &str) -> Option<String> {
    let words: Vec<&str> = typed
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .take(MAX_SEARCH_WORDS)
        .collect();
    if words.is_empty() {
        return None;
    }
    let phrases: Vec<String> = words
        .iter()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect();
    Some(format!("{}*", phrases.join(" ")))
}

/// `snippet()`'s text cut where the match marks are. If the line itself
/// holds a mark character, the marks cannot be told from the text: the
/// snippet is then given whole, unmarked, without them.
fn snippet_pieces(snippet: &str, text: &str) -> Vec<Piece> {
    if text.contains([MARK_OPEN, MARK_CLOSE]) {
        return vec![Piece {
            text: snippet.replace([MARK_OPEN, MARK_CLOSE], ""),
            hit: false,
        }];
    }
    let mut pieces: Vec<Piece> = Vec::new();
    let mut current = String::new();
    let mut hit = false;
    for ch in snippet.chars() {
        let next = match ch {
            MARK_OPEN => true,
            MARK_CLOSE => false,
            _ => {
                current.push(ch);
                continue;
            }
        };
        if next != hit {
            push_piece(&mut pieces, std::mem::take(&mut current), hit);
            hit = next;
        }
    }
    push_piece(&mut pieces, current, hit);
    pieces
}

/// Adds a piece, joined to the last one if it is of the same kind.
fn push_piece(pieces: &mut Vec<Piece>, text: String, hit: bool) {
    if text.is_empty() {
        return;
    }
    match pieces.last_mut() {
        Some(last) if last.hit == hit => last.text.push_str(&text),
        _ => pieces.push(Piece { text, hit }),
    }
}

/// A line as read, before its state is checked.
struct LineRow {
    row: i64,
    msg_id: Option<String>,
    mine: bool,
    author: String,
    text: String,
    at_ms: i64,
    state: String,
    detail: String,
}

impl LineRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<LineRow> {
        Ok(LineRow {
            row: row.get(0)?,
            msg_id: row.get(1)?,
            mine: row.get(2)?,
            author: row.get(3)?,
            text: row.get(4)?,
            at_ms: row.get(5)?,
            state: row.get(6)?,
            detail: row.get(7)?,
        })
    }

    fn into_line(self, path: &Path) -> Result<StoredLine, HistoryError> {
        let state = State::parse(&self.state).ok_or_else(|| unreadable_state(path, &self.state))?;
        Ok(StoredLine {
            row: self.row,
            msg_id: self.msg_id,
            mine: self.mine,
            author: self.author,
            text: self.text,
            at_ms: self.at_ms,
            state,
            detail: self.detail,
        })
    }
}

/// A state the schema's check should have kept out (the file was edited
/// by hand, or the check dropped): damage, named as such.
fn unreadable_state(path: &Path, word: &str) -> HistoryError {
    HistoryError::Damaged {
        path: path.to_path_buf(),
        detail: format!(
            "a line has the unknown state \"{}\"",
            word.chars().take(40).collect::<String>()
        ),
    }
}

impl SchemaError for HistoryError {
    fn sqlite(path: &Path, err: rusqlite::Error) -> Self {
        HistoryError::from_sqlite(path, err)
    }
    fn damaged(path: &Path, detail: String) -> Self {
        HistoryError::Damaged {
            path: path.to_path_buf(),
            detail,
        }
    }
    fn newer(path: &Path, found: i64, known: i64) -> Self {
        HistoryError::Newer {
            path: path.to_path_buf(),
            found,
            known,
        }
    }
    fn foreign(path: &Path) -> Self {
        HistoryError::Foreign {
            path: path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "tls:00112233";
    const OTHER_SERVER: &str = "addr:10.0.0.5:5050";

    /// A folder of its own for a test, removed afterwards.
    struct Folder(PathBuf);

    impl Folder {
        fn new(name: &str) -> Folder {
            let dir =
                std::env::temp_dir().join(format!("hubchat-history-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Folder(dir)
        }

        fn file(&self) -> PathBuf {
            self.0.join(FILE_NAME)
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn partner(name: &str) -> Partner {
        Partner {
            name: name.to_string(),
            color: "blue".to_string(),
            image_name: "image_3.png".to_string(),
        }
    }

    fn memory() -> History {
        History::open_in_memory().unwrap()
    }

    /// Bob's line in the conversation with bob.
    fn from_bob(history: &History, msg_id: Option<&str>, text: &str, at_ms: i64) -> Option<i64> {
        history
            .add_incoming(SERVER, "bob", &partner("Bob"), msg_id, "Bob", text, at_ms)
            .unwrap()
    }

    /// My line to bob.
    fn to_bob(history: &History, msg_id: &str, text: &str, at_ms: i64) -> i64 {
        history
            .add_outgoing(SERVER, "bob", &partner("Bob"), msg_id, "Me", text, at_ms)
            .unwrap()
    }

    fn texts(lines: &[StoredLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    fn found(history: &History, server: Option<&str>, typed: &str) -> Vec<String> {
        history
            .search(server, typed, 100)
            .unwrap()
            .into_iter()
            .map(|hit| hit.text)
            .collect()
    }

    fn state_of(history: &History, row: i64) -> (State, String) {
        let line = history.around(row, 0, 0).unwrap().remove(0);
        (line.state, line.detail)
    }

    #[test]
    fn a_message_delivered_again_is_kept_once_even_after_reopening_the_file() {
        let folder = Folder::new("once");
        let history = History::open(&folder.file()).unwrap();
        let first = from_bob(&history, Some("a1b2"), "hello", 1_000);
        assert!(first.is_some());
        assert_eq!(from_bob(&history, Some("a1b2"), "hello", 1_000), None);
        drop(history);

        // The client crashed before confirming; the server delivers again.
        let history = History::open(&folder.file()).unwrap();
        assert_eq!(from_bob(&history, Some("a1b2"), "hello", 1_000), None);
        assert!(from_bob(&history, Some("c3d4"), "and hello again", 2_000).is_some());
        let lines = history.recent(SERVER, "bob", 10).unwrap();
        assert_eq!(texts(&lines), ["hello", "and hello again"]);
        assert_eq!(lines[0].row, first.unwrap());
        assert_eq!(lines[0].msg_id.as_deref(), Some("a1b2"));
        assert_eq!(lines[0].state, State::Received);
        assert!(!lines[0].mine);
    }

    #[test]
    fn lines_without_an_id_are_never_duplicates() {
        let history = memory();
        assert!(from_bob(&history, None, "hi", 1_000).is_some());
        assert!(from_bob(&history, None, "hi", 1_000).is_some());
        assert_eq!(history.recent(SERVER, "bob", 10).unwrap().len(), 2);
    }

    #[test]
    fn the_same_id_from_another_author_conversation_or_server_is_another_message() {
        let history = memory();
        let room = partner("Everyone");
        let add = |server, conv, author| {
            history
                .add_incoming(server, conv, &room, Some("same"), author, "hi", 1_000)
                .unwrap()
        };
        assert!(add(SERVER, "everyone", "Bob").is_some());
        assert!(add(SERVER, "everyone", "Carol").is_some());
        assert!(add(SERVER, "carol", "Carol").is_some());
        assert!(add(OTHER_SERVER, "everyone", "Bob").is_some());
        assert!(add(SERVER, "everyone", "Carol").is_none());
    }

    #[test]
    fn my_message_starts_as_sending_and_its_state_only_moves_forward() {
        let history = memory();
        let row = to_bob(&history, "m1", "are you there?", 1_000);
        assert_eq!(state_of(&history, row).0, State::Sending);
        let changed = history.set_state(SERVER, "m1", State::Kept, "").unwrap();
        assert_eq!(
            changed,
            Some(Changed {
                conv: "bob".into(),
                row
            })
        );
        // Back, or sideways: nothing changes.
        for state in [State::Sending, State::Sent, State::Kept, State::Received] {
            assert_eq!(history.set_state(SERVER, "m1", state, "").unwrap(), None);
        }
        assert!(history
            .set_state(SERVER, "m1", State::Delivered, "")
            .unwrap()
            .is_some());
        // Delivered: too late to fail, too late to be kept.
        assert_eq!(
            history
                .set_state(SERVER, "m1", State::Failed, "gone")
                .unwrap(),
            None
        );
        assert_eq!(
            history.set_state(SERVER, "m1", State::Kept, "").unwrap(),
            None
        );
        assert!(history
            .set_state(SERVER, "m1", State::Read, "")
            .unwrap()
            .is_some());
        // A receipt that arrives late or twice changes nothing.
        assert_eq!(
            history
                .set_state(SERVER, "m1", State::Delivered, "")
                .unwrap(),
            None
        );
        assert_eq!(
            history.set_state(SERVER, "m1", State::Read, "").unwrap(),
            None
        );
        assert_eq!(state_of(&history, row).0, State::Read);
    }

    #[test]
    fn a_failed_message_says_why_and_only_a_receipt_moves_it_on() {
        let history = memory();
        let row = to_bob(&history, "m1", "hello?", 1_000);
        assert!(history
            .set_state(SERVER, "m1", State::Failed, "Bob is not on this server.")
            .unwrap()
            .is_some());
        assert_eq!(
            state_of(&history, row),
            (State::Failed, "Bob is not on this server.".to_string())
        );
        for state in [State::Sending, State::Sent, State::Kept, State::Failed] {
            assert_eq!(history.set_state(SERVER, "m1", state, "").unwrap(), None);
        }
        assert!(history
            .set_state(SERVER, "m1", State::Delivered, "")
            .unwrap()
            .is_some());
        assert_eq!(state_of(&history, row), (State::Delivered, String::new()));
    }

    #[test]
    fn a_receipt_for_no_message_of_mine_on_that_server_changes_nothing() {
        let history = memory();
        from_bob(&history, Some("theirs"), "hi", 1_000);
        to_bob(&history, "mine", "hello", 2_000);
        assert_eq!(
            history
                .set_state(SERVER, "theirs", State::Read, "")
                .unwrap(),
            None
        );
        assert_eq!(
            history
                .set_state(OTHER_SERVER, "mine", State::Read, "")
                .unwrap(),
            None
        );
        assert_eq!(
            history
                .set_state(SERVER, "unknown", State::Read, "")
                .unwrap(),
            None
        );
        let states: Vec<State> = history
            .recent(SERVER, "bob", 10)
            .unwrap()
            .iter()
            .map(|l| l.state)
            .collect();
        assert_eq!(states, [State::Received, State::Sending]);
    }

    #[test]
    fn an_id_of_mine_used_twice_in_a_conversation_is_refused() {
        let history = memory();
        to_bob(&history, "m1", "one", 1_000);
        let again = history.add_outgoing(SERVER, "bob", &partner("Bob"), "m1", "Me", "two", 2_000);
        assert!(
            matches!(again, Err(HistoryError::IdInUse { .. })),
            "{again:?}"
        );
        assert_eq!(history.recent(SERVER, "bob", 10).unwrap().len(), 1);
    }

    #[test]
    fn unsent_messages_come_back_in_the_order_written_until_acknowledged() {
        let folder = Folder::new("unsent");
        let history = History::open(&folder.file()).unwrap();
        history
            .add_outgoing(
                SERVER,
                "carol",
                &partner("Carol"),
                "c1",
                "Me",
                "first",
                3_000,
            )
            .unwrap();
        to_bob(&history, "b1", "second", 1_000);
        to_bob(&history, "b2", "third", 2_000);
        history
            .add_outgoing(
                OTHER_SERVER,
                "bob",
                &partner("Bob"),
                "o1",
                "Me",
                "elsewhere",
                1,
            )
            .unwrap();
        history.set_state(SERVER, "b1", State::Kept, "").unwrap();
        drop(history);

        // After a restart: written order, not time order.
        let history = History::open(&folder.file()).unwrap();
        let unsent = history.unsent(SERVER).unwrap();
        let ids: Vec<&str> = unsent.iter().map(|u| u.msg_id.as_str()).collect();
        assert_eq!(ids, ["c1", "b2"]);
        assert_eq!(unsent[0].conv, "carol");
        assert_eq!(unsent[0].partner_name, "Carol");
        assert_eq!(unsent[0].text, "first");
        assert_eq!(unsent[0].at_ms, 3_000);
        history
            .set_state(SERVER, "c1", State::Failed, "no")
            .unwrap();
        history.set_state(SERVER, "b2", State::Sent, "").unwrap();
        assert!(history.unsent(SERVER).unwrap().is_empty());
        assert_eq!(history.unsent(OTHER_SERVER).unwrap().len(), 1);
    }

    #[test]
    fn recent_gives_the_last_lines_of_one_conversation_oldest_first() {
        let history = memory();
        for n in 0..10 {
            from_bob(&history, None, &format!("bob {n}"), n);
            history
                .add_incoming(
                    SERVER,
                    "carol",
                    &partner("Carol"),
                    None,
                    "Carol",
                    "carol",
                    n,
                )
                .unwrap();
        }
        to_bob(&history, "m", "mine", 5);
        assert_eq!(
            texts(&history.recent(SERVER, "bob", 3).unwrap()),
            ["bob 8", "bob 9", "mine"]
        );
        assert_eq!(history.recent(SERVER, "bob", 100).unwrap().len(), 11);
        assert!(history.recent(SERVER, "nobody", 10).unwrap().is_empty());
        assert!(history.recent(OTHER_SERVER, "bob", 10).unwrap().is_empty());
        let mine = history.recent(SERVER, "bob", 1).unwrap().remove(0);
        assert!(mine.mine);
        assert_eq!(mine.author, "Me");
        assert_eq!(mine.at_ms, 5);
    }

    #[test]
    fn around_shows_a_line_in_its_own_conversation() {
        let history = memory();
        let mut rows = Vec::new();
        for n in 0..10 {
            rows.push(from_bob(&history, None, &format!("bob {n}"), n).unwrap());
            history
                .add_incoming(
                    SERVER,
                    "carol",
                    &partner("Carol"),
                    None,
                    "Carol",
                    "carol",
                    n,
                )
                .unwrap();
        }
        assert_eq!(
            texts(&history.around(rows[5], 2, 3).unwrap()),
            ["bob 3", "bob 4", "bob 5", "bob 6", "bob 7", "bob 8"]
        );
        assert_eq!(
            texts(&history.around(rows[1], 3, 1).unwrap()),
            ["bob 0", "bob 1", "bob 2"]
        );
        assert_eq!(texts(&history.around(rows[9], 0, 5).unwrap()), ["bob 9"]);
        assert!(history.around(999_999, 2, 2).unwrap().is_empty());
    }

    #[test]
    fn conversations_are_listed_latest_first_with_the_partner_as_last_seen() {
        let history = memory();
        from_bob(&history, None, "hi", 1_000);
        history
            .add_incoming(
                SERVER,
                "carol",
                &partner("Carol"),
                None,
                "Carol",
                "yo",
                2_000,
            )
            .unwrap();
        history
            .add_incoming(
                OTHER_SERVER,
                "dave",
                &partner("Dave"),
                None,
                "Dave",
                "hey",
                9_000,
            )
            .unwrap();
        let new_face = Partner {
            name: "BOB".into(),
            color: "#ff8800".into(),
            image_name: "image_7.png".into(),
        };
        history
            .add_outgoing(SERVER, "bob", &new_face, "m1", "Me", "hello", 3_000)
            .unwrap();
        // A kept message delivered late does not make its conversation older.
        history
            .add_incoming(SERVER, "bob", &new_face, Some("x"), "BOB", "old", 500)
            .unwrap();

        let list = history.conversations(SERVER).unwrap();
        assert_eq!(
            list,
            [
                Summary {
                    conv: "bob".into(),
                    partner: new_face,
                    last_at_ms: 3_000
                },
                Summary {
                    conv: "carol".into(),
                    partner: partner("Carol"),
                    last_at_ms: 2_000
                },
            ]
        );
        assert_eq!(history.conversations(OTHER_SERVER).unwrap().len(), 1);
        assert!(history.conversations("addr:nowhere").unwrap().is_empty());
    }

    #[test]
    fn search_ignores_case_and_accents() {
        let history = memory();
        from_bob(&history, None, "Meet me at the Café Noir", 1);
        from_bob(&history, None, "ÉCOLE is closed", 2);
        from_bob(&history, None, "nothing here", 3);
        assert_eq!(
            found(&history, None, "cafe noir"),
            ["Meet me at the Café Noir"]
        );
        assert_eq!(found(&history, None, "CAFÉ"), ["Meet me at the Café Noir"]);
        assert_eq!(found(&history, None, "ecole"), ["ÉCOLE is closed"]);
        assert!(found(&history, None, "cafes").is_empty());
    }

    #[test]
    fn the_last_word_searched_may_be_unfinished_the_others_are_whole_words() {
        let history = memory();
        from_bob(&history, None, "the conversation went well", 1);
        from_bob(&history, None, "a convoy of trucks", 2);
        from_bob(&history, None, "conversely", 3);
        assert_eq!(
            found(&history, None, "conv"),
            [
                "conversely",
                "a convoy of trucks",
                "the conversation went well"
            ]
        );
        assert_eq!(
            found(&history, None, "went conv"),
            ["the conversation went well"]
        );
        // Only the last word is a prefix.
        assert!(found(&history, None, "conv went").is_empty());
        assert_eq!(
            found(&history, None, "conversation went"),
            ["the conversation went well"]
        );
    }

    #[test]
    fn a_blank_search_finds_nothing() {
        let history = memory();
        from_bob(&history, None, "anything at all", 1);
        for typed in ["", " ", "\t\n  "] {
            assert!(found(&history, None, typed).is_empty(), "{typed:?}");
        }
    }

    #[test]
    fn nothing_typed_is_taken_as_search_syntax() {
        let history = memory();
        from_bob(&history, None, "fish AND chips", 1);
        from_bob(&history, None, "sit NEAR(the door) please", 2);
        from_bob(&history, None, "say \"cheese\" now", 3);
        from_bob(&history, None, "rock 🎸 on", 4);
        from_bob(&history, None, "x-ray text:hidden ^start", 5);
        let hostile = [
            "\"",
            "\"\"",
            "\"unbalanced",
            "*",
            "**",
            "NEAR(",
            "NEAR(a b",
            "AND",
            "OR",
            "NOT",
            "a AND",
            "-",
            "- fish",
            "(",
            ")",
            "((fish",
            "fish)",
            "🎸",
            "🎸*",
            "text:",
            "{text}: fish",
            "^",
            "+",
            ":",
            "'",
            "\0",
            "fish\0chips",
            "\u{E000}",
        ];
        for typed in hostile {
            let result = history.search(None, typed, 10);
            assert!(result.is_ok(), "{typed:?}: {result:?}");
        }
        // Operators are words like any other.
        assert_eq!(found(&history, None, "AND"), ["fish AND chips"]);
        assert_eq!(
            found(&history, None, "near("),
            ["sit NEAR(the door) please"]
        );
        assert_eq!(found(&history, None, "\"cheese\""), ["say \"cheese\" now"]);
        assert_eq!(found(&history, None, "ray"), ["x-ray text:hidden ^start"]);
        assert_eq!(
            found(&history, None, "text:hid"),
            ["x-ray text:hidden ^start"]
        );
        assert_eq!(found(&history, None, "fish) (chips"), ["fish AND chips"]);
        assert_eq!(found(&history, None, "fish\0chi"), ["fish AND chips"]);
        // A word with no letters or digits adds nothing to a search.
        assert_eq!(found(&history, None, "🎸 rock"), ["rock 🎸 on"]);
        // A pasted paragraph: its first words are the search.
        let paragraph = format!("fish {}", "chips ".repeat(1_000));
        assert_eq!(found(&history, None, &paragraph), ["fish AND chips"]);
    }

    #[test]
    fn a_search_keeps_to_the_server_asked_about() {
        let history = memory();
        from_bob(&history, None, "lunch here", 1);
        history
            .add_incoming(
                OTHER_SERVER,
                "bob",
                &partner("Bob"),
                None,
                "Bob",
                "lunch there",
                2,
            )
            .unwrap();
        assert_eq!(found(&history, Some(SERVER), "lunch"), ["lunch here"]);
        assert_eq!(
            found(&history, Some(OTHER_SERVER), "lunch"),
            ["lunch there"]
        );
        assert_eq!(
            found(&history, None, "lunch"),
            ["lunch there", "lunch here"]
        );
        assert!(found(&history, Some("addr:nowhere"), "lunch").is_empty());
    }

    #[test]
    fn hits_come_newest_first_at_most_the_limit_with_the_match_marked() {
        let history = memory();
        for n in 0..30 {
            from_bob(&history, None, &format!("note {n}"), n);
        }
        let row = to_bob(&history, "m1", "the big parade starts at noon", 99);
        let hits = history.search(Some(SERVER), "note", 5).unwrap();
        let found: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
        assert_eq!(
            found,
            ["note 29", "note 28", "note 27", "note 26", "note 25"]
        );

        let hit = history.search(None, "parade", 5).unwrap().remove(0);
        assert_eq!(hit.server, SERVER);
        assert_eq!(hit.conv, "bob");
        assert_eq!(hit.partner_name, "Bob");
        assert_eq!(hit.row, row);
        assert!(hit.mine);
        assert_eq!(hit.author, "Me");
        assert_eq!(hit.at_ms, 99);
        assert_eq!(
            hit.snippet,
            [
                Piece {
                    text: "the big ".into(),
                    hit: false
                },
                Piece {
                    text: "parade".into(),
                    hit: true
                },
                Piece {
                    text: " starts at noon".into(),
                    hit: false
                },
            ]
        );
    }

    #[test]
    fn a_long_line_is_cut_around_the_match() {
        let history = memory();
        let long = format!("{} needle {}", "hay ".repeat(40), "hay ".repeat(40));
        from_bob(&history, None, long.trim(), 1);
        let hit = history.search(None, "needle", 1).unwrap().remove(0);
        let shown: String = hit.snippet.iter().map(|p| p.text.as_str()).collect();
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert!(shown.split_whitespace().count() <= SNIPPET_WORDS as usize + 2);
        assert!(hit.snippet.iter().any(|p| p.hit && p.text == "needle"));
    }

    /// FTS5's own check that the index holds exactly the lines' words.
    fn assert_index_true_to_lines(history: &History) {
        history
            .read(|conn| {
                conn.execute_batch(
                    "INSERT INTO lines_fts (lines_fts, rank) VALUES ('integrity-check', 1)",
                )
            })
            .unwrap();
    }

    /// Whether the file at `path` holds `text` (a missing file holds
    /// nothing).
    fn file_holds(path: &Path, text: &str) -> bool {
        let bytes = std::fs::read(path).unwrap_or_default();
        bytes.windows(text.len()).any(|w| w == text.as_bytes())
    }

    fn log_of(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push("-wal");
        PathBuf::from(name)
    }

    /// Clears bob's conversation the way `scrub` says, and checks that it
    /// is gone from every view and from the file.
    fn clearing_forgets(scrub: Scrub) {
        let folder = Folder::new(&format!("clear-{scrub:?}"));
        let history = History::open(&folder.file()).unwrap();
        for n in 0..50 {
            from_bob(
                &history,
                Some(&format!("b{n}")),
                &format!("zanzibarian secret {n}"),
                n,
            );
        }
        history
            .add_incoming(
                SERVER,
                "carol",
                &partner("Carol"),
                None,
                "Carol",
                "zanzibarian too",
                1,
            )
            .unwrap();
        assert_eq!(found(&history, None, "zanzibarian").len(), 51);

        assert_eq!(history.clear_by(SERVER, "bob", scrub).unwrap(), 50);
        assert_eq!(found(&history, None, "zanzibarian"), ["zanzibarian too"]);
        assert!(found(&history, None, "secret").is_empty());
        assert!(history.recent(SERVER, "bob", 10).unwrap().is_empty());
        let list = history.conversations(SERVER).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].conv, "carol");
        assert_eq!(history.clear_by(SERVER, "bob", scrub).unwrap(), 0);
        assert_index_true_to_lines(&history);
        // The same ids may come again: they are new lines now.
        assert!(from_bob(&history, Some("b1"), "back", 100).is_some());
        assert_eq!(found(&history, None, "back"), ["back"]);
        // While the history is open, its write-ahead log holds no copy.
        assert!(
            !file_holds(&log_of(&folder.file()), "secret"),
            "the cleared words are still in the write-ahead log"
        );
        drop(history);

        assert!(file_holds(&folder.file(), "zanzibarian too"));
        assert!(
            !file_holds(&folder.file(), "secret"),
            "the cleared words are still in the file"
        );
    }

    #[test]
    fn a_cleared_conversation_is_gone_and_its_words_are_not_found_nor_in_the_file() {
        clearing_forgets(Scrub::Quicker);
    }

    #[test]
    fn clearing_line_by_line_leaves_no_word_in_the_file() {
        clearing_forgets(Scrub::LineByLine);
    }

    #[test]
    fn clearing_by_rewriting_the_index_leaves_no_word_in_the_file() {
        clearing_forgets(Scrub::Rewrite);
    }

    #[test]
    fn clearing_everything_forgets_every_server() {
        let folder = Folder::new("clear-all");
        let history = History::open(&folder.file()).unwrap();
        for n in 0..200 {
            from_bob(&history, None, &format!("confidential {n}"), n);
            history
                .add_incoming(
                    OTHER_SERVER,
                    "dave",
                    &partner("Dave"),
                    None,
                    "Dave",
                    "private",
                    n,
                )
                .unwrap();
        }
        history.clear_all().unwrap();
        assert_index_true_to_lines(&history);
        assert!(history.conversations(SERVER).unwrap().is_empty());
        assert!(history.conversations(OTHER_SERVER).unwrap().is_empty());
        assert!(found(&history, None, "confidential").is_empty());
        assert!(found(&history, None, "private").is_empty());
        // Still a working history.
        assert!(from_bob(&history, None, "fresh start", 1).is_some());
        assert_eq!(found(&history, None, "fresh"), ["fresh start"]);
        assert_index_true_to_lines(&history);
        drop(history);

        assert!(!file_holds(&folder.file(), "confidential"));
        assert!(!file_holds(&folder.file(), "private"));
    }

    #[test]
    fn an_empty_file_becomes_a_history_of_the_latest_schema() {
        let folder = Folder::new("empty");
        std::fs::create_dir_all(&folder.0).unwrap();
        std::fs::write(folder.file(), b"").unwrap();
        let history = History::open(&folder.file()).unwrap();
        assert!(from_bob(&history, Some("a"), "works", 1).is_some());
        let version: i64 = history
            .read(|conn| conn.query_row("PRAGMA user_version", [], |row| row.get(0)))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        drop(history);
        // Opening again migrates nothing and keeps everything.
        let history = History::open(&folder.file()).unwrap();
        assert_eq!(texts(&history.recent(SERVER, "bob", 5).unwrap()), ["works"]);
    }

    #[test]
    fn a_damaged_file_is_refused_with_a_sentence_naming_it() {
        let folder = Folder::new("damaged");
        std::fs::create_dir_all(&folder.0).unwrap();
        let garbage: Vec<u8> = (0..8192u32).map(|n| (n * 7 + 3) as u8).collect();
        std::fs::write(folder.file(), garbage).unwrap();
        let err = History::open(&folder.file()).unwrap_err();
        assert!(matches!(err, HistoryError::Damaged { .. }), "{err:?}");
        let sentence = err.to_string();
        assert!(
            sentence.contains(&folder.file().display().to_string()),
            "{sentence}"
        );
        assert!(sentence.contains("damaged"), "{sentence}");
    }

    #[test]
    fn a_history_cut_short_is_reported_as_damaged_when_read() {
        let folder = Folder::new("cut");
        let history = History::open(&folder.file()).unwrap();
        for n in 0..2_000 {
            from_bob(
                &history,
                None,
                &format!("line number {n} of a long talk"),
                n,
            );
        }
        drop(history);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(folder.file())
            .unwrap();
        let length = file.metadata().unwrap().len();
        file.set_len(length / 2).unwrap();
        drop(file);
        let err = History::open(&folder.file())
            .and_then(|history| history.recent(SERVER, "bob", 2_000))
            .unwrap_err();
        assert!(matches!(err, HistoryError::Damaged { .. }), "{err:?}");
        assert!(err
            .to_string()
            .contains(&folder.file().display().to_string()));
    }

    #[test]
    fn another_programs_database_is_left_alone() {
        let folder = Folder::new("foreign");
        std::fs::create_dir_all(&folder.0).unwrap();
        let other = Connection::open(folder.file()).unwrap();
        other
            .execute_batch("CREATE TABLE recipes (name TEXT)")
            .unwrap();
        drop(other);
        let err = History::open(&folder.file()).unwrap_err();
        assert!(matches!(err, HistoryError::Foreign { .. }), "{err:?}");
        let other = Connection::open(folder.file()).unwrap();
        let tables: i64 = other
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .unwrap();
        assert_eq!(tables, 1);
    }

    #[test]
    fn a_history_from_a_newer_version_is_refused() {
        let folder = Folder::new("newer");
        drop(History::open(&folder.file()).unwrap());
        let conn = Connection::open(folder.file()).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = History::open(&folder.file()).unwrap_err();
        assert!(
            matches!(err, HistoryError::Newer { found: 99, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("newer HubChat"));
    }

    #[test]
    fn every_state_is_kept_as_a_word_and_read_back() {
        let all = [
            State::Sending,
            State::Sent,
            State::Kept,
            State::Delivered,
            State::Read,
            State::Failed,
            State::Received,
        ];
        for state in all {
            assert_eq!(State::parse(state.as_str()), Some(state));
            // The schema's check admits exactly these words.
            assert!(SCHEMA_V1.contains(&format!("'{}'", state.as_str())));
        }
        assert_eq!(State::parse("Read"), None);
        assert_eq!(State::parse(""), None);
    }

    #[test]
    fn typed_words_become_quoted_phrases_the_last_a_prefix() {
        assert_eq!(fts_query("  "), None);
        assert_eq!(fts_query("hello").as_deref(), Some("\"hello\"*"));
        assert_eq!(
            fts_query(" fish  AND chips ").as_deref(),
            Some("\"fish\" \"AND\" \"chips\"*")
        );
        assert_eq!(
            fts_query("say \"hi\"").as_deref(),
            Some("\"say\" \"\"\"hi\"\"\"*")
        );
        assert_eq!(
            fts_query("fish\0chips\u{7}").as_deref(),
            Some("\"fish\" \"chips\"*")
        );
        let many = fts_query(&"a ".repeat(100)).unwrap();
        assert_eq!(many.matches("\"a\"").count(), MAX_SEARCH_WORDS);
    }

    #[test]
    fn a_line_holding_a_mark_character_gets_an_unmarked_snippet() {
        assert_eq!(
            snippet_pieces("a \u{E000}b\u{E001} c", "a b c"),
            [
                Piece {
                    text: "a ".into(),
                    hit: false
                },
                Piece {
                    text: "b".into(),
                    hit: true
                },
                Piece {
                    text: " c".into(),
                    hit: false
                },
            ]
        );
        assert_eq!(
            snippet_pieces("x\u{E000}\u{E000}y\u{E001} z\u{E001}", "x\u{E000}y z"),
            [Piece {
                text: "xy z".into(),
                hit: false
            }]
        );
    }
}
