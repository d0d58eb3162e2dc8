//! The server window's form, as plain logic: what the owner typed, what it
//! means, and which field a problem belongs next to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::common::discovery;
use crate::common::netaddr::LocalAddress;
use crate::server::password::{self, PasswordError};
use crate::server::{ServerConfig, StartError, DEFAULT_PORT};

/// What the server window remembers between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// The address last listened on (0.0.0.0 for all interfaces); `None`
    /// until the server has been started once.
    pub address: Option<IpAddr>,
    pub port: u16,
    pub sound: bool,
    /// Whether the log shows what people write ("Show message text").
    pub show_text: bool,
    /// The name clients find the server by; empty for this machine's name.
    pub name: String,
    /// "Let clients find this server": answer clients' searches.
    pub discovery: bool,
    /// How many connections one address may have open at once; 0 for no
    /// limit.
    pub max_per_address: usize,
    /// The password needed to join, as [`password::hash`] keeps it (never
    /// the password itself); `None` for no password.
    pub password: Option<String>,
    /// "Allow original (unencrypted) clients".
    pub allow_original: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            address: None,
            port: DEFAULT_PORT,
            sound: true,
            show_text: true,
            name: String::new(),
            discovery: true,
            max_per_address: ServerConfig::default().max_per_address,
            password: None,
            allow_original: true,
        }
    }
}

/// The settings file's name in the settings folder.
pub const SETTINGS_FILE: &str = "server.json";

/// One entry of the address menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressChoice {
    Local(LocalAddress),
    /// 0.0.0.0: every IPv4 interface.
    AllInterfaces,
}

impl AddressChoice {
    pub fn ip(&self) -> IpAddr {
        match self {
            AddressChoice::Local(a) => a.ip,
            AddressChoice::AllInterfaces => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }

    pub fn label(&self) -> String {
        match self {
            AddressChoice::Local(a) => a.to_string(),
            AddressChoice::AllInterfaces => "All interfaces (0.0.0.0)".into(),
        }
    }
}

/// The address menu: "all interfaces" first (it serves the LAN and this
/// machine alike), then this machine's addresses best first, loopback last
/// (it serves no one else).
pub fn address_choices(detected: &[LocalAddress]) -> Vec<AddressChoice> {
    let (loopback, lan): (Vec<_>, Vec<_>) =
        detected.iter().cloned().partition(|a| a.ip.is_loopback());
    [AddressChoice::AllInterfaces]
        .into_iter()
        .chain(lan.into_iter().map(AddressChoice::Local))
        .chain(loopback.into_iter().map(AddressChoice::Local))
        .collect()
}

/// Which menu entry to preselect: the remembered address if this machine
/// still has it, else all interfaces. Listening on the LAN address alone
/// would turn away a client on this machine that types `localhost`; the
/// status line still tells others the LAN address.
pub fn preselect(choices: &[AddressChoice], remembered: Option<IpAddr>) -> usize {
    let all = || {
        choices
            .iter()
            .position(|c| *c == AddressChoice::AllInterfaces)
            .unwrap_or(0)
    };
    remembered
        .and_then(|wanted| choices.iter().position(|c| c.ip() == wanted))
        .unwrap_or_else(all)
}

/// The LAN address to tell clients when listening on all interfaces.
pub fn advertised(choices: &[AddressChoice]) -> Option<IpAddr> {
    choices.iter().find_map(|c| match c {
        AddressChoice::Local(a) if !a.ip.is_loopback() => Some(a.ip),
        _ => None,
    })
}

/// The form field a message is shown beside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Address,
    Port,
    /// The name clients find the server by.
    Name,
    MaxPerAddress,
}

/// Reads the "Max per address" field: how many connections one address may
/// have open at once, 0 for no limit.
pub fn parse_max_per_address(text: &str) -> Result<usize, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(
            "Type how many connections one address may have at once, 0 for no limit.".into(),
        );
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "\"{text}\" is not a number. Type how many connections one address may have, 0 for no limit."
        ));
    }
    text.parse::<u32>()
        .ok()
        .filter(|&n| n <= MAX_PER_ADDRESS_FIELD)
        .map(|n| n as usize)
        .ok_or_else(|| {
            format!("{text} is too many. Use a number up to {MAX_PER_ADDRESS_FIELD}, or 0 for no limit.")
        })
}

