//! What this installation trusts: its own certificate (the person's
//! identity, made on first run) and the key each server showed the first
//! time it was joined (trust on first use, as Syncthing and SSH do), with
//! the passwords the user chose to remember.
//!
//! Both live in the settings folder, so a copy of the folder on a USB stick
//! carries the identity and the pins with it. No GUI here: the controller
//! decides with it, and tests check it headless.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::common::settings;
use crate::common::tls::{Credentials, Fingerprint};

/// The file the servers' pins and remembered passwords are kept in.
pub const KNOWN_SERVERS_FILE: &str = "known-servers.json";

/// The file this installation's certificate and key are kept in.
pub const IDENTITY_FILE: &str = "identity.pem";

/// Where this installation's certificate lives, if there is a settings
/// folder at all.
pub fn identity_file() -> Option<PathBuf> {
    settings::config_dir().map(|d| d.join(IDENTITY_FILE))
}

/// This installation's certificate: read from the settings folder, or made
/// and kept there on first run. An error is a sentence for the user; a
/// damaged file is never replaced, since servers know the person by it.
pub fn load_identity() -> Result<Credentials, String> {
    let path = identity_file().ok_or_else(|| {
        "No settings folder was found to keep your identity in. \
         Set HUBCHAT_CONFIG_DIR to a folder."
            .to_string()
    })?;
    Credentials::load_or_create(&path, "HubChat user").map_err(|e| e.to_string())
}

/// What is remembered about one server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownServer {
    /// The fingerprint of the server's certificate, in hex; empty if the
    /// server was never joined encrypted.
    #[serde(default)]
    pub key: String,
    /// The password, if the user asked for it to be remembered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Every server this installation has joined, by `host:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownServers {
    #[serde(default)]
    pub servers: BTreeMap<String, KnownServer>,
}

/// How a server is looked up: the host as typed (case does not matter to
/// host names) and the port.
pub fn server_key(host: &str, port: u16) -> String {
    format!("{}:{port}", host.trim().to_lowercase())
}

impl KnownServers {
    /// The servers remembered in the settings folder (none if the file is
    /// missing or unreadable).
    pub fn load() -> Self {
        settings::load(KNOWN_SERVERS_FILE)
    }

    pub fn save(&self) -> io::Result<()> {
        settings::save(KNOWN_SERVERS_FILE, self)
    }

    /// The key pinned for this server, if it was joined encrypted before.
    pub fn pin(&self, host: &str, port: u16) -> Option<Fingerprint> {
        self.servers
            .get(&server_key(host, port))
            .and_then(|s| Fingerprint::from_hex(&s.key))
    }

    /// Pins `key` for this server, replacing any other.
    pub fn trust(&mut self, host: &str, port: u16, key: Fingerprint) {
        self.entry(host, port).key = key.hex();
    }

    /// Forgets the pinned key (the user confirmed the server no longer
    /// encrypts); the next join pins whatever it then shows.
    pub fn forget_key(&mut self, host: &str, port: u16) {
        self.entry(host, port).key.clear();
        self.tidy(host, port);
    }

    pub fn password(&self, host: &str, port: u16) -> Option<String> {
        self.servers
            .get(&server_key(host, port))
            .and_then(|s| s.password.clone())
    }

    pub fn remember_password(&mut self, host: &str, port: u16, password: Option<String>) {
        self.entry(host, port).password = password;
        self.tidy(host, port);
    }

    fn entry(&mut self, host: &str, port: u16) -> &mut KnownServer {
        self.servers.entry(server_key(host, port)).or_default()
    }

    /// Drops an entry that no longer remembers anything.
    fn tidy(&mut self, host: &str, port: u16) {
        let key = server_key(host, port);
        if self.servers.get(&key) == Some(&KnownServer::default()) {
            self.servers.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_found_by_host_in_any_case_and_port() {
        let key = Credentials::generate("s").unwrap().fingerprint();
        let mut known = KnownServers::default();
        known.trust("Office-PC", 5000, key);
        assert_eq!(known.pin("office-pc ", 5000), Some(key));
        assert_eq!(known.pin("office-pc", 5001), None);
        known.forget_key("office-pc", 5000);
        assert_eq!(known.pin("office-pc", 5000), None);
        assert!(known.servers.is_empty());
    }

    #[test]
    fn a_remembered_password_stays_beside_the_pin() {
        let key = Credentials::generate("s").unwrap().fingerprint();
        let mut known = KnownServers::default();
        known.trust("hub", 5000, key);
        known.remember_password("hub", 5000, Some("secret".into()));
        let json = serde_json::to_string(&known).unwrap();
        let back: KnownServers = serde_json::from_str(&json).unwrap();
        assert_eq!(back.password("HUB", 5000).as_deref(), Some("secret"));
        assert_eq!(back.pin("hub", 5000), Some(key));
        known.remember_password("hub", 5000, None);
        assert_eq!(known.password("hub", 5000), None);
        assert_eq!(known.pin("hub", 5000), Some(key), "the pin stays");
    }
}
