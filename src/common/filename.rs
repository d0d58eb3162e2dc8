//! File names that come from the network, made safe to save under.
//!
//! A file offered by a peer names itself, and that name is the peer's
//! choice: "../../.bashrc", "C:\Windows\evil.dll", "CON", a name with a
//! right-to-left override that shows "exe.txt" for "txt.exe", or a
//! thousand characters. [`sanitize`] keeps only the last path part and
//! turns everything Windows or Linux would refuse or misread into a plain
//! character, so the result is one harmless name in the folder it is saved
//! to. [`create_unique`] then creates the file there without ever
//! overwriting one: `photo.png`, `photo (2).png`, `photo (3).png`, ...

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The longest name kept, in bytes (most file systems allow 255; room is
/// left for " (999)" and a partial-download suffix).
pub const MAX_NAME_BYTES: usize = 200;

/// What a name that is nothing once cleaned becomes.
const FALLBACK: &str = "file";

/// Names Windows keeps for devices, with or without an extension.
const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A safe file name from one a peer gave: its last path part, without
/// control, bidi or invisible formatting characters, without the
/// characters Windows forbids, without trailing dots or spaces, not a
/// device name, at most [`MAX_NAME_BYTES`] bytes with its extension kept.
pub fn sanitize(offered: &str) -> String {
    let last = offered
        .rsplit(['/', '\\'])
        .find(|part| !part.trim().is_empty())
        .unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|&c| !is_invisible(c))
        .map(|c| if is_forbidden(c) { '_' } else { c })
        .collect();
    // Windows drops trailing dots and spaces; a leading space hides.
    let mut name = cleaned
        .trim_end_matches(['.', ' '])
        .trim_start()
        .to_string();
    if name.is_empty() {
        return FALLBACK.to_string();
    }
    if is_reserved(&name) {
        name.insert(0, '_');
    }
    shorten(&name)
}

/// Creates a new file named `name` (already [`sanitize`]d) in `dir`, or
/// `name (2)`, `name (3)`, ... if that is taken: an existing file is never
/// opened, let alone overwritten, even if another program creates one at
/// the same moment.
pub fn create_unique(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let (stem, ext) = split_extension(name);
    for n in 1..=10_000u32 {
        let candidate = if n == 1 {
            name.to_string()
        } else {
            format!("{stem} ({n}){ext}")
        };
        let path = dir.join(candidate);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} already holds 10,000 files named like {name}",
            dir.display()
        ),
    ))
}

/// `("photo", ".png")` from `photo.png`; a leading dot is not an
/// extension (`.profile` has none).
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    }
}

/// Characters nobody sees that change how a name reads: controls, bidi
/// overrides and isolates, zero-width characters, soft hyphens.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Characters Windows does not allow in a file name.
fn is_forbidden(c: char) -> bool {
    matches!(c, '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*')
}

/// Whether Windows would take `name` for a device: `CON`, `nul.txt`,
/// `COM1.tar.gz`, with the part before the first dot compared, trailing
/// spaces ignored, in any case.
fn is_reserved(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or("").trim_end();
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(base))
}

/// Cuts a name to [`MAX_NAME_BYTES`] on a character boundary, keeping its
/// extension when that is short.
fn shorten(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_string();
    }
    let (stem, ext) = split_extension(name);
    let ext = if ext.len() <= 16 { ext } else { "" };
    let mut cut = MAX_NAME_BYTES - ext.len();
    while !stem.is_char_boundary(cut.min(stem.len())) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut.min(stem.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_path_part_is_kept() {
        assert_eq!(sanitize("../../.bashrc"), ".bashrc");
        assert_eq!(sanitize("C:\\Windows\\System32\\evil.dll"), "evil.dll");
        assert_eq!(sanitize("/etc/passwd"), "passwd");
        assert_eq!(sanitize("photos/2026/"), "2026");
        assert_eq!(sanitize(".."), FALLBACK);
        assert_eq!(sanitize("../.."), FALLBACK);
        assert_eq!(sanitize(""), FALLBACK);
        assert_eq!(sanitize("   "), FALLBACK);
    }

    #[test]
    fn what_windows_refuses_or_misreads_is_made_plain() {
        assert_eq!(sanitize("a<b>c:d\"e|f?g*h.txt"), "a_b_c_d_e_f_g_h.txt");
        assert_eq!(sanitize("report. . ."), "report");
        assert_eq!(sanitize("  report.pdf"), "report.pdf");
        assert_eq!(sanitize("CON"), "_CON");
        assert_eq!(sanitize("nul.txt"), "_nul.txt");
        assert_eq!(sanitize("Com1.tar.gz"), "_Com1.tar.gz");
        assert_eq!(sanitize("lpt9 .log"), "_lpt9 .log");
        assert_eq!(sanitize("CONSOLE.txt"), "CONSOLE.txt");
    }

    #[test]
    fn invisible_and_direction_characters_are_dropped() {
        // Shown as "exe.txt" by a right-to-left override: really "txt.exe".
        assert_eq!(sanitize("photo\u{202E}gpj.exe"), "photogpj.exe");
        assert_eq!(sanitize("a\u{200B}b\u{FEFF}c\u{0007}\n.txt"), "abc.txt");
        assert_eq!(sanitize("\u{0000}"), FALLBACK);
        assert_eq!(sanitize("café 😀 日本.png"), "café 😀 日本.png");
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary_keeping_the_extension() {
        let long = format!("{}.jpeg", "é".repeat(300));
        let cut = sanitize(&long);
        assert!(cut.len() <= MAX_NAME_BYTES, "{} bytes", cut.len());
        assert!(cut.ends_with(".jpeg"));
        assert!(cut.starts_with('é'));
        let no_ext = "x".repeat(1_000);
        assert_eq!(sanitize(&no_ext).len(), MAX_NAME_BYTES);
    }

    #[test]
    fn a_taken_name_gets_a_number_and_nothing_is_overwritten() {
        let dir = std::env::temp_dir().join(format!("hubchat-filename-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("photo.png"), b"mine").unwrap();
        let (second, _) = create_unique(&dir, "photo.png").unwrap();
        let (third, _) = create_unique(&dir, "photo.png").unwrap();
        let (hidden, _) = create_unique(&dir, ".profile").unwrap();
        let (again, _) = create_unique(&dir, ".profile").unwrap();
        assert_eq!(second, dir.join("photo (2).png"));
        assert_eq!(third, dir.join("photo (3).png"));
        assert_eq!(hidden, dir.join(".profile"));
        assert_eq!(again, dir.join(".profile (2)"));
        assert_eq!(std::fs::read(dir.join("photo.png")).unwrap(), b"mine");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