/// The largest "Max per address" the field takes; more than any machine
/// has threads for (use 0 for no limit).
pub const MAX_PER_ADDRESS_FIELD: u32 = 100_000;

/// Reads the Name field: the name clients find the server by, cleaned of
/// anything that is not plain text. Only needed while clients may find it.
pub fn parse_name(text: &str) -> Result<String, String> {
    let name = discovery::clean_name(text);
    if name.is_empty() {
        Err("Type the name clients will see when they look for a server, such as Office.".into())
    } else {
        Ok(name)
    }
}

/// The name the Name field starts with: the one remembered, else this
/// machine's own.
pub fn initial_name(remembered: &str) -> String {
    let name = discovery::clean_name(remembered);
    if name.is_empty() {
        discovery::host_name()
    } else {
        name
    }
}

/// The password to keep after the owner pressed Start: what was typed in
/// the password field, hashed; an empty field keeps the password already
/// set (the field shows "(password set)" rather than the password, which
/// is never kept). "Clear password" is the way to have none.
pub fn password_setting(typed: &str, kept: Option<&str>) -> Result<Option<String>, PasswordError> {
    if typed.is_empty() {
        return Ok(kept.map(str::to_string));
    }
    password::hash(typed).map(Some)
}

/// What the empty password field says about the password in force.
pub fn password_placeholder(kept: Option<&str>) -> &'static str {
    if kept.is_some() {
        "(password set)"
    } else {
        "(no password)"
    }
}

/// Reads the port field.
pub fn parse_port(text: &str) -> Result<u16, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("Type the port clients will use: a number from 1 to 65535.".into());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "\"{text}\" is not a port number. Use a number from 1 to 65535."
        ));
    }
    match text.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(format!(
            "Port {text} is out of range. Use a number from 1 to 65535."
        )),
    }
}

/// The socket address to listen on, or the field to complain next to.
pub fn bind_address(
    choice: &AddressChoice,
    port_text: &str,
) -> Result<SocketAddr, (Field, String)> {
    let port = parse_port(port_text).map_err(|m| (Field::Port, m))?;
    Ok(SocketAddr::new(choice.ip(), port))
}

