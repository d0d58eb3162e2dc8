//! The client window's form as plain logic: what is remembered, and what
//! the user typed checked with the mistake placed next to its field.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::common::avatar::{self, Picture};
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
