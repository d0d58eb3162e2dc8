//! A file being received: written under a partial name, checked, and only
//! then given its own name.
//!
//! Chunks are written to `name.part` (never over an existing file) while
//! a SHA-256 of them is kept. When the last chunk is in, the digest is
//! compared with the one the sender announced: a match renames the file
//! to its final name (`name (2).ext` if that is taken); a mismatch, a file
//! longer or shorter than announced, or a transfer given up deletes the
//! partial file. So a damaged or cut-off file never appears under a name
//! the user would open.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};

use crate::common::filename::create_unique;

/// Why a received file was not kept.
#[derive(Debug)]
pub enum IncomingError {
    /// More bytes arrived than the sender announced.
    TooLong { announced: u64 },
    /// The transfer ended before all the announced bytes arrived.
    Short { received: u64, announced: u64 },
    /// The bytes are not the ones the sender hashed.
    Damaged,
    /// The disk refused (full, no permission, ...).
    Io(io::Error),
}

impl fmt::Display for IncomingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IncomingError::TooLong { announced } => write!(
                f,
                "the sender sent more than the {announced} bytes it announced; the partial file was deleted"
            ),
            IncomingError::Short {
                received,
                announced,
            } => write!(
                f,
                "only {received} of {announced} bytes arrived; the partial file was deleted"
            ),
            IncomingError::Damaged => write!(
                f,
                "the file arrived damaged (its SHA-256 does not match the sender's); the partial file was deleted"
            ),
            IncomingError::Io(e) => write!(f, "the file could not be saved: {e}"),
        }
    }
}

impl std::error::Error for IncomingError {}

impl From<io::Error> for IncomingError {
    fn from(e: io::Error) -> Self {
        IncomingError::Io(e)
    }
}

/// A file being received into a folder.
pub struct Incoming {
    dir: PathBuf,
    name: String,
    part: PathBuf,
    file: Option<File>,
    digest: Context,
    received: u64,
    announced: u64,
}

impl Incoming {
    /// Starts receiving `name` (already sanitized) of `announced` bytes
    /// into `dir`, which is created if missing.
    pub fn start(dir: &Path, name: &str, announced: u64) -> io::Result<Incoming> {
        fs::create_dir_all(dir)?;
        let (part, file) = create_unique(dir, &format!("{name}.part"))?;
        Ok(Incoming {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            part,
            file: Some(file),
            digest: Context::new(&SHA256),
            received: 0,
            announced,
        })
    }

    /// How many bytes have been written so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// How many bytes the sender announced.
    pub fn announced(&self) -> u64 {
        self.announced
    }

    /// Writes the next chunk. More than was announced is an error (the
    /// partial file is deleted).
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), IncomingError> {
        let received = self.received + chunk.len() as u64;
        if received > self.announced {
            self.abandon();
            return Err(IncomingError::TooLong {
                announced: self.announced,
            });
        }
        let Some(file) = self.file.as_mut() else {
            return Err(IncomingError::Io(io::Error::other(
                "the transfer was already given up",
            )));
        };
        if let Err(e) = file.write_all(chunk) {
            self.abandon();
            return Err(e.into());
        }
        self.digest.update(chunk);
        self.received = received;
        Ok(())
    }

    /// Checks the whole file against the sender's SHA-256 and, if it
    /// matches, gives it its final name; returns where it is.
    pub fn finish(mut self, sha256: &[u8; 32]) -> Result<PathBuf, IncomingError> {
        if self.received != self.announced {
            let (received, announced) = (self.received, self.announced);
            self.abandon();
            return Err(IncomingError::Short {
                received,
                announced,
            });
        }
        let digest = std::mem::replace(&mut self.digest, Context::new(&SHA256)).finish();
        if digest.as_ref() != sha256 {
            self.abandon();
            return Err(IncomingError::Damaged);
        }
        let kept = (|| {
            let file = self
                .file
                .take()
                .ok_or_else(|| io::Error::other("no file"))?;
            file.sync_all()?;
            drop(file);
            // Reserve the final name (never taking one in use), then move
            // the checked file onto the reservation.
            let (path, reserved) = create_unique(&self.dir, &self.name)?;
            drop(reserved);
            fs::rename(&self.part, &path)?;
            Ok::<_, io::Error>(path)
        })();
        match kept {
            Ok(path) => Ok(path),
            Err(e) => {
                self.abandon();
                Err(e.into())
            }
        }
    }

    /// Gives the transfer up: the partial file is deleted.
    pub fn abandon(&mut self) {
        if self.file.take().is_some() || self.part.exists() {
            let _ = fs::remove_file(&self.part);
        }
    }
}

impl Drop for Incoming {
    /// A transfer dropped unfinished (cancelled, connection lost) leaves
    /// no partial file behind.
    fn drop(&mut self) {
        if self.file.is_some() {
            self.abandon();
        }
    }
}

/// The SHA-256 of `bytes`, as a sender announces it.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hubchat-incoming-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_that_matches_its_hash_appears_under_its_name() {
        let dir = folder("ok");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut incoming = Incoming::start(&dir, "photo.png", data.len() as u64).unwrap();
        for chunk in data.chunks(16 * 1024) {
            incoming.write(chunk).unwrap();
        }
        assert_eq!(names_in(&dir), ["photo.png.part"], "partial until checked");
        let path = incoming.finish(&sha256(&data)).unwrap();
        assert_eq!(path, dir.join("photo.png"));
        assert_eq!(fs::read(&path).unwrap(), data);
        assert_eq!(names_in(&dir), ["photo.png"]);
        // A second one with the same name does not replace the first.
        let mut again = Incoming::start(&dir, "photo.png", 3).unwrap();
        again.write(b"new").unwrap();
        let second = again.finish(&sha256(b"new")).unwrap();
        assert_eq!(second, dir.join("photo (2).png"));
        assert_eq!(fs::read(&path).unwrap(), data);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_file_is_deleted_and_said_so() {
        let dir = folder("damaged");
        let mut incoming = Incoming::start(&dir, "report.pdf", 5).unwrap();
        incoming.write(b"hellp").unwrap();
        let err = incoming.finish(&sha256(b"hello")).unwrap_err();
        assert!(matches!(err, IncomingError::Damaged));
        assert!(err.to_string().contains("damaged"), "{err}");
        assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn too_many_or_too_few_bytes_are_refused_and_leave_nothing() {
        let dir = folder("sizes");
        let mut long = Incoming::start(&dir, "a.bin", 4).unwrap();
        long.write(b"abc").unwrap();
        assert!(matches!(
            long.write(b"de"),
            Err(IncomingError::TooLong { announced: 4 })
        ));
        let mut short = Incoming::start(&dir, "b.bin", 10).unwrap();
        short.write(b"abc").unwrap();
        let err = short.finish(&sha256(b"abc")).unwrap_err();
        assert!(err.to_string().contains("only 3 of 10 bytes"), "{err}");
        assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_transfer_given_up_leaves_no_partial_file() {
        let dir = folder("dropped");
        {
            let mut incoming = Incoming::start(&dir, "movie.mkv", 1_000).unwrap();
            incoming.write(&[7u8; 100]).unwrap();
            assert_eq!(incoming.received(), 100);
        }
        assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
        let _ = fs::remove_dir_all(&dir);
    }
}
