//! Stamped messages and the counting of what arrived.
//!
//! Every load message carries `sender`, `seq` and the send time in its text,
//! so the receiver alone can tell one-way latency (sender and receiver share
//! this process's clock), and whether a message arrived twice or a gap opened
//! in a sender's sequence. TCP and the hub keep each sender's messages in
//! order, so a sequence number lower than expected is a duplicate and a
//! higher one means messages were lost in between.

use std::time::Instant;

/// The text of a stamped message, padded with `x` to at least `size` bytes.
/// It ends in a newline, as the original client's messages do.
pub fn text(sender: usize, seq: u64, since_start_ns: u64, size: usize) -> String {
    let mut t = format!("{sender} {seq} {since_start_ns} ");
    while t.len() + 1 < size {
        t.push('x');
    }
    t.push('\n');
    t
}

/// The (sender, seq, send time) of a stamped message, if it is one.
pub fn parse(text: &str) -> Option<(usize, u64, u64)> {
    let mut parts = text.split(' ');
    let sender = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((sender, seq, sent))
}

/// Nanoseconds since the run's start.
pub fn since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// What one receiver saw from its senders.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Next expected sequence number per sender (by sender index).
    next: std::collections::HashMap<usize, u64>,
    pub delivered: u64,
    pub duplicates: u64,
    /// Messages known lost because a later one arrived first.
    pub gaps: u64,
    /// One-way latencies in nanoseconds.
    pub latencies: Vec<u64>,
    /// Texts that were not load stamps.
    pub foreign: u64,
}

impl Tally {
    /// Counts one received message.
    pub fn record(&mut self, text: &str, now_ns: u64) {
        let Some((sender, seq, sent)) = parse(text) else {
            self.foreign += 1;
            return;
        };
        let next = self.next.entry(sender).or_insert(0);
        if seq < *next {
            self.duplicates += 1;
            return;
        }
        self.gaps += seq - *next;
        *next = seq + 1;
        self.delivered += 1;
        self.latencies.push(now_ns.saturating_sub(sent));
    }

    /// Adds another receiver's tally into this one.
    pub fn merge(&mut self, other: Tally) {
        self.delivered += other.delivered;
        self.duplicates += other.duplicates;
        self.gaps += other.gaps;
        self.foreign += other.foreign;
        self.latencies.extend(other.latencies);
    }
}

/// The `p`-th percentile (0-100) of sorted values, nearest rank.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_survives_the_trip_and_pads_to_size() {
        let t = text(7, 42, 123_456, 64);
        assert_eq!(t.len(), 64);
        assert!(t.ends_with("x\n"));
        assert_eq!(parse(&t), Some((7, 42, 123_456)));
        assert_eq!(text(1, 2, 3, 0), "1 2 3 \n");
    }

    #[test]
    fn in_order_messages_are_delivered_with_their_latency() {
        let mut t = Tally::default();
        t.record(&text(0, 0, 100, 0), 250);
        t.record(&text(0, 1, 200, 0), 260);
        t.record(&text(1, 0, 100, 0), 300);
        assert_eq!((t.delivered, t.duplicates, t.gaps), (3, 0, 0));
        assert_eq!(t.latencies, [150, 60, 200]);
    }

    #[test]
    fn a_repeated_sequence_number_is_a_duplicate_and_a_jump_is_a_loss() {
        let mut t = Tally::default();
        for seq in [0, 1, 1, 4, 2, 5] {
            t.record(&text(3, seq, 0, 0), 0);
        }
        assert_eq!(t.delivered, 4, "0, 1, 4, 5");
        assert_eq!(t.duplicates, 2, "the second 1, and 2 after 4");
        assert_eq!(t.gaps, 2, "2 and 3 went missing before 4");
    }

    #[test]
    fn text_that_is_not_a_stamp_is_counted_apart() {
        let mut t = Tally::default();
        t.record("hello there\n", 0);
        assert_eq!((t.delivered, t.foreign), (0, 1));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[], 99.0), 0);
    }
}
