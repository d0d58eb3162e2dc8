//! Certificates as identities, and the TLS settings both programs use.
//!
//! HubChat has no certificate authority: like Syncthing and LocalSend, each
//! server and each client installation makes a self-signed certificate on
//! first run and keeps it in its settings folder. The SHA-256 of that
//! certificate, its [`Fingerprint`], is the identity: a client pins the
//! server's on first connect (trust on first use) and the server binds
//! names to clients' fingerprints. Signatures are still checked by rustls,
//! so a peer must hold the private key of the certificate it shows; only
//! the question "is this the right certificate" is ours, and it is a
//! comparison of fingerprints, not a chain of trust.
//!
//! Only TLS 1.3 with the ring provider, and one choice of each kind:
//! X25519 key exchange, Ed25519 keys and signatures, TLS 1.3's three cipher
//! suites. One protocol to reason about, the fastest handshake ring offers,
//! and the smallest build: ring's P-256, P-384 and RSA code is never linked
//! in (about 300 KB of each binary).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls13_signature, CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom,
    WebPkiSupportedAlgorithms,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::SigningKey;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The name a client asks for in TLS. Servers are found by address and
/// recognised by fingerprint, so this is the same for all of them.
pub const SERVER_NAME: &str = "hubchat";

/// The SHA-256 of a certificate: who a server or a person is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a certificate in DER form.
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    /// All 64 hex digits, lower case: how it is stored.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads [`Self::hex`] back; `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Fingerprint(bytes))
    }

    /// The first 80 bits as five groups of four hex digits, for people to
    /// compare by eye or read out on the phone: "3F2A 9C01 77BE 1204 A9F0".
    /// Finding another key with the same 80 bits is far beyond anyone.
    pub fn short(&self) -> String {
        let hex = self.hex().to_uppercase();
        hex.as_bytes()[..20]
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.short())
    }
}

/// Why a certificate could not be made, read or kept.
#[derive(Debug)]
pub enum TlsError {
    /// The identity file exists but cannot be read or is damaged. It is
    /// never replaced silently: a new certificate means everyone who pinned
    /// the old one sees a warning.
    Unreadable { path: PathBuf, detail: String },
    /// A new identity could not be saved.
    Unwritable { path: PathBuf, detail: String },
    /// Making the certificate or the TLS settings failed.
    Setup { detail: String },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Unreadable { path, detail } => write!(
                f,
                "The identity file {} cannot be used ({detail}). Restore it from a backup, or move \
                 it away to make a new identity (people who knew the old one will be warned that \
                 it changed).",
                path.display()
            ),
            TlsError::Unwritable { path, detail } => write!(
                f,
                "Could not save the identity file {} ({detail}). Check that the folder can be \
                 written.",
                path.display()
            ),
            TlsError::Setup { detail } => write!(f, "Could not set up encryption: {detail}."),
        }
    }
}

impl std::error::Error for TlsError {}

/// A certificate and its private key: one server's or one person's
/// identity.
pub struct Credentials {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    fingerprint: Fingerprint,
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Credentials {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({})", self.fingerprint)
    }
}

