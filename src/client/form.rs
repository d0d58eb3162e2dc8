//! The client window's form as plain logic: what is remembered, and what
//! the user typed checked with the mistake placed next to its field.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::common::avatar::{self, Picture};
use crate::common::discovery::Found;
use crate::common::profile::validate_name;
use crate::server::DEFAULT_PORT;

/// What the client remembers between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientSettings {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub color: String,
    /// The built-in avatar: what original peers see, and what HubChat peers
    /// see when there is no custom picture.
    pub image_name: String,
    /// The custom avatar, a 48x48 PNG in base64; empty for none.
    pub picture: String,
    /// "Connect when HubChat starts": to the server remembered here. Unset
    /// (absent) means off until the first successful connection, which
    /// turns it on; once the user ticks or clears the box, their choice
    /// stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_at_start: Option<bool>,
    /// "Keep history" cleared: conversations are not kept on disk.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_history: bool,
}

impl ClientSettings {
    /// The custom avatar's PNG and pixels, if there is one and it is sound
    /// (the file may have been edited by hand).
    pub fn picture(&self) -> Option<(Vec<u8>, Picture)> {
        if self.picture.is_empty() {
            return None;
        }
        let png = BASE64.decode(self.picture.as_bytes()).ok()?;
        let picture = avatar::check_wire_picture(&png).ok()?;
        Some((png, picture))
    }

    /// Remembers a custom avatar's PNG, or none.
    pub fn set_picture(&mut self, png: Option<&[u8]>) {
        self.picture = png.map(|p| BASE64.encode(p)).unwrap_or_default();
    }

    /// A connection succeeded: an unset "Connect when HubChat starts"
    /// turns on. Returns whether the setting changed (to be saved).
    pub fn joined(&mut self) -> bool {
        let unset = self.connect_at_start.is_none();
        if unset {
            self.connect_at_start = Some(true);
        }
        unset
    }
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            host: String::new(),
            port: DEFAULT_PORT,
            name: String::new(),
            color: "blue".into(),
            image_name: "image_1.png".into(),
            picture: String::new(),
            connect_at_start: None,
            no_history: false,
        }
    }
}

/// The settings file's name in the settings folder.
pub const SETTINGS_FILE: &str = "client.json";

/// The form field a message belongs next to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Host,
    Port,
    Name,
}

/// Checks the form; returns host, port and trimmed name.
pub fn check(host: &str, port: &str, name: &str) -> Result<(String, u16, String), (Field, String)> {
    let host = host.trim();
    if host.is_empty() {
        return Err((
            Field::Host,
            "Type the server's address, e.g. 192.168.1.20 or a computer name.".into(),
        ));
    }
    let port_text = port.trim();
    let port = match port_text.parse::<u32>() {
        Ok(p @ 1..=65535) => p as u16,
        Ok(_) => {
            return Err((
                Field::Port,
                format!("Port {port_text} is out of range. Use a number from 1 to 65535."),
            ))
        }
        Err(_) if port_text.is_empty() => {
            return Err((
                Field::Port,
                "Type the server's port: a number from 1 to 65535.".into(),
            ))
        }
        Err(_) => {
            return Err((
                Field::Port,
                format!("\"{port_text}\" is not a port number. Use a number from 1 to 65535."),
            ))
        }
    };
    let name = validate_name(name).map_err(|e| (Field::Name, e.to_string()))?;
    Ok((host.to_string(), port, name.to_string()))
}

/// The servers a search of the network found, as the Server combo offers
/// them, and what to say about the search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundServers {
    found: Vec<Found>,
    searching: bool,
    /// Why the last search could not run.
    failed: Option<String>,
}

impl FoundServers {
    /// Forgets what was found: a new search begins.
    pub fn start(&mut self) {
        *self = FoundServers {
            searching: true,
            ..FoundServers::default()
        };
    }

    /// Adds a server found; false if it was known already.
    pub fn add(&mut self, server: Found) -> bool {
        if self.found.iter().any(|f| f.addr == server.addr) {
            return false;
        }
        self.found.push(server);
        true
    }

    /// The search has ended, or could not run.
    pub fn finish(&mut self, result: Result<(), String>) {
        self.searching = false;
        self.failed = result.err();
    }

    pub fn searching(&self) -> bool {
        self.searching
    }

    /// The combo's entries, in the order found.
    pub fn labels(&self) -> Vec<String> {
        self.found.iter().map(Found::label).collect()
    }

    /// The address and port of the entry whose label is `text` (what the
    /// combo's field holds once an entry is picked).
    pub fn pick(&self, text: &str) -> Option<(String, u16)> {
        self.found
            .iter()
            .find(|f| f.label() == text)
            .map(|f| (f.addr.ip().to_string(), f.addr.port()))
    }

    /// The one server to preselect once the search has ended: only when it
    /// found exactly one and the user has no address of their own.
    pub fn preselect(&self, typed_or_remembered: &str) -> Option<(String, u16)> {
        match self.found.as_slice() {
            [only] if !self.searching && typed_or_remembered.trim().is_empty() => {
                Some((only.addr.ip().to_string(), only.addr.port()))
            }
            _ => None,
        }
    }

    /// The search in plain words.
    pub fn summary(&self) -> String {
        match (self.searching, &self.failed, self.found.len()) {
            (_, Some(e), _) => {
                format!("Cannot search the network ({e}): type the server's address.")
            }
            (true, None, 0) => "Searching the network for servers...".into(),
            (true, None, 1) => "Searching... found 1 server so far".into(),
            (true, None, n) => format!("Searching... found {n} servers so far"),
            (false, None, 0) => "No server found: type its address.".into(),
            (false, None, 1) => "Found 1 server: pick it from the Server list.".into(),
            (false, None, n) => format!("Found {n} servers: pick one from the Server list."),
        }
    }
}

