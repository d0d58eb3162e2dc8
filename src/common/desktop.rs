//! Handing a file to the desktop: open it with the program the system
//! chose for its kind, or show it in the file manager.
//!
//! Each platform has its own way (`xdg-open` on Linux and the BSDs,
//! `explorer` on Windows, `open` on macOS); the program is started and
//! left to run, and a thread waits for it so nothing is left behind.

use std::io;
use std::path::Path;
use std::process::Command;

/// Opens `path` with the program the system associates with it.
pub fn open(path: &Path) -> io::Result<()> {
    run(open_command(path))
}

/// Shows `path` in the system's file manager: selected, where the
/// platform can (Windows, macOS), else its folder.
pub fn show_in_folder(path: &Path) -> io::Result<()> {
    run(show_command(path))
}

#[cfg(target_os = "windows")]
fn open_command(path: &Path) -> Command {
    let mut c = Command::new("explorer");
    c.arg(path);
    c
}

#[cfg(target_os = "windows")]
fn show_command(path: &Path) -> Command {
    let mut c = Command::new("explorer");
    c.arg(format!("/select,{}", path.display()));
    c
}

#[cfg(target_os = "macos")]
fn open_command(path: &Path) -> Command {
    let mut c = Command::new("open");
    c.arg(path);
    c
}

#[cfg(target_os = "macos")]
fn show_command(path: &Path) -> Command {
    let mut c = Command::new("open");
    c.arg("-R").arg(path);
    c
}

#[cfg(not(any(target_os = "windows", target_os = "macos")))]
fn open_command(path: &Path) -> Command {
    let mut c = Command::new("xdg-open");
    c.arg(path);
    c
}

#[cfg(not(any(target_os = "windows", target_os = "macos")))]
fn show_command(path: &Path) -> Command {
    let folder = path.parent().unwrap_or(path);
    let mut c = Command::new("xdg-open");
    c.arg(folder);
    c
}

fn run(mut command: Command) -> io::Result<()> {
    let mut child = command.spawn()?;
    std::thread::Builder::new()
        .name("desktop".into())
        .spawn(move || {
            let _ = child.wait();
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showing_a_file_opens_its_folder_or_selects_it() {
        let path = Path::new("/home/ann/Downloads/photo.png");
        let args: Vec<String> = show_command(path)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if cfg!(target_os = "windows") {
            assert_eq!(args, vec!["/select,/home/ann/Downloads/photo.png"]);
        } else if cfg!(target_os = "macos") {
            assert_eq!(args, vec!["-R", "/home/ann/Downloads/photo.png"]);
        } else {
            assert_eq!(args, vec!["/home/ann/Downloads"]);
        }
    }
}
