//! Settings remembered between runs, as JSON in the platform's usual place.
//!
//! - Linux and other Unix: `$XDG_CONFIG_HOME/hubchat/` or `~/.config/hubchat/`
//! - Windows: `%APPDATA%\HubChat\`
//! - macOS: `~/Library/Application Support/HubChat/`
//!
//! `HUBCHAT_CONFIG_DIR` overrides the folder (for a portable copy on a USB
//! stick, and for tests). A missing or unreadable file gives the defaults: a
//! settings file must never stop the program from starting.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The folder settings live in, if the platform says where home is.
pub fn config_dir() -> Option<PathBuf> {
    override_dir(std::env::var_os("HUBCHAT_CONFIG_DIR")).or_else(platform_config_dir)
}

/// The folder `HUBCHAT_CONFIG_DIR` names. Set but empty counts as unset:
/// an empty path would be relative and scatter settings into whatever
/// folder the program was started in.
fn override_dir(value: Option<OsString>) -> Option<PathBuf> {
    value.filter(|d| !d.is_empty()).map(PathBuf::from)
}

#[cfg(target_os = "windows")]
fn platform_config_dir() -> Option<PathBuf> {
    windows_config_dir(|name| std::env::var_os(name))
}

/// `%APPDATA%\HubChat`, the roaming profile folder Windows keeps per user.
/// Should APPDATA be unset or empty (a stripped environment, a service
/// account), the same folder is found under `%USERPROFILE%`; an empty
/// variable must not become a relative path, which would scatter settings
/// into whatever folder the program was started from. `var` reads an
/// environment variable; tests pass their own.
#[cfg(any(target_os = "windows", test))]
fn windows_config_dir(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let roaming = set("APPDATA")
        .or_else(|| set("USERPROFILE").map(|home| home.join("AppData").join("Roaming")))?;
    Some(roaming.join("HubChat"))
}

#[cfg(target_os = "macos")]
fn platform_config_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Library/Application Support/HubChat"))
}

#[cfg(not(any(target_os = "windows", target_os = "macos")))]
fn platform_config_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("hubchat"))
}

/// Reads `file` from the settings folder, or the defaults if there is none
/// or it cannot be read.
pub fn load<T: DeserializeOwned + Default>(file: &str) -> T {
    config_dir()
        .and_then(|dir| fs::read(dir.join(file)).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Writes `file` into the settings folder, replacing it whole: a crash in
/// the middle leaves the old file, not half a new one.
pub fn save<T: Serialize>(file: &str, value: &T) -> io::Result<()> {
    let dir = config_dir().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no home folder to keep settings in",
        )
    })?;
    fs::create_dir_all(&dir)?;
    let json = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let tmp = dir.join(format!("{file}.tmp"));
    fs::write(&tmp, json)?;
    fs::rename(tmp, dir.join(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn an_empty_override_is_no_override() {
        assert_eq!(override_dir(None), None);
        assert_eq!(override_dir(Some(OsString::new())), None);
        assert_eq!(
            override_dir(Some(OsString::from("/media/usb/hubchat"))),
            Some(PathBuf::from("/media/usb/hubchat"))
        );
    }

    #[test]
    fn windows_settings_live_in_appdata_hubchat() {
        let appdata = r"C:\Users\Ann\AppData\Roaming";
        let dir = windows_config_dir(env(&[
            ("APPDATA", appdata),
            ("USERPROFILE", r"C:\Users\Ann"),
        ]));
        assert_eq!(dir, Some(PathBuf::from(appdata).join("HubChat")));
    }

    #[test]
    fn windows_without_appdata_uses_the_same_folder_under_the_user_profile() {
        let home = r"C:\Users\Ann";
        let expected = PathBuf::from(home)
            .join("AppData")
            .join("Roaming")
            .join("HubChat");
        for vars in [
            &[("USERPROFILE", home)][..],
            &[("APPDATA", ""), ("USERPROFILE", home)][..],
        ] {
            assert_eq!(windows_config_dir(env(vars)), Some(expected.clone()));
        }
    }

    #[test]
    fn windows_with_neither_folder_keeps_no_settings_rather_than_a_relative_path() {
        assert_eq!(windows_config_dir(env(&[])), None);
        assert_eq!(
            windows_config_dir(env(&[("APPDATA", ""), ("USERPROFILE", "")])),
            None
        );
    }
}
