//! How fast one client may send messages: token buckets that allow a burst,
//! then a steady rate, in messages and in bytes of text.
//!
//! The server does not refuse a client that sends too fast; it reads from it
//! more slowly. A connection's reader asks its [`Pacer`] how long to wait
//! before relaying each message and sleeps that long without reading, so the
//! sender's own socket buffers fill and its writes block: the flood stops at
//! its source (as ngIRCd's penalty time does), nothing it sent is lost, and
//! its victim only receives what it can be expected to read. Without this, a
//! client sending 193,000 small messages a second to one reading client got
//! that reader dropped by the slow-reader rule within 4 s.

use std::time::{Duration, Instant};

/// How fast one client may send messages, on average and in a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MessageRate {
    /// Messages a second, sustained.
    pub per_second: f64,
    /// Messages that may come at once after a quiet spell.
    pub burst: f64,
    /// Bytes of message text a second, sustained.
    pub bytes_per_second: f64,
    /// Bytes of message text that may come at once after a quiet spell.
    pub bytes_burst: f64,
}

impl MessageRate {
    /// 20 messages a second with bursts of 50, and 128 KiB of text a second
    /// with bursts of 1 MiB: far more than anyone types or pastes, far less
    /// than a reading client on a LAN can take.
    pub const DEFAULT: MessageRate = MessageRate {
        per_second: 20.0,
        burst: 50.0,
        bytes_per_second: 128.0 * 1024.0,
        bytes_burst: 1024.0 * 1024.0,
    };

    /// The default shape scaled to `per_second` messages a second: bursts of
    /// two and a half seconds' worth, the byte budget unchanged. `None` for
    /// 0, which means no limit.
    pub fn messages_per_second(per_second: u32) -> Option<MessageRate> {
        (per_second > 0).then(|| MessageRate {
            per_second: f64::from(per_second),
            burst: (f64::from(per_second) * 2.5).max(1.0),
            ..MessageRate::DEFAULT
        })
    }
}

impl Default for MessageRate {
    fn default() -> Self {
        MessageRate::DEFAULT
    }
}

/// One token bucket. It may go into debt: a message costing more than is
/// left is let through after the wait that pays the debt back, so a message
/// larger than the burst is slowed, never refused.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, capacity: f64, now: Instant) -> Self {
        Bucket {
            rate: rate.max(f64::MIN_POSITIVE),
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes `cost` tokens and says how long until the bucket is out of
    /// debt again (zero if it never went into debt).
    fn take(&mut self, now: Instant, cost: f64) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity) - cost;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// One sender's buckets: messages and bytes.
#[derive(Debug, Clone)]
pub struct Pacer {
    messages: Bucket,
    bytes: Bucket,
}

impl Pacer {
    pub fn new(rate: MessageRate, now: Instant) -> Self {
        Pacer {
            messages: Bucket::new(rate.per_second, rate.burst, now),
            bytes: Bucket::new(rate.bytes_per_second, rate.bytes_burst, now),
        }
    }

    /// Counts a message of `bytes` bytes of text sent at `now`, and says how
    /// long to wait before relaying it so the sender keeps to its rate.
    pub fn delay(&mut self, now: Instant, bytes: usize) -> Duration {
        self.delay_why(now, bytes).0
    }

    /// [`Pacer::delay`], and which of the two rates asks for the wait.
    pub fn delay_why(&mut self, now: Instant, bytes: usize) -> (Duration, Over) {
        let by_count = self.messages.take(now, 1.0);
        let by_size = self.bytes.take(now, bytes as f64);
        if by_size > by_count {
            (by_size, Over::Bytes)
        } else {
            (by_count, Over::Messages)
        }
    }
}

/// Which rate a sender went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// Messages a second.
    Messages,
    /// Bytes of text a second.
    Bytes,
}

impl MessageRate {
    /// The limit a sender over `over` was held to, for the log.
    pub fn limit(&self, over: Over) -> crate::server::limited::Limit {
        use crate::server::limited::Limit;
        match over {
            Over::Messages => Limit::MessageRate {
                per_second: self.per_second.round() as u64,
            },
            Over::Bytes => Limit::ByteRate {
                kib_per_second: (self.bytes_per_second / 1024.0).round() as u64,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: f64, burst: f64) -> MessageRate {
        MessageRate {
            per_second,
            burst,
            bytes_per_second: 1e12,
            bytes_burst: 1e12,
        }
    }

    #[test]
    fn a_burst_passes_at_once_then_messages_are_spaced_at_the_rate() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(rate(10.0, 3.0), t0);
        for _ in 0..3 {
            assert_eq!(pacer.delay(t0, 5), Duration::ZERO);
        }
        let wait = pacer.delay(t0, 5);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // Having waited, the next one waits one interval more.
        let t1 = t0 + wait;
        let wait = pacer.delay(t1, 5);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn a_quiet_spell_refills_the_burst_but_no_further() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(rate(10.0, 3.0), t0);
        for _ in 0..3 {
            pacer.delay(t0, 1);
        }
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(pacer.delay(later, 1), Duration::ZERO);
        }
        assert!(pacer.delay(later, 1) > Duration::ZERO);
    }

    #[test]
    fn large_messages_are_slowed_by_the_byte_budget() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(
            MessageRate {
                bytes_per_second: 1000.0,
                bytes_burst: 2000.0,
                ..rate(1000.0, 1000.0)
            },
            t0,
        );
        assert_eq!(pacer.delay(t0, 2000), Duration::ZERO);
        let wait = pacer.delay(t0, 500);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn the_wait_names_the_rate_that_asks_for_it() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(
            MessageRate {
                bytes_per_second: 1000.0,
                bytes_burst: 1000.0,
                ..rate(10.0, 1.0)
            },
            t0,
        );
        pacer.delay_why(t0, 1);
        assert_eq!(pacer.delay_why(t0, 1).1, Over::Messages);
        assert_eq!(
            pacer.delay_why(t0 + Duration::from_secs(1), 5000).1,
            Over::Bytes
        );
    }

    #[test]
    fn zero_messages_a_second_means_no_limit() {
        assert_eq!(MessageRate::messages_per_second(0), None);
        let r = MessageRate::messages_per_second(8).unwrap();
        assert_eq!((r.per_second, r.burst), (8.0, 20.0));
    }
}