/// Which field a failure to start belongs next to.
pub fn start_error_field(e: &StartError) -> Field {
    match e {
        StartError::AddressNotAvailable { .. } => Field::Address,
        StartError::PortInUse { .. }
        | StartError::PermissionDenied { .. }
        | StartError::Other { .. }
        | StartError::Identity(_)
        | StartError::Trust(_) => Field::Port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(ip: &str) -> LocalAddress {
        LocalAddress {
            ip: ip.parse().unwrap(),
            interface: "eth0".into(),
        }
    }

    #[test]
    fn ports_are_numbers_from_1_to_65535_explained_in_words() {
        assert_eq!(parse_port(" 5050 "), Ok(5050));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert_eq!(
            parse_port(""),
            Err("Type the port clients will use: a number from 1 to 65535.".into())
        );
        assert_eq!(
            parse_port("http"),
            Err("\"http\" is not a port number. Use a number from 1 to 65535.".into())
        );
        assert_eq!(
            parse_port("-1"),
            Err("\"-1\" is not a port number. Use a number from 1 to 65535.".into())
        );
        for out in ["0", "65536", "99999999999"] {
            assert_eq!(
                parse_port(out),
                Err(format!(
                    "Port {out} is out of range. Use a number from 1 to 65535."
                ))
            );
        }
    }

    #[test]
    fn max_per_address_is_a_number_with_0_for_no_limit_explained_in_words() {
        assert_eq!(parse_max_per_address(" 16 "), Ok(16));
        assert_eq!(parse_max_per_address("0"), Ok(0));
        assert_eq!(
            parse_max_per_address(""),
            Err("Type how many connections one address may have at once, 0 for no limit.".into())
        );
        assert_eq!(
            parse_max_per_address("-1"),
            Err("\"-1\" is not a number. Type how many connections one address may have, 0 for no limit.".into())
        );
        assert_eq!(
            parse_max_per_address("100001"),
            Err("100001 is too many. Use a number up to 100000, or 0 for no limit.".into())
        );
        assert_eq!(ServerSettings::default().max_per_address, 16);
    }

    #[test]
    fn a_typed_password_is_kept_only_as_a_hash_and_an_empty_field_keeps_the_last() {
        let kept = password_setting("open sesame", None).unwrap().unwrap();
        assert!(!kept.contains("open sesame"), "{kept}");
        assert!(password::verify(&kept, "open sesame"));
        assert!(!password::verify(&kept, "open"));
        assert_eq!(
            password_setting("", Some(&kept)).unwrap(),
            Some(kept.clone())
        );
        assert_eq!(password_setting("", None).unwrap(), None);
        let replaced = password_setting("new one", Some(&kept)).unwrap().unwrap();
        assert!(password::verify(&replaced, "new one"));
        assert_eq!(password_placeholder(Some(&kept)), "(password set)");
        assert_eq!(password_placeholder(None), "(no password)");
    }

    #[test]
    fn with_nothing_remembered_there_is_no_password_and_original_clients_are_welcome() {
        let fresh = ServerSettings::default();
        assert_eq!(fresh.password, None);
        assert!(fresh.allow_original);
        // Settings written before these switches existed read the same.
        let old: ServerSettings = serde_json::from_str(r#"{"port": 6000}"#).unwrap();
        assert_eq!(old.port, 6000);
        assert_eq!(old.password, None);
        assert!(old.allow_original);
    }

    #[test]
    fn the_name_defaults_to_the_host_name_and_may_not_be_blank() {
        assert_eq!(initial_name(""), discovery::host_name());
        assert_eq!(initial_name("Office"), "Office");
        assert_eq!(parse_name(" Front desk\n"), Ok("Front desk".into()));
        assert!(parse_name(" \u{200B} ").is_err());
        assert!(ServerSettings::default().discovery, "found by default");
    }

    #[test]
    fn the_menu_offers_all_interfaces_first_then_lan_then_loopback() {
        let choices =
            address_choices(&[local("192.168.1.20"), local("10.0.0.3"), local("127.0.0.1")]);
        let labels: Vec<String> = choices.iter().map(AddressChoice::label).collect();
        assert_eq!(
            labels,
            [
                "All interfaces (0.0.0.0)",
                "192.168.1.20 (eth0)",
                "10.0.0.3 (eth0)",
                "127.0.0.1 (this machine only)"
            ]
        );
        assert_eq!(advertised(&choices), Some("192.168.1.20".parse().unwrap()));
    }

    #[test]
    fn all_interfaces_is_preselected_unless_another_address_was_remembered() {
        let choices =
            address_choices(&[local("192.168.1.20"), local("10.0.0.3"), local("127.0.0.1")]);
        let chosen = |remembered: Option<&str>| {
            choices[preselect(&choices, remembered.map(|r| r.parse().unwrap()))].ip()
        };
        assert_eq!(chosen(None), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(
            chosen(Some("0.0.0.0")),
            "0.0.0.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            chosen(Some("10.0.0.3")),
            "10.0.0.3".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            chosen(Some("127.0.0.1")),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            chosen(Some("10.9.9.9")),
            "0.0.0.0".parse::<IpAddr>().unwrap(),
            "a vanished address"
        );
    }

    #[test]
    fn a_port_in_use_belongs_next_to_the_port_and_a_missing_address_next_to_the_address() {
        let addr = "10.0.0.1:5050".parse().unwrap();
        assert_eq!(
            start_error_field(&StartError::PortInUse { addr }),
            Field::Port
        );
        assert_eq!(
            start_error_field(&StartError::AddressNotAvailable { addr }),
            Field::Address
        );
        assert_eq!(
            bind_address(&AddressChoice::AllInterfaces, "x"),
            Err((
                Field::Port,
                "\"x\" is not a port number. Use a number from 1 to 65535.".into()
            ))
        );
    }
}
