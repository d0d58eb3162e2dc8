//! Reconnecting by itself: which endings are worth another try, how long to
//! wait before each (1, 2, 4, 8 and 16 seconds, then every 30), and what the
//! window says meanwhile.
//!
//! Plain logic with no clock of its own: every call that depends on the
//! time is given `now`, so tests run the schedule without waiting. The
//! [`Controller`](super::controller::Controller) owns one [`Reconnect`] and
//! starts the tries; the window only draws what it says, and wakes while it
//! counts down, at the instants [`Reconnect::next_tick`] names. Connected,
//! or offline because the user chose so, nothing is scheduled: an idle
//! client runs no timer.
//!
//! Tried again: a connection that broke (the server stopped or crashed, the
//! network failed) or that the server ended with SERVER CLOSE (it is
//! stopping), and the program's own connect at start when the server is not
//! up yet. Not tried again: being kicked or banned by the server's owner
//! (coming back would defy them), and a try the server refused for a reason
//! only the user can settle (a name taken, a password, a changed key): the
//! loop stops and the window says why, as for any failed connect. The user
//! disconnecting, cancelling or connecting elsewhere stops it too.

use std::time::{Duration, Instant};

use crate::client::session::ConnectError;
use crate::common::packet::ErrorCode;

/// The wait before the first try after a loss.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest wait between tries: a server down for long is still found
/// within half a minute of its return.
pub const LONGEST_DELAY: Duration = Duration::from_secs(30);

/// The wait before the next try after `failed` tries failed: 1 s, doubled
/// per failure, at most 30 s.
pub fn delay(failed: u32) -> Duration {
    (FIRST_DELAY * (1 << failed.min(5))).min(LONGEST_DELAY)
}

/// How a session ended without the user asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// The connection broke, or the server closed it: worth another try.
    Dropped,
    /// The server's owner kicked or banned us: not tried again.
    Removed,
}

impl Loss {
    /// The ending after the last refusal the server sent on the session,
    /// if any.
    pub fn after(refusal: Option<ErrorCode>) -> Loss {
        match refusal {
            Some(ErrorCode::Kicked | ErrorCode::Banned) => Loss::Removed,
            _ => Loss::Dropped,
        }
    }
}

/// Whether a try that failed with `e` is followed by another. Nothing
/// answering, a name that does not resolve (the network may be coming
/// back), a server full or slow: yes. A refusal the user must settle (the
/// name, the password, a changed key, a ban, the server's sentence when it
/// turns a connection away at accept): no.
pub fn retries(e: &ConnectError) -> bool {
    match e {
        ConnectError::UnknownHost { .. }
        | ConnectError::Refused { .. }
        | ConnectError::TimedOut { .. }
        | ConnectError::NoAnswer { .. }
        | ConnectError::Failed { .. } => true,
        ConnectError::Rejected { code, .. } => matches!(
            code,
            Some(ErrorCode::ServerFull | ErrorCode::HandshakeTimeout)
        ),
        ConnectError::KeyChanged { .. } | ConnectError::NotEncrypted { .. } => false,
    }
}

/// Why the client is reconnecting: the banner's first line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Why {
    /// A joined session was lost.
    Lost(String),
    /// The program's own connect at start failed.
    NotJoined(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum State {
    /// Nothing to do: connected, or offline as the user chose.
    #[default]
    Off,
    /// The program's own connect at start is under way; if it fails for a
    /// reason worth another try, the loop begins.
    Starting,
    /// Not connected, without the user asking: waiting until `at` to try
    /// again, or trying now (`at` is `None`).
    On {
        why: Why,
        /// Tries that failed since the loss.
        failed: u32,
        at: Option<Instant>,
    },
}

/// The reconnect loop's state. See the module's documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconnect {
    state: State,
}

impl Reconnect {
    /// A joined session ended without the user asking. Returns the wait
    /// before the first try, or `None` if this loss is not tried again.
    pub fn lost(&mut self, reason: &str, loss: Loss, now: Instant) -> Option<Duration> {
        if loss == Loss::Removed {
            self.state = State::Off;
            return None;
        }
        self.wait(Why::Lost(reason.to_string()), 0, now)
    }

    /// The attempt about to fail or join is the program's own, at start,
    /// not one the user asked for: a failure worth another try begins the
    /// loop instead of only being reported.
    pub fn starting(&mut self) {
        self.state = State::Starting;
    }

