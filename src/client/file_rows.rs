//! Files in a conversation as the window shows them: one row per transfer,
//! with what it is, how far it got and what can be done with it. Plain
//! data; the window draws it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::files::TransferKey;
use crate::common::file_packet::describe_size;
use crate::common::thumbnail::Thumbnail;

/// How far back the speed is measured: long enough to smooth a bursty
/// disk, short enough to follow a change.
const SPEED_SPAN: Duration = Duration::from_secs(3);

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Offered to us: Accept or Decline.
    Offered,
    /// Our offer, waiting for an answer.
    Waiting,
    /// Bytes are moving: `done` of the size.
    Moving { done: u64 },
    /// Arrived and checked: saved at `path` (ours), or saved by the
    /// receiver (`None`).
    Saved { path: Option<PathBuf> },
    /// Declined, cancelled or failed, with the sentence.
    Ended { message: String },
}

impl FileState {
    /// Whether the transfer is over, one way or the other.
    pub fn is_over(&self) -> bool {
        matches!(self, FileState::Saved { .. } | FileState::Ended { .. })
    }
}

/// One transfer in a conversation.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub key: TransferKey,
    /// The file's name (as saved, for one we receive).
    pub name: String,
    pub size: u64,
    /// For a picture offered to us.
    pub thumbnail: Option<Arc<Thumbnail>>,
    /// The other side: the sender of a file offered to us, the receiver
    /// of ours ("everyone" for an offer to the room nobody took yet).
    pub peer_name: String,
    pub state: FileState,
    speed: Speed,
}

impl PartialEq for FileRow {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.state == other.state && self.name == other.name
    }
}

impl Eq for FileRow {}

impl FileRow {
    pub fn new(key: TransferKey, name: String, size: u64, peer_name: String) -> Self {
        let state = if key.outgoing {
            FileState::Waiting
        } else {
            FileState::Offered
        };
        FileRow {
            key,
            name,
            size,
            thumbnail: None,
            peer_name,
            state,
            speed: Speed::default(),
        }
    }

    /// Records progress.
    pub fn moved(&mut self, done: u64, now: Instant) {
        self.speed.sample(now, done);
        self.state = FileState::Moving { done };
    }

    /// What the row says of the file: "photo.png, 2.4 MB, from alice".
    pub fn title(&self) -> String {
        let size = describe_size(self.size);
        if self.key.outgoing {
            format!("{}, {size}, to {}", self.name, self.peer_name)
        } else {
            format!("{}, {size}, from {}", self.name, self.peer_name)
        }
    }

    /// Where it stands, in words: "1.2 MB of 2.4 MB, 5.1 MB/s, 1 s left".
    pub fn status(&self, now: Instant) -> String {
        match &self.state {
            FileState::Offered => "Offered to you.".into(),
            FileState::Waiting if self.peer_name == "everyone" => {
                "Offered to everyone here who can receive files.".into()
            }
            FileState::Waiting => format!("Waiting for {} to accept.", self.peer_name),
            FileState::Moving { done } => {
                let mut text = format!("{} of {}", describe_size(*done), describe_size(self.size));
                if let Some(rate) = self.speed.per_second(now) {
                    text.push_str(&format!(", {}/s", describe_size(rate as u64)));
                    if rate > 0.0 && *done < self.size {
                        let left = (self.size - done) as f64 / rate;
                        text.push_str(&format!(", {} left", describe_time(left)));
                    }
                }
                text
            }
            FileState::Saved { path: Some(path) } => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                match path.parent().and_then(|p| p.file_name()) {
                    Some(folder) => format!("Saved as {name} in {}.", folder.to_string_lossy()),
                    None => format!("Saved as {name}."),
                }
            }
            FileState::Saved { path: None } => format!("{} has it.", self.peer_name),
            FileState::Ended { message } => message.clone(),
        }
    }

    /// How far along, from 0 to 1.
    pub fn fraction(&self) -> f64 {
        match &self.state {
            FileState::Moving { done } if self.size > 0 => *done as f64 / self.size as f64,
            FileState::Moving { .. } | FileState::Saved { .. } => 1.0,
            _ => 0.0,
        }
    }
}

/// A rough duration: "8 s", "3 min", "2 h 5 min".
pub fn describe_time(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s < 60 {
        format!("{} s", s.max(1))
    } else if s < 3600 {
        format!("{} min", s.div_ceil(60))
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

/// Bytes done over the last few seconds.
#[derive(Debug, Clone, Default)]
struct Speed {
    samples: VecDeque<(Instant, u64)>,
}

impl Speed {
    fn sample(&mut self, at: Instant, done: u64) {
        self.samples.push_back((at, done));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > SPEED_SPAN)
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
    }

    /// Bytes a second, once there are two samples apart in time.
    fn per_second(&self, _now: Instant) -> Option<f64> {
        let (t0, b0) = self.samples.front()?;
        let (t1, b1) = self.samples.back()?;
        let span = t1.duration_since(*t0).as_secs_f64();
        (span > 0.0).then(|| b1.saturating_sub(*b0) as f64 / span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(outgoing: bool) -> TransferKey {
        TransferKey {
            transfer: "t".into(),
            peer: "client2".into(),
            outgoing,
        }
    }

    #[test]
    fn a_row_says_what_moves_how_fast_and_how_long_is_left() {
        let mut row = FileRow::new(key(false), "film.mkv".into(), 100 << 20, "alice".into());
        assert_eq!(row.title(), "film.mkv, 100 MB, from alice");
        assert_eq!(row.status(Instant::now()), "Offered to you.");
        let t0 = Instant::now();
        row.moved(0, t0);
        row.moved(20 << 20, t0 + Duration::from_secs(2));
        assert_eq!(
            row.status(t0 + Duration::from_secs(2)),
            "20 MB of 100 MB, 10 MB/s, 8 s left"
        );
        assert!((row.fraction() - 0.2).abs() < 1e-9);
    }

    #[test]
    fn times_read_as_people_say_them() {
        assert_eq!(describe_time(0.2), "1 s");
        assert_eq!(describe_time(59.0), "59 s");
        assert_eq!(describe_time(61.0), "2 min");
        assert_eq!(describe_time(7500.0), "2 h 5 min");
    }

    #[test]
    fn a_sent_file_names_its_receiver() {
        let mut row = FileRow::new(key(true), "a.txt".into(), 10, "bob".into());
        assert_eq!(row.status(Instant::now()), "Waiting for bob to accept.");
        row.state = FileState::Saved { path: None };
        assert_eq!(row.status(Instant::now()), "bob has it.");
        let mut got = FileRow::new(key(false), "a.txt".into(), 10, "bob".into());
        got.state = FileState::Saved {
            path: Some(PathBuf::from("/home/ann/Downloads/a (2).txt")),
        };
        assert_eq!(
            got.status(Instant::now()),
            "Saved as a (2).txt in Downloads."
        );
        assert!(row.state.is_over());
    }
}