impl Credentials {
    /// A new self-signed certificate (Ed25519) whose common name is
    /// `label`, for people who inspect the file.
    pub fn generate(label: &str) -> Result<Self, TlsError> {
        let setup = |e: rcgen::Error| TlsError::Setup {
            detail: e.to_string(),
        };
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(setup)?;
        let mut params =
            rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()]).map_err(setup)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, label);
        let cert = params.self_signed(&key).map_err(setup)?;
        let der = cert.der().clone();
        Ok(Credentials {
            fingerprint: Fingerprint::of(&der),
            cert: der,
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// The identity kept in `path`, made and saved there first if the file
    /// does not exist. A file that exists but cannot be read is an error,
    /// never replaced.
    pub fn load_or_create(path: &Path, label: &str) -> Result<Self, TlsError> {
        match fs::read(path) {
            Ok(pem) => Self::from_pem(&pem).map_err(|detail| TlsError::Unreadable {
                path: path.to_path_buf(),
                detail,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let made = Self::generate(label)?;
                match made.save_new(path) {
                    Ok(()) => Ok(made),
                    // Another program made it first: use theirs, so both
                    // show the same fingerprint.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path, label)
                    }
                    Err(e) => Err(TlsError::Unwritable {
                        path: path.to_path_buf(),
                        detail: e.to_string(),
                    }),
                }
            }
            Err(e) => Err(TlsError::Unreadable {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }),
        }
    }

    /// Reads a certificate and a PKCS#8 private key from PEM text (the form
    /// `openssl x509` and `openssl pkey` read).
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let cert = CertificateDer::from_pem_slice(pem)
            .map_err(|e| format!("no certificate in it: {e}"))?;
        let key = PrivatePkcs8KeyDer::from_pem_slice(pem)
            .map_err(|e| format!("no private key in it: {e}"))?;
        // Keys from HubChat builds before Ed25519 (ECDSA P-256).
        rustls::crypto::ring::sign::any_eddsa_type(&key).map_err(|_| NOT_ED25519.to_string())?;
        let made = Credentials {
            fingerprint: Fingerprint::of(&cert),
            cert,
            key,
        };
        // A key that does not belong to the certificate would fail every
        // handshake; say so now, in words.
        made.server_config().map_err(|e| e.to_string())?;
        Ok(made)
    }

    /// The certificate and key as PEM text.
    pub fn to_pem(&self) -> String {
        let b64 = |der: &[u8]| {
            use base64::Engine;
            let text = base64::engine::general_purpose::STANDARD.encode(der);
            text.as_bytes()
                .chunks(64)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n\
             -----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            b64(&self.cert),
            b64(self.key.secret_pkcs8_der())
        )
    }

    /// Writes the identity to `path` (readable by its owner only, where the
    /// system has such a notion), through a temporary file so a crash never
    /// leaves half an identity.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let temp = self.write_temp(path)?;
        fs::rename(&temp, path)
    }

    /// Writes the identity, synced, to a temporary file beside `path`
    /// (making the folder if needed); returns the temporary file's path.
    fn write_temp(&self, path: &Path) -> io::Result<std::path::PathBuf> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let temp = temp_name(path);
        let mut file = private_file(&temp)?;
        file.write_all(self.to_pem().as_bytes())?;
        file.sync_all()?;
        Ok(temp)
    }

    /// Saves to a file that must not exist yet (`AlreadyExists` if it
    /// does): the first of two programs starting at once wins whole.
    fn save_new(&self, path: &Path) -> io::Result<()> {
        let temp = self.write_temp(path)?;
        let linked = match fs::hard_link(&temp, path) {
            // A folder without hard links (FAT on a USB stick).
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                if path.exists() {
                    Err(io::Error::from(io::ErrorKind::AlreadyExists))
                } else {
                    return fs::rename(&temp, path);
                }
            }
            linked => linked,
        };
        let _ = fs::remove_file(&temp);
        linked
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// TLS settings for a server showing this certificate. Clients must
    /// show one of their own (their identity); any self-signed one is
    /// accepted, since who they are is decided by its fingerprint.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = provider();
        let verifier = Arc::new(AnyClientCert {
            provider: provider.clone(),
        });
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(setup_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.cert.clone()], self.private_key())
            .map_err(setup_error)?;
        let mut config = config;
        // Every connection makes a full handshake (0.4 ms): no resumption
        // tickets to send, keep or reason about.
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    }

    /// TLS settings for a client showing this certificate to a server whose
    /// certificate must have the fingerprint `pin` (any, when `None`: the
    /// first connection, trusted on first use). What the server showed is
    /// kept in the returned [`Seen`], so a refused certificate can be shown
    /// to the user.
    pub fn client_config(
        &self,
        pin: Option<Fingerprint>,
    ) -> Result<(Arc<rustls::ClientConfig>, Seen), TlsError> {
        let provider = provider();
        let seen = Seen::default();
        let verifier = Arc::new(PinnedServer {
            provider: provider.clone(),
            pin,
            seen: seen.clone(),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(setup_error)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![self.cert.clone()], self.private_key())
            .map_err(setup_error)?;
        let mut config = config;
        config.resumption = rustls::client::Resumption::disabled();
        Ok((Arc::new(config), seen))
    }

    fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// The name the client asks for; fixed, see [`SERVER_NAME`].
pub fn server_name() -> ServerName<'static> {
    ServerName::DnsName(
        rustls::pki_types::DnsName::try_from(SERVER_NAME)
            .expect("a constant, valid DNS name")
            .to_owned(),
    )
}

fn setup_error(e: rustls::Error) -> TlsError {
    TlsError::Setup {
        detail: e.to_string(),
    }
}

/// ring's TLS 1.3 cryptography narrowed to what HubChat uses (see the
/// module's comment). Built from its parts rather than by trimming
/// `default_provider()`, which would keep every algorithm linked in.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            use rustls::crypto::ring::cipher_suite as suite;
            Arc::new(CryptoProvider {
                cipher_suites: vec![
                    suite::TLS13_AES_128_GCM_SHA256,
                    suite::TLS13_AES_256_GCM_SHA384,
                    suite::TLS13_CHACHA20_POLY1305_SHA256,
                ],
                kx_groups: vec![rustls::crypto::ring::kx_group::X25519],
                signature_verification_algorithms: ED25519_SIGNATURES,
                secure_random: &Ed25519Only,
                key_provider: &Ed25519Only,
            })
        })
        .clone()
}

