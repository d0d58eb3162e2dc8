//! The owner's word on who may join: bans, names that belong to someone,
//! and the server password.
//!
//! [`Trust`] joins the durable [`Store`] (names bound to identities, bans)
//! with what is decided per connection: the password check, held to the
//! per-address limit on guessing, and the verdict on a joining client's
//! name. Connection threads ask it; the window and the command line change
//! it through [`crate::server::Server`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::common::packet::ErrorCode;
use crate::common::profile::{name_keys, validate_name};
use crate::common::tls::Fingerprint;
use crate::server::event::{Events, ServerEvent};
use crate::server::guesses::Guesses;
use crate::server::hub::{Hub, Refusal};
use crate::server::password::{self, StoredPassword};
use crate::server::post::Post;
use crate::server::store::{unix_now, Ban, BanTarget, Binding, Claim, Person, Store, StoreError};

/// Why the owner's settings could not be used at start.
#[derive(Debug)]
pub enum TrustError {
    Store(StoreError),
    Password(password::PasswordError),
}

impl std::fmt::Display for TrustError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustError::Store(e) => write!(f, "{e}"),
            TrustError::Password(e) => write!(
                f,
                "The server's saved password cannot be read ({e}). Set the password again."
            ),
        }
    }
}

impl std::error::Error for TrustError {}

/// The verdict on a password try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Right,
    Wrong,
    /// Too many wrong tries from this address lately; the next may be
    /// made after `wait`.
    TooMany {
        wait: Duration,
    },
}

/// Bans, bindings and the password, for every connection of one server.
pub struct Trust {
    store: Store,
    password: Option<StoredPassword>,
    guesses: Mutex<Guesses>,
    events: Events,
    /// When the post office last looked for messages kept too long.
    expired_at: AtomicI64,
    /// The people the post office last read from the store.
    people: Mutex<Option<(Instant, Vec<Person>)>>,
}

impl Trust {
    /// Opens the database at `database` (in memory when `None`: tests,
    /// and nothing kept) and reads the stored password hash.
    pub fn open(
        database: Option<&PathBuf>,
        password_hash: Option<&str>,
        events: Events,
    ) -> Result<Trust, TrustError> {
        let store = match database {
            Some(path) => Store::open(path),
            None => Store::open_in_memory(),
        }
        .map_err(TrustError::Store)?;
        let password = password_hash
            .map(password::parse)
            .transpose()
            .map_err(TrustError::Password)?;
        Ok(Trust {
            store,
            password,
            guesses: Mutex::new(Guesses::new()),
            events,
            expired_at: AtomicI64::new(0),
            people: Mutex::new(None),
        })
    }

    /// The post office for messages to people, working on this store.
    pub fn post<'a>(&'a self, hub: &'a Hub) -> Post<'a> {
        Post {
            hub,
            store: &self.store,
            expired_at: &self.expired_at,
            people: &self.people,
        }
    }

    /// Whether joining needs the password.
    pub fn password_required(&self) -> bool {
        self.password.is_some()
    }

    /// Checks a password try from `ip`. After 5 wrong tries from one
    /// address within a minute, further verdicts wait; one that would
    /// come after `deadline` (the end of the handshake) is not waited for:
    /// the client is told to try again later.
    pub fn check_password(&self, ip: IpAddr, plain: &str, deadline: Instant) -> Verdict {
        let Some(stored) = &self.password else {
            return Verdict::Right;
        };
        let now = Instant::now();
        let wait = self.guesses().wait(ip, now);
        if now + wait > deadline {
            return Verdict::TooMany { wait };
        }
        std::thread::sleep(wait);
        if stored.verify(plain) {
            self.guesses().succeeded(ip);
            Verdict::Right
        } else {
            Verdict::Wrong
        }
    }

    fn guesses(&self) -> MutexGuard<'_, Guesses> {
        self.guesses.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ban that keeps out everyone from `ip`, if any.
    pub fn banned_address(&self, ip: IpAddr) -> Option<Ban> {
        self.read(self.store.banned(None, ip)).flatten()
    }