/// The ports a search asks on: the one in the port field, if it is one,
/// and the default.
pub fn search_ports(port_field: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    if let Ok(p @ 1..=65535) = port_field.trim().parse::<u32>() {
        ports.push(p as u16);
    }
    if !ports.contains(&DEFAULT_PORT) {
        ports.push(DEFAULT_PORT);
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_form_gives_host_port_and_trimmed_name() {
        assert_eq!(
            check(" 10.0.0.5 ", "5050", " alice "),
            Ok(("10.0.0.5".into(), 5050, "alice".into()))
        );
    }

    #[test]
    fn each_mistake_is_placed_next_to_its_field() {
        assert_eq!(check("", "5050", "a").unwrap_err().0, Field::Host);
        assert_eq!(check("h", "http", "a").unwrap_err().0, Field::Port);
        assert_eq!(check("h", "0", "a").unwrap_err().0, Field::Port);
        assert_eq!(check("h", "", "a").unwrap_err().0, Field::Port);
        let (field, message) = check("h", "5050", "   ").unwrap_err();
        assert_eq!(field, Field::Name);
        assert!(message.starts_with("The name is empty"), "{message}");
    }

    fn found(name: &str, addr: &str) -> Found {
        Found {
            name: name.into(),
            addr: addr.parse().unwrap(),
            version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_search_is_told_in_plain_words_as_it_goes() {
        let mut servers = FoundServers::default();
        servers.start();
        assert_eq!(servers.summary(), "Searching the network for servers...");
        assert!(servers.add(found("Office", "192.168.1.20:5050")));
        assert!(!servers.add(found("Office", "192.168.1.20:5050")), "once");
        assert!(servers.add(found("Lab", "192.168.1.21:6000")));
        assert_eq!(servers.summary(), "Searching... found 2 servers so far");
        servers.finish(Ok(()));
        assert_eq!(
            servers.summary(),
            "Found 2 servers: pick one from the Server list."
        );
        assert_eq!(
            servers.labels(),
            ["Office - 192.168.1.20:5050", "Lab - 192.168.1.21:6000"]
        );
        servers.start();
        servers.finish(Ok(()));
        assert_eq!(servers.summary(), "No server found: type its address.");
        servers.start();
        servers.finish(Err("no network".into()));
        assert_eq!(
            servers.summary(),
            "Cannot search the network (no network): type the server's address."
        );
    }

    #[test]
    fn picking_an_entry_gives_its_address_and_port() {
        let mut servers = FoundServers::default();
        servers.add(found("Office", "192.168.1.20:5050"));
        servers.add(found("Lab", "[fd00::7]:6000"));
        assert_eq!(
            servers.pick("Lab - [fd00::7]:6000"),
            Some(("fd00::7".into(), 6000))
        );
        assert_eq!(servers.pick("192.168.1.20"), None, "typed, not picked");
    }

    #[test]
    fn the_only_server_found_is_preselected_unless_an_address_is_there() {
        let mut servers = FoundServers::default();
        servers.start();
        servers.add(found("Office", "192.168.1.20:5050"));
        assert_eq!(servers.preselect(""), None, "not while searching");
        servers.finish(Ok(()));
        assert_eq!(servers.preselect(" "), Some(("192.168.1.20".into(), 5050)));
        assert_eq!(servers.preselect("10.0.0.5"), None);
        servers.add(found("Lab", "192.168.1.21:5050"));
        assert_eq!(servers.preselect(""), None, "two: the user picks");
    }

    #[test]
    fn searches_ask_on_the_typed_port_and_the_default() {
        assert_eq!(search_ports("6000"), [6000, DEFAULT_PORT]);
        assert_eq!(search_ports("5050"), [DEFAULT_PORT]);
        assert_eq!(search_ports("http"), [DEFAULT_PORT]);
    }

    #[test]
    fn connecting_at_start_is_off_until_the_first_join_then_on_unless_the_user_chose() {
        let mut s: ClientSettings = serde_json::from_str(r#"{"host": "10.0.0.5"}"#).unwrap();
        assert_eq!(s.connect_at_start, None, "a file from before the setting");
        assert!(!serde_json::to_string(&s)
            .unwrap()
            .contains("connect_at_start"));
        assert!(s.joined(), "the first join turns it on");
        assert_eq!(s.connect_at_start, Some(true));
        assert!(!s.joined(), "once");
        s.connect_at_start = Some(false); // the user cleared the box
        assert!(!s.joined(), "the user's choice stays");
        assert_eq!(s.connect_at_start, Some(false));
        let json = serde_json::to_string(&s).unwrap();
        let back: ClientSettings = serde_json::from_str(&json).unwrap();
        assert_eq!(back.connect_at_start, Some(false));
    }

    #[test]
    fn a_custom_avatar_is_remembered_and_a_damaged_one_forgotten() {
        let picture = Picture {
            rgba: vec![200; 48 * 48 * 4],
        };
        let png = avatar::encode_picture(&picture);
        let mut s = ClientSettings::default();
        assert_eq!(s.picture(), None);
        s.set_picture(Some(&png));
        let json = serde_json::to_string(&s).unwrap();
        let back: ClientSettings = serde_json::from_str(&json).unwrap();
        assert_eq!(back.picture(), Some((png, picture)));
        s.picture = "bm90IGEgcGljdHVyZQ==".into(); // "not a picture"
        assert_eq!(s.picture(), None);
        s.set_picture(None);
        assert!(s.picture.is_empty());
    }
}