/// Why a key of another kind cannot be used.
const NOT_ED25519: &str = "its key is not an Ed25519 key, the only kind HubChat uses";

/// The one signature a peer's certificate and handshake may carry.
static ED25519_SIGNATURES: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[webpki::ring::ED25519],
    mapping: &[(SignatureScheme::ED25519, &[webpki::ring::ED25519])],
};

/// Randomness from the system (through ring), and private keys that must
/// be Ed25519.
#[derive(Debug)]
struct Ed25519Only;

impl SecureRandom for Ed25519Only {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), buf)
            .map_err(|_| GetRandomFailed)
    }
}

impl KeyProvider for Ed25519Only {
    fn load_private_key(
        &self,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        let not_ed25519 = || rustls::Error::General(NOT_ED25519.into());
        match key {
            PrivateKeyDer::Pkcs8(pkcs8) => {
                rustls::crypto::ring::sign::any_eddsa_type(&pkcs8).map_err(|_| not_ed25519())
            }
            _ => Err(not_ed25519()),
        }
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// A temporary name of this writer's own beside `path`, so two programs
/// (or threads) saving at the same moment never share a half-written file.
fn temp_name(path: &Path) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_extension(format!("tmp{}-{n}", std::process::id()))
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<fs::File> {
    fs::File::create(path)
}

/// The fingerprint of the certificate a server showed in the last
/// handshake made with one client configuration.
#[derive(Clone, Default, Debug)]
pub struct Seen(Arc<Mutex<Option<Fingerprint>>>);

impl Seen {
    pub fn get(&self) -> Option<Fingerprint> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, fingerprint: Fingerprint) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint);
    }
}

/// The client's check of the server: its certificate has the pinned
/// fingerprint (any on first use), and its signature is checked by rustls.
#[derive(Debug)]
struct PinnedServer {
    provider: Arc<CryptoProvider>,
    pin: Option<Fingerprint>,
    seen: Seen,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity);
        self.seen.set(fingerprint);
        match self.pin {
            Some(pin) if pin != fingerprint => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is configured; a 1.2 handshake never gets here.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The server's check of a client: it shows some certificate and holds its
/// key. Who it is (and what it may do) is decided later, by fingerprint.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_back_from_its_hex_and_shows_five_groups() {
        let creds = Credentials::generate("test").unwrap();
        let fp = creds.fingerprint();
        assert_eq!(Fingerprint::from_hex(&fp.hex()), Some(fp));
        let short = fp.short();
        assert_eq!(short.len(), 24, "{short}");
        assert_eq!(short.split(' ').count(), 5);
        assert!(fp.hex().to_uppercase().starts_with(&short.replace(' ', "")));
        assert_eq!(Fingerprint::from_hex("zz"), None);
    }

    #[test]
    fn an_identity_is_kept_and_read_back_the_same() {
        let dir = std::env::temp_dir().join(format!("hubchat-tls-{}", std::process::id()));
        let path = dir.join("identity.pem");
        let _ = fs::remove_file(&path);
        let made = Credentials::load_or_create(&path, "alice").unwrap();
        let again = Credentials::load_or_create(&path, "alice").unwrap();
        assert_eq!(made.fingerprint(), again.fingerprint());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn programs_starting_together_end_up_with_one_identity() {
        let dir = std::env::temp_dir().join(format!("hubchat-tls-race-{}", std::process::id()));
        let path = dir.join("identity.pem");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let made: Vec<Fingerprint> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| s.spawn(|| Credentials::load_or_create(&path, "server").unwrap()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().fingerprint())
                .collect()
        });
        let kept = Credentials::load_or_create(&path, "server")
            .unwrap()
            .fingerprint();
        assert!(made.iter().all(|fp| *fp == kept), "{made:?} vs {kept}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_identity_is_an_error_and_is_not_replaced() {
        let dir = std::env::temp_dir().join(format!("hubchat-tls-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("identity.pem");
        fs::write(&path, b"not a certificate").unwrap();
        let err = Credentials::load_or_create(&path, "alice").unwrap_err();
        assert!(err.to_string().contains("cannot be used"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"not a certificate");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_identity_with_another_kind_of_key_is_refused_in_words() {
        // What a HubChat build from before Ed25519 made: ECDSA P-256.
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        let err = Credentials::from_pem(pem.as_bytes()).unwrap_err();
        assert_eq!(err, NOT_ED25519);
    }

    #[test]
    fn a_handshake_offers_only_x25519_and_ed25519() {
        let p = provider();
        assert_eq!(p.kx_groups.len(), 1);
        assert_eq!(p.kx_groups[0].name(), rustls::NamedGroup::X25519);
        assert_eq!(
            p.signature_verification_algorithms.supported_schemes(),
            vec![SignatureScheme::ED25519]
        );
    }
}
