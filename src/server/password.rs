//! The server password as it is kept on disk: never the password itself,
//! only a salted PBKDF2-HMAC-SHA256 hash of it, in one line of text:
//!
//! ```text
//! pbkdf2-sha256$<iterations>$<salt>$<hash>
//! ```
//!
//! with the salt (16 random bytes) and the 32-byte hash in base64 without
//! padding (the alphabet has no `$`). Someone who reads the settings folder
//! learns neither the password nor, without a slow search per guess, any
//! password that matches. The iteration count travels with the hash, so a
//! later version can raise it and still check passwords kept by this one.
//!
//! PBKDF2 rather than a memory-hard function (Argon2, scrypt): it comes
//! from `ring`, the crypto rustls uses anyway, so it adds no code; and the
//! password guards a chat room on a LAN, where the guesses limit
//! ([`crate::server::guesses`]) matters more than the hash's cost.

use std::fmt;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

/// The label that starts a kept password, naming the scheme.
const SCHEME: &str = "pbkdf2-sha256";

/// PBKDF2 rounds for a new hash. Measured on the 2-core build machine:
/// about 14 ms of CPU time per check (ring's SHA-256 is assembly, so the
/// figure is the same in debug and release builds; run `cargo test --lib
/// one_check_costs -- --ignored --nocapture`). Slow enough that a copied
/// settings file yields only some 70 guesses a second per core; fast
/// enough that a right password costs a joining client nothing it
/// notices, and a guesser held to 5 tries a minute costs the server
/// nothing. (OWASP's 600,000 would cost 170 ms of CPU per join here.)
pub const ITERATIONS: u32 = 50_000;

/// The most rounds accepted from a kept hash: a damaged or hostile settings
/// file cannot make one check take minutes.
const MAX_ITERATIONS: u32 = 10_000_000;

/// Salt bytes in a new hash: 16, as NIST SP 800-132 asks at least.
const SALT_LEN: usize = 16;

/// Bytes of hash: SHA-256's output; more would only slow the server, not a
/// guesser.
const HASH_LEN: usize = 32;

static ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;

/// Why a password could not be hashed, or a kept hash cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordError {
    /// The system's random number generator failed (no salt can be made).
    NoRandomness,
    /// The kept text is not a hash this program made; `detail` says how.
    Damaged { detail: String },
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordError::NoRandomness => write!(
                f,
                "The password could not be stored: this computer gave no random numbers \
                 to protect it with. Try again."
            ),
            PasswordError::Damaged { detail } => write!(
                f,
                "The stored server password is damaged ({detail}). Set the password again."
            ),
        }
    }
}

impl std::error::Error for PasswordError {}

/// A kept password, checked and ready: the server parses its setting once
/// at start (refusing to start on a damaged one) and checks every try
/// against this.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPassword {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl fmt::Debug for StoredPassword {
    /// Shows the scheme and cost only: a hash in a log is a hash to attack.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredPassword({SCHEME}, {} rounds)", self.iterations)
    }
}

impl StoredPassword {
    /// Whether `plain` is the password. Compares in constant time (ring's
    /// own check), so the time taken says nothing about how close a guess
    /// was.
    pub fn verify(&self, plain: &str) -> bool {
        pbkdf2::verify(
            ALGORITHM,
            self.iterations,
            &self.salt,
            plain.as_bytes(),
            &self.hash,
        )
        .is_ok()
    }
}

/// Hashes `plain` with a new random salt, for keeping in the settings.
pub fn hash(plain: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::NoRandomness)?;
    Ok(hash_with(plain, &salt, ITERATIONS))
}