    /// A try (or the connect at start) failed with `e`. Returns the wait
    /// before the next, or `None` when the loop stops (or never ran): then
    /// the failure is the user's to see, as any other.
    pub fn failed(&mut self, e: &ConnectError, now: Instant) -> Option<Duration> {
        let (why, failed) = match std::mem::take(&mut self.state) {
            State::On { why, failed, .. } => (why, failed.saturating_add(1)),
            State::Starting => (Why::NotJoined(e.to_string()), 0),
            State::Off => return None,
        };
        if !retries(e) {
            return None;
        }
        self.wait(why, failed, now)
    }

    fn wait(&mut self, why: Why, failed: u32, now: Instant) -> Option<Duration> {
        let wait = delay(failed);
        self.state = State::On {
            why,
            failed,
            at: Some(now + wait),
        };
        Some(wait)
    }

    /// Joined: the loop ends, and the next loss waits 1 s again.
    pub fn joined(&mut self) {
        self.state = State::Off;
    }

    /// The user disconnected, cancelled or connected elsewhere.
    pub fn stop(&mut self) {
        self.state = State::Off;
    }

    /// Whether the client is reconnecting by itself (waiting, or trying).
    pub fn active(&self) -> bool {
        matches!(self.state, State::On { .. })
    }

    /// When the next try is due, while waiting for it.
    pub fn retry_at(&self) -> Option<Instant> {
        match self.state {
            State::On { at, .. } => at,
            _ => None,
        }
    }

    /// Whether a try is under way.
    pub fn trying(&self) -> bool {
        matches!(self.state, State::On { at: None, .. })
    }

