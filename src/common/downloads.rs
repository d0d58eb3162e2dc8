//! Where files a person accepts are saved: their Downloads folder, found
//! where the platform keeps it.
//!
//! - Linux and other Unix: `XDG_DOWNLOAD_DIR` from `user-dirs.dirs` in the
//!   config folder (the desktop's own setting, translated names included:
//!   `~/Téléchargements`), else `~/Downloads`.
//! - Windows: the Downloads known folder (`SHGetKnownFolderPath`), which
//!   follows a folder the user moved (Properties > Location) or an office's
//!   folder redirection; else `%USERPROFILE%\Downloads`.
//! - macOS: `~/Downloads`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The Downloads folder, if the platform says where home is. It may not
/// exist yet; whoever saves there creates it.
pub fn downloads_dir() -> Option<PathBuf> {
    platform_downloads(|name| std::env::var_os(name))
}

#[cfg(target_os = "windows")]
fn platform_downloads(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    known_downloads().or_else(|| home(&var, "USERPROFILE").map(|h| h.join("Downloads")))
}

/// Where Windows itself says the Downloads folder is, moved or not.
/// `KF_FLAG_DONT_VERIFY`: a folder on a network share that is out of reach
/// right now is still named (saving there then fails with a sentence)
/// rather than silently replaced by another.
#[cfg(target_os = "windows")]
fn known_downloads() -> Option<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::{
        FOLDERID_Downloads, SHGetKnownFolderPath, KF_FLAG_DONT_VERIFY,
    };

    let mut wide: *mut u16 = std::ptr::null_mut();
    // SAFETY: the GUID is a constant, a null token means the current user,
    // and on return `wide` is either null or a NUL-terminated string that
    // the system allocated and that is freed once, below, after copying.
    let path = unsafe {
        let status = SHGetKnownFolderPath(
            &FOLDERID_Downloads,
            KF_FLAG_DONT_VERIFY as u32,
            std::ptr::null_mut(),
            &mut wide,
        );
        let path = if status >= 0 && !wide.is_null() {
            let len = (0..).take_while(|&i| *wide.add(i) != 0).count();
            let name = std::slice::from_raw_parts(wide, len);
            Some(PathBuf::from(OsString::from_wide(name)))
        } else {
            None
        };
        CoTaskMemFree(wide as *const _);
        path
    };
    path.filter(|p| p.is_absolute())
}

#[cfg(target_os = "macos")]
fn platform_downloads(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    home(&var, "HOME").map(|h| h.join("Downloads"))
}

#[cfg(not(any(target_os = "windows", target_os = "macos")))]
fn platform_downloads(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let home = home(&var, "HOME")?;
    let config = var("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    let chosen = std::fs::read_to_string(config.join("user-dirs.dirs"))
        .ok()
        .and_then(|text| from_user_dirs(&text, &home));
    Some(chosen.unwrap_or_else(|| home.join("Downloads")))
}

/// The home folder an environment variable names; set but empty counts as
/// unset, so it never becomes a relative path.
fn home(var: &impl Fn(&str) -> Option<OsString>, name: &str) -> Option<PathBuf> {
    var(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The download folder a `user-dirs.dirs` file names
/// (`XDG_DOWNLOAD_DIR="$HOME/Downloads"`, or an absolute path), as
/// xdg-user-dirs writes it. A value that is home itself means the user
/// turned the folder off: then there is none to take from here.
#[cfg_attr(any(target_os = "windows", target_os = "macos"), allow(dead_code))]
fn from_user_dirs(text: &str, home: &Path) -> Option<PathBuf> {
    let value = text.lines().find_map(|line| {
        let line = line.trim();
        let rest = line.strip_prefix("XDG_DOWNLOAD_DIR=")?;
        Some(rest.trim().trim_matches('"').to_string())
    })?;
    let path = if let Some(relative) = value.strip_prefix("$HOME") {
        let relative = relative.trim_start_matches('/');
        if relative.is_empty() {
            return None;
        }
        home.join(relative)
    } else if value.starts_with('/') {
        PathBuf::from(value)
    } else {
        return None;
    };
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_desktops_own_download_folder_is_used() {
        let home = Path::new("/home/ann");
        let file = "# written by xdg-user-dirs-update\n\
                    XDG_DESKTOP_DIR=\"$HOME/Bureau\"\n\
                    XDG_DOWNLOAD_DIR=\"$HOME/Téléchargements\"\n";
        assert_eq!(
            from_user_dirs(file, home),
            Some(PathBuf::from("/home/ann/Téléchargements"))
        );
        assert_eq!(
            from_user_dirs("XDG_DOWNLOAD_DIR=\"/data/incoming\"\n", home),
            Some(PathBuf::from("/data/incoming"))
        );
    }

    #[test]
    fn no_usable_setting_gives_no_folder_from_the_file() {
        let home = Path::new("/home/ann");
        assert_eq!(
            from_user_dirs("XDG_DESKTOP_DIR=\"$HOME/Desktop\"", home),
            None
        );
        // Pointing at home itself is how a folder is turned off.
        assert_eq!(from_user_dirs("XDG_DOWNLOAD_DIR=\"$HOME/\"", home), None);
        assert_eq!(from_user_dirs("XDG_DOWNLOAD_DIR=\"relative\"", home), None);
        assert_eq!(from_user_dirs("", home), None);
    }

    #[test]
    fn an_empty_home_is_no_home() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(home(&env(&[("HOME", "")]), "HOME"), None);
        assert_eq!(home(&env(&[]), "HOME"), None);
        assert_eq!(
            home(&env(&[("HOME", "/home/ann")]), "HOME"),
            Some(PathBuf::from("/home/ann"))
        );
    }
}