fn hash_with(plain: &str, salt: &[u8], iterations: u32) -> String {
    let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(ALGORITHM, rounds, salt, plain.as_bytes(), &mut out);
    format!(
        "{SCHEME}${rounds}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// Reads a kept hash, saying what is wrong with a damaged one.
pub fn parse(stored: &str) -> Result<StoredPassword, PasswordError> {
    let damaged = |detail: &str| PasswordError::Damaged {
        detail: detail.to_string(),
    };
    let mut parts = stored.trim().split('$');
    let (Some(scheme), Some(rounds), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(damaged("it does not have the four parts of a hash"));
    };
    if scheme != SCHEME {
        return Err(damaged(&format!("unknown scheme \"{scheme}\"")));
    }
    let iterations = rounds
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_ITERATIONS)
        .and_then(NonZeroU32::new)
        .ok_or_else(|| damaged("its number of rounds is not between 1 and 10,000,000"))?;
    let salt = STANDARD_NO_PAD
        .decode(salt)
        .ok()
        .filter(|s| (8..=64).contains(&s.len()))
        .ok_or_else(|| damaged("its salt is not 8 to 64 bytes of base64"))?;
    let hash = STANDARD_NO_PAD
        .decode(hash)
        .ok()
        .filter(|h| h.len() == HASH_LEN)
        .ok_or_else(|| damaged("its hash is not 32 bytes of base64"))?;
    Ok(StoredPassword {
        iterations,
        salt,
        hash,
    })
}

/// Whether `plain` matches the kept hash `stored`; a damaged one matches
/// nothing. The server should [`parse`] its setting once at start instead,
/// so a damaged one is reported rather than silently locking everyone out.
pub fn verify(stored: &str, plain: &str) -> bool {
    parse(stored).is_ok_and(|kept| kept.verify(plain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_right_password_matches_and_others_do_not() {
        let kept = hash("correct horse").unwrap();
        assert!(verify(&kept, "correct horse"));
        for wrong in ["", "correct horse ", "Correct horse", "correct hors"] {
            assert!(!verify(&kept, wrong), "{wrong:?}");
        }
    }

    #[test]
    fn a_kept_password_is_one_line_without_the_password() {
        let kept = hash("hunter2").unwrap();
        assert!(kept.starts_with("pbkdf2-sha256$50000$"), "{kept}");
        assert!(!kept.contains("hunter2"));
        assert!(!kept.contains('\n'));
        assert_eq!(kept.split('$').count(), 4);
    }

    #[test]
    fn each_hash_has_its_own_salt() {
        let (a, b) = (hash("same").unwrap(), hash("same").unwrap());
        assert_ne!(a, b);
        assert!(verify(&a, "same") && verify(&b, "same"));
    }

    #[test]
    fn the_hash_is_pbkdf2_hmac_sha256() {
        // RFC 7914 section 11: "passwd", salt "salt", 1 round; the first
        // 32 bytes of its 64-byte output.
        let rfc_7914: [u8; 32] = [
            0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25, 0x44,
            0xb6, 0x05, 0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57,
            0xc2, 0x0d, 0xac, 0xbc,
        ];
        let expected = format!(
            "pbkdf2-sha256$1${}${}",
            STANDARD_NO_PAD.encode(b"salt"),
            STANDARD_NO_PAD.encode(rfc_7914)
        );
        assert_eq!(hash_with("passwd", b"salt", 1), expected);
    }

    #[test]
    fn a_damaged_hash_is_refused_with_a_sentence() {
        let good = hash("x").unwrap();
        let cases = [
            ("", "four parts"),
            ("plain text password", "four parts"),
            (&good.replacen("pbkdf2-sha256", "md5", 1), "unknown scheme"),
            (&good.replacen("50000", "0", 1), "rounds"),
            (&good.replacen("50000", "99999999999", 1), "rounds"),
            (&format!("{good}$extra"), "four parts"),
            (&good[..good.len() - 4], "hash is not 32 bytes"),
        ];
        for (stored, says) in cases {
            let err = parse(stored).unwrap_err().to_string();
            assert!(err.starts_with("The stored server password is damaged ("));
            assert!(err.contains(says), "{stored:?}: {err}");
            assert!(err.ends_with("Set the password again."));
            assert!(!verify(stored, "x"));
        }
    }

    #[test]
    fn a_trailing_newline_from_a_file_is_not_damage() {
        let kept = hash("pw").unwrap();
        assert!(verify(&format!("{kept}\n"), "pw"));
    }

    #[test]
    fn the_debug_form_shows_no_hash() {
        let kept = hash("pw").unwrap();
        let shown = format!("{:?}", parse(&kept).unwrap());
        assert_eq!(shown, "StoredPassword(pbkdf2-sha256, 50000 rounds)");
    }

    /// Run in release to see what one check costs on this machine.
    #[test]
    #[ignore]
    fn one_check_costs_milliseconds() {
        let kept = parse(&hash("pw").unwrap()).unwrap();
        let start = Instant::now();
        for _ in 0..20 {
            assert!(kept.verify("pw"));
        }
        println!("one check: {:?}", start.elapsed() / 20);
    }
}
