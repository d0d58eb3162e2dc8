//! Files that come from the desktop rather than the file chooser: dropped
//! on a conversation window (a list of paths or `file://` URIs, one per
//! line, as the desktop hands them over), or a picture pasted from the
//! clipboard, which is saved as a PNG file to be sent like any other.

use std::io;
use std::path::{Path, PathBuf};

/// The files named by text dropped on a window: `file://` URIs (percent
/// escapes decoded; on Windows `file:///C:/...`) or plain absolute paths,
/// one per line. Lines that name no file (text dragged from a browser, a
/// folder) are left out.
pub fn dropped_paths(text: &str) -> Vec<PathBuf> {
    text.lines()
        .map(|l| l.trim_end_matches('\r').trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(path_of)
        .filter(|p| p.is_file())
        .collect()
}

fn path_of(line: &str) -> Option<PathBuf> {
    let Some(rest) = line.strip_prefix("file://") else {
        let path = PathBuf::from(line);
        return path.is_absolute().then_some(path);
    };
    // `file://host/path`: only the local host (empty or localhost).
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let decoded = percent_decode(rest)?;
    // `/C:/Users/...` on Windows.
    let windows = decoded.len() > 2
        && decoded.starts_with('/')
        && decoded.as_bytes()[2] == b':'
        && cfg!(target_os = "windows");
    let path = if windows { &decoded[1..] } else { &decoded[..] };
    Some(PathBuf::from(path))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Pixels of a pasted picture, as the clipboard gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pasted {
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel: 1 (grey), 2 (grey and alpha), 3 (RGB), 4 (RGBA).
    pub depth: u8,
    pub data: Vec<u8>,
}

/// Saves a pasted picture as a PNG file in `dir`, named for the moment
/// ("Pasted picture 2026-12-02 09.41.07.png"), and returns its path.
pub fn save_pasted(dir: &Path, picture: &Pasted) -> io::Result<PathBuf> {
    let color = match picture.depth {
        1 => image::ExtendedColorType::L8,
        2 => image::ExtendedColorType::La8,
        3 => image::ExtendedColorType::Rgb8,
        4 => image::ExtendedColorType::Rgba8,
        d => {
            return Err(io::Error::other(format!(
                "the pasted picture has {d} bytes per pixel"
            )))
        }
    };
    let expected = picture.width as usize * picture.height as usize * picture.depth as usize;
    if picture.data.len() != expected || expected == 0 {
        return Err(io::Error::other("the pasted picture is empty or cut short"));
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &picture.data,
        picture.width,
        picture.height,
        color,
    )
    .map_err(io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let name = chrono::Local::now()
        .format("Pasted picture %Y-%m-%d %H.%M.%S.png")
        .to_string();
    let (path, mut file) = crate::common::filename::create_unique(dir, &name)?;
    io::Write::write_all(&mut file, &png)?;
    Ok(path)
}

/// Where pasted pictures are kept until sent: a folder of HubChat's own
/// in the system's temporary folder.
pub fn pasted_dir() -> PathBuf {
    std::env::temp_dir().join("hubchat-pasted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_uris_and_paths_name_the_files_they_point_at() {
        let dir = std::env::temp_dir().join(format!("hubchat-drop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spaced = dir.join("my report é.txt");
        std::fs::write(&spaced, b"x").unwrap();
        let plain = dir.join("plain.txt");
        std::fs::write(&plain, b"x").unwrap();
        let uri = format!(
            "file://{}",
            spaced
                .display()
                .to_string()
                .replace(' ', "%20")
                .replace('é', "%C3%A9")
        );
        let text = format!(
            "{uri}\r\n{}\nhttps://example.com/page\nfile://{}\n\n",
            plain.display(),
            dir.display()
        );
        assert_eq!(dropped_paths(&text), vec![spaced, plain]);
        assert!(dropped_paths("just some words").is_empty());
        assert!(dropped_paths("file:///broken%zz").is_empty());
    }

    #[test]
    fn a_pasted_picture_becomes_a_png_file_that_reads_back() {
        let dir = std::env::temp_dir().join(format!("hubchat-paste-{}", std::process::id()));
        let data: Vec<u8> = (0..4 * 3 * 3).map(|i| i as u8 * 7).collect();
        let path = save_pasted(
            &dir,
            &Pasted {
                width: 4,
                height: 3,
                depth: 3,
                data: data.clone(),
            },
        )
        .unwrap();
        assert!(path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("Pasted picture "));
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back.into_raw(), data);
        let short = Pasted {
            width: 4,
            height: 3,
            depth: 3,
            data: data[1..].to_vec(),
        };
        assert!(save_pasted(&dir, &short).is_err());
    }
}