    /// Decides whether a client with this name, identity and address may
    /// join: not if banned, nor under a name that belongs to another
    /// identity. An identified client's new name becomes its own. An
    /// invalid name is left for the hub to refuse in its own words.
    pub fn admit(
        &self,
        name: &str,
        identity: Option<Fingerprint>,
        ip: IpAddr,
    ) -> Result<(), Refusal> {
        let identity_hex = identity.map(|f| f.hex());
        let banned = self
            .store
            .banned(identity_hex.as_deref(), ip)
            .map_err(|e| self.failed(e))?;
        if let Some(ban) = banned {
            return Err(Refusal::new(ErrorCode::Banned, banned_sentence(&ban)));
        }
        let Ok(name) = validate_name(name) else {
            return Ok(());
        };
        let keys = name_keys(name);
        match identity_hex {
            Some(hex) => match self.store.claim(&keys, &hex, unix_now()) {
                Ok(Claim::Taken { owner_name }) => Err(name_owned(name, &owner_name)),
                Ok(Claim::Bound { .. } | Claim::Owned | Claim::Full) => Ok(()),
                Err(e) => Err(self.failed(e)),
            },
            None => match self.store.owner(&keys) {
                Ok(Some(binding)) => Err(Refusal::new(
                    ErrorCode::NameOwned,
                    format!(
                        "The name {} belongs to a HubChat user on this server. Choose another \
                         name, or use the HubChat client on that person's computer.",
                        binding.name
                    ),
                )),
                Ok(None) => Ok(()),
                Err(e) => Err(self.failed(e)),
            },
        }
    }

    /// Bans `target` (and says so in the log).
    pub fn ban(&self, target: &BanTarget, name: &str, reason: &str) -> Result<(), StoreError> {
        self.store.ban(target, name, reason, unix_now())?;
        let why = if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        };
        self.owner_did(format!("banned {target} ({name}){why}"));
        Ok(())
    }

    /// Lifts a ban; says whether there was one.
    pub fn lift(&self, target: &BanTarget) -> Result<bool, StoreError> {
        let lifted = self.store.lift(target)?;
        if lifted {
            self.owner_did(format!("lifted the ban on {target}"));
        }
        Ok(lifted)
    }

    pub fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        self.store.bans()
    }

    pub fn bindings(&self) -> Result<Vec<Binding>, StoreError> {
        self.store.bindings()
    }

    /// Frees a name for anyone to take; says whether it was bound.
    pub fn release(&self, name: &str) -> Result<bool, StoreError> {
        let released = self.store.release(name)?;
        if released {
            self.owner_did(format!("released the name {name}"));
        }
        Ok(released)
    }

    /// Logs what the owner did.
    pub fn owner_did(&self, what: String) {
        self.events.emit(ServerEvent::Owner { what });
    }

    /// A store failure while serving: logged, and the client refused with
    /// a sentence (never let in unchecked).
    fn failed(&self, e: StoreError) -> Refusal {
        self.events.emit(ServerEvent::Error {
            message: e.to_string(),
        });
        Refusal::new(
            ErrorCode::ServerFull,
            "The server could not check who may join (its database failed). Tell the \
             server's owner, and try again later.",
        )
    }

    fn read<T>(&self, result: Result<T, StoreError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.events.emit(ServerEvent::Error {
                    message: e.to_string(),
                });
                None
            }
        }
    }
}

fn name_owned(name: &str, owner_name: &str) -> Refusal {
    // Names are compared case-insensitively, so "ALICE" is simply alice's.
    let owned = if owner_name.to_lowercase() == name.to_lowercase() {
        format!("The name {name} belongs to another computer.")
    } else {
        format!("The name {name} is too like {owner_name}, which belongs to another computer.")
    };
    Refusal::new(
        ErrorCode::NameOwned,
        format!("{owned} Choose another name, or ask the server's owner to release it."),
    )
}

/// What a banned client is told.
pub fn banned_sentence(ban: &Ban) -> String {
    let whom = match ban.target {
        BanTarget::Identity(_) => "this computer",
        BanTarget::Address(_) => "your address",
    };
    if ban.reason.is_empty() {
        format!("The server's owner has banned {whom} from this server.")
    } else {
        format!(
            "The server's owner has banned {whom} from this server: {}",
            ban.reason
        )
    }
}