    /// Whether the next try is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.retry_at().is_some_and(|at| now >= at)
    }

    /// Starts a try, if waiting for one (due or not: the user may press
    /// "Reconnect now"). Returns whether a try is to be made.
    pub fn begin_try(&mut self) -> bool {
        match &mut self.state {
            State::On { at, .. } if at.is_some() => {
                *at = None;
                true
            }
            _ => false,
        }
    }

    /// Why there is no connection, as the status says it: the loss's
    /// reason, or why the connect at start failed.
    pub fn reason(&self) -> Option<&str> {
        match &self.state {
            State::On {
                why: Why::Lost(reason) | Why::NotJoined(reason),
                ..
            } => Some(reason),
            _ => None,
        }
    }

    /// Whole seconds left before the next try, rounded up (what the
    /// countdown shows), while waiting.
    pub fn seconds_left(&self, now: Instant) -> Option<u64> {
        let left = self.retry_at()?.saturating_duration_since(now);
        Some(left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }

    /// The banner while reconnecting: why, and the countdown or that a try
    /// is under way.
    pub fn banner(&self, now: Instant) -> Option<String> {
        let State::On { why, .. } = &self.state else {
            return None;
        };
        let (first, again) = match why {
            Why::Lost(reason) => (format!("Connection lost: {reason}"), "Reconnecting"),
            Why::NotJoined(reason) => (format!("Could not connect: {reason}"), "Trying again"),
        };
        Some(match self.seconds_left(now) {
            Some(n) if n > 0 => format!("{first}\n{again} in {n} s..."),
            _ => format!("{first}\n{again}..."),
        })
    }

    /// How long until the countdown shows another number or the try is
    /// due, while waiting: the window's next wake-up. `None` when nothing
    /// is counted down (connected, offline, or a try under way).
    pub fn next_tick(&self, now: Instant) -> Option<Duration> {
        let left = self.retry_at()?.saturating_duration_since(now);
        let part = Duration::from_nanos(u64::from(left.subsec_nanos()));
        Some(if left.is_zero() {
            Duration::ZERO
        } else if part.is_zero() {
            Duration::from_secs(1)
        } else {
            part
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn nothing_listening() -> ConnectError {
        ConnectError::Refused {
            addr: "127.0.0.1:5050".into(),
        }
    }

    fn rejected(code: ErrorCode) -> ConnectError {
        ConnectError::Rejected {
            code: Some(code),
            message: "no".into(),
        }
    }

    /// Runs `n` failed tries, each made as soon as it is due; returns the
    /// waits that followed them.
    fn fail_tries(r: &mut Reconnect, mut now: Instant, n: usize) -> (Vec<u64>, Instant) {
        let mut waits = Vec::new();
        for _ in 0..n {
            now = r.retry_at().expect("waiting");
            assert!(r.due(now));
            assert!(r.begin_try());
            let wait = r.failed(&nothing_listening(), now).expect("tried again");
            waits.push(wait.as_secs());
        }
        (waits, now)
    }

    #[test]
    fn the_waits_double_from_one_second_up_to_thirty() {
        let waits: Vec<u64> = (0..9).map(|n| delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30, 30]);
        assert_eq!(delay(u32::MAX), LONGEST_DELAY);
    }

    #[test]
    fn after_a_loss_the_tries_come_after_1_2_4_8_16_then_every_30_seconds() {
        let start = Instant::now();
        let mut r = Reconnect::default();
        assert_eq!(
            r.lost("The server closed the connection.", Loss::Dropped, start),
            Some(S)
        );
        assert_eq!(r.retry_at(), Some(start + S));
        assert!(r.active() && !r.trying());
        let (waits, _) = fail_tries(&mut r, start, 8);
        assert_eq!(waits, [2, 4, 8, 16, 30, 30, 30, 30]);
    }

    #[test]
    fn nothing_is_tried_before_it_is_due() {
        let now = Instant::now();
        let mut r = Reconnect::default();
        r.lost("gone", Loss::Dropped, now);
        assert!(!r.due(now));
        assert!(!r.due(now + S - Duration::from_millis(1)));
        assert!(r.due(now + S));
    }

    #[test]
    fn joining_again_resets_the_wait_to_one_second() {
        let now = Instant::now();
        let mut r = Reconnect::default();
        r.lost("gone", Loss::Dropped, now);
        let (_, now) = fail_tries(&mut r, now, 5);
        assert_eq!(r.retry_at(), Some(now + LONGEST_DELAY));
        assert!(r.begin_try());
        r.joined();
        assert!(!r.active());
        assert_eq!(r.retry_at(), None);
        assert_eq!(r.lost("gone again", Loss::Dropped, now), Some(S));
    }

    #[test]
    fn the_user_disconnecting_stops_the_loop() {
        let now = Instant::now();
        let mut r = Reconnect::default();
        r.lost("gone", Loss::Dropped, now);
        r.stop();
        assert!(!r.active());
        assert!(!r.due(now + LONGEST_DELAY));
        assert!(!r.begin_try());
        assert_eq!(r.next_tick(now), None, "no timer");
        assert_eq!(r.banner(now), None);
        // What the cancelled try reports later starts nothing.
        assert_eq!(r.failed(&nothing_listening(), now), None);
        assert!(!r.active());
    }

    #[test]
    fn a_kick_or_a_ban_is_not_tried_again() {
        for code in [ErrorCode::Kicked, ErrorCode::Banned] {
            let loss = Loss::after(Some(code));
            assert_eq!(loss, Loss::Removed);
            let mut r = Reconnect::default();
            assert_eq!(r.lost("The owner removed you.", loss, Instant::now()), None);
            assert!(!r.active());
        }
        // Other refusals on the way (too fast, too long) do not count.
        assert_eq!(Loss::after(Some(ErrorCode::RateLimited)), Loss::Dropped);
        assert_eq!(Loss::after(None), Loss::Dropped);
    }

    #[test]
    fn a_refusal_while_reconnecting_stops_the_loop() {
        let key = crate::common::tls::Fingerprint::of(b"key");
        let refusals = [
            rejected(ErrorCode::NameTaken),
            rejected(ErrorCode::NameOwned),
            rejected(ErrorCode::PasswordRequired),
            rejected(ErrorCode::PasswordWrong),
            rejected(ErrorCode::Banned),
            rejected(ErrorCode::EncryptionRequired),
            ConnectError::Rejected {
                code: None,
                message: "You are banned from this server.".into(),
            },
            ConnectError::KeyChanged {
                addr: "a".into(),
                pinned: key,
                offered: key,
            },
            ConnectError::NotEncrypted { addr: "a".into() },
        ];
        for e in refusals {
            let now = Instant::now();
            let mut r = Reconnect::default();
            r.lost("gone", Loss::Dropped, now);
            assert!(r.begin_try());
            assert_eq!(r.failed(&e, now), None, "{e:?}");
            assert!(!r.active(), "{e:?}");
        }
    }

    #[test]
    fn nothing_answering_a_full_server_or_a_name_not_found_is_tried_again() {
        let addr = || "10.0.0.5:5050".to_string();
        for e in [
            nothing_listening(),
            ConnectError::TimedOut { addr: addr() },
            ConnectError::NoAnswer { addr: addr() },
            ConnectError::UnknownHost { host: "hub".into() },
            ConnectError::Failed {
                message: "The server closed the connection before letting us in.".into(),
            },
            rejected(ErrorCode::ServerFull),
        ] {
            assert!(retries(&e), "{e:?}");
        }
    }

    #[test]
    fn a_failure_with_no_loop_running_starts_nothing() {
        let mut r = Reconnect::default();
        assert_eq!(r.failed(&nothing_listening(), Instant::now()), None);
        assert!(!r.active());
    }

    #[test]
    fn connecting_at_start_keeps_trying_while_the_server_is_not_up() {
        let now = Instant::now();
        let mut r = Reconnect::default();
        r.starting();
        assert!(!r.active(), "the first try is an ordinary connect");
        assert_eq!(r.failed(&nothing_listening(), now), Some(S));
        assert!(r.active());
        let banner = r.banner(now).unwrap();
        assert!(
            banner.starts_with("Could not connect: Nothing is listening at 127.0.0.1:5050.")
                && banner.ends_with("\nTrying again in 1 s..."),
            "{banner}"
        );
        // A refusal at start is only reported.
        let mut r = Reconnect::default();
        r.starting();
        assert_eq!(r.failed(&rejected(ErrorCode::NameTaken), now), None);
        assert!(!r.active());
        // Joined at start: nothing more to do.
        r.starting();
        r.joined();
        assert_eq!(r.failed(&nothing_listening(), now), None);
    }

    #[test]
    fn reconnect_now_tries_at_once_and_a_failure_waits_the_next_step() {
        let now = Instant::now();
        let mut r = Reconnect::default();
        r.lost("gone", Loss::Dropped, now);
        let (_, now) = fail_tries(&mut r, now, 2);
        assert_eq!(r.retry_at(), Some(now + 4 * S));
        assert!(r.begin_try(), "before it is due");
        assert!(r.trying());
        assert!(!r.begin_try(), "one try at a time");
        assert_eq!(r.failed(&nothing_listening(), now), Some(8 * S));
    }

    #[test]
    fn the_banner_counts_down_in_whole_seconds_and_says_when_it_tries() {
        let now = Instant::now();
        let mut r = Reconnect::default();
        r.lost("Server is closing...", Loss::Dropped, now);
        let (_, now) = fail_tries(&mut r, now, 4);
        assert_eq!(r.retry_at(), Some(now + 16 * S));
        let text = |at: Instant| r.banner(at).unwrap();
        assert_eq!(
            text(now),
            "Connection lost: Server is closing...\nReconnecting in 16 s..."
        );
        assert_eq!(
            text(now + Duration::from_millis(3_500)),
            "Connection lost: Server is closing...\nReconnecting in 13 s..."
        );
        assert_eq!(r.seconds_left(now + Duration::from_millis(15_999)), Some(1));
        assert_eq!(
            text(now + 16 * S),
            "Connection lost: Server is closing...\nReconnecting..."
        );
        r.begin_try();
        assert_eq!(
            r.banner(now),
            Some("Connection lost: Server is closing...\nReconnecting...".into())
        );
        assert_eq!(r.reason(), Some("Server is closing..."));
    }

    #[test]
    fn the_window_wakes_when_the_count_changes_and_not_at_all_otherwise() {
        let now = Instant::now();
        let mut r = Reconnect::default();
        assert_eq!(r.next_tick(now), None, "offline: no timer");
        r.lost("gone", Loss::Dropped, now);
        let (_, now) = fail_tries(&mut r, now, 2);
        // 4 s to wait: the count changes every whole second.
        assert_eq!(r.next_tick(now), Some(S));
        assert_eq!(
            r.next_tick(now + Duration::from_millis(250)),
            Some(Duration::from_millis(750))
        );
        assert_eq!(
            r.next_tick(now + Duration::from_millis(3_900)),
            Some(Duration::from_millis(100))
        );
        assert_eq!(r.next_tick(now + 5 * S), Some(Duration::ZERO), "overdue");
        r.begin_try();
        assert_eq!(r.next_tick(now), None, "trying: no timer");
        r.joined();
        assert_eq!(r.next_tick(now), None, "connected: no timer");
    }
}
