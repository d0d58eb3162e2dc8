//! The server's command line, and the headless mode it can start.
//!
//! A handful of options do not justify an argument-parsing dependency; the parser
//! below is plain, and its errors say which argument is wrong and why.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::common::tls::Credentials;
use crate::server::event::{Events, ServerEvent};
use crate::server::log::{self, MessageText};
use crate::server::{MessageRate, Server, ServerConfig, DEFAULT_PORT};

pub const USAGE: &str = "\
Usage: hubchat-server [--headless | --start] [--bind ADDRESS] [--port PORT]
                      [--max-clients N] [--max-per-address N] [--message-rate N]
                      [--max-queued-mb N] [--max-file-mb N] [--hide-text] [--name NAME]
                      [--no-discovery] [--password-file FILE] [--encrypted-only]

Runs a HubChat server: the hub that HubChat clients and the original
messenger's clients connect to.

Options:
      --headless         Run without a window, logging events to standard
                         output, one timestamped line each (floods summed up
                         per second). Stop with Ctrl+C or SIGTERM: every
                         client is sent SERVER CLOSE.
      --start            Open the window and start the server at once, as if
                         Start were pressed (for starting at login).
      --bind ADDRESS     The address to listen on: one of this machine's
                         addresses, 0.0.0.0 for all IPv4 interfaces, or :: for
                         all interfaces (IPv6, and IPv4 where the system
                         allows). Default: 0.0.0.0
      --port PORT        The port to listen on, 1 to 65535 (0 picks a free
                         one). Default: 5050
      --max-clients N    How many clients may be connected at once.
                         Default: 10000, or fewer if the system allows
                         fewer threads (see the README, Figures).
      --max-per-address N
                         How many connections one address may have open at
                         once; 0 for no limit (for load tests from one
                         machine). Default: 16
      --message-rate N   How many messages a second one client may send, on
                         average (bursts of 2.5 s worth pass at once; 128 KiB
                         of text a second). Faster senders are read from more
                         slowly, nothing is lost. 0 for no limit (for load
                         tests). Default: 20
      --max-queued-mb N  How many MiB may wait to be sent in all (every
                         client's queue and the log's). When full, senders
                         wait, newcomers are refused, and clients that do
                         not read are dropped. 0 for no budget. Default: 64
      --max-file-mb N    The largest file passed on between HubChat clients,
                         in MiB (senders are told; a larger offer is refused).
                         0 passes no files at all. Default: 2048 (2 GiB)
      --hide-text        Log who wrote to whom and how many characters
                         (alice -> bob (42 characters)), not what was
                         written. In the window, this unticks Show message
                         text. Default: the text is shown, as the original
                         server does.
      --name NAME        The name clients see when they search the network
                         for servers. Default: this machine's name.
      --no-discovery     Do not answer clients searching the network (they
                         can still connect by typing the address). Default:
                         answer on the UDP port with the TCP port's number.
      --password-file FILE
                         Ask clients for the password written in FILE (its
                         first line). It is kept in memory hashed only.
                         Original clients cannot give a password, so they
                         cannot join a server that has one.
      --encrypted-only   Turn away original (unencrypted) clients, with a
                         sentence saying why. Default: they may join.

The server keeps its certificate (server-identity.pem: its fingerprint is
printed at start and is what clients pin) and its database of names and bans
(hubchat-server.db, readable with the sqlite3 tool) in the settings folder:
~/.config/hubchat on Linux, %APPDATA%\\HubChat on Windows, or the folder
named by HUBCHAT_CONFIG_DIR.

  -h, --help             Show this help and exit.
  -V, --version          Show the version and exit.
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Version,
    Run {
        headless: bool,
        config: ServerConfigArgs,
    },
}

/// The parts of [`ServerConfig`] the command line sets; `None` where it
/// was not given (the window then uses what it remembers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerConfigArgs {
    /// Start at once (the window; headless always starts).
    pub start: bool,
    pub bind: Option<IpAddr>,
    pub port: Option<u16>,
    pub max_clients: Option<usize>,
    pub max_per_address: Option<usize>,
    /// `--message-rate`: messages a second per sender, 0 for no limit.
    pub message_rate: Option<u32>,
    /// `--max-queued-mb`: the budget for queued bytes in MiB, 0 for none.
    pub max_queued_mb: Option<usize>,
    /// `--max-file-mb`: the largest file passed on in MiB, 0 for none.
    pub max_file_mb: Option<u64>,
    /// Log relayed messages without their text.
    pub hide_text: bool,
    /// `--name`: the name clients find the server by.
    pub name: Option<String>,
    /// `--no-discovery`: do not answer clients' searches.
    pub no_discovery: bool,
    /// `--password-file`: where the password is written.
    pub password_file: Option<std::path::PathBuf>,
    /// `--encrypted-only`: no original clients.
    pub encrypted_only: bool,
}

impl ServerConfigArgs {
    /// The configuration, with defaults for what was not given.
    pub fn to_config(&self) -> ServerConfig {
        let bind = self.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut config =
            ServerConfig::new(SocketAddr::new(bind, self.port.unwrap_or(DEFAULT_PORT)));
        if let Some(n) = self.max_clients {
            config.max_clients = n;
        }
        if let Some(n) = self.max_per_address {
            config.max_per_address = n;
        }
        if let Some(n) = self.message_rate {
            config.message_rate = MessageRate::messages_per_second(n);
        }
        if let Some(mb) = self.max_queued_mb {
            config.max_queued = (mb > 0).then(|| mb.saturating_mul(1 << 20));
        }
        if let Some(mb) = self.max_file_mb {
            config.max_file = mb.saturating_mul(1 << 20);
        }
        config.discovery = (!self.no_discovery).then(|| {
            self.name
                .clone()
                .unwrap_or_else(crate::common::discovery::host_name)
        });
        config.allow_original = !self.encrypted_only;
        config
    }

    /// The configuration with what the server keeps on disk: its
    /// certificate (made on first start), its database and the password
    /// from `--password-file`. Errors are sentences for the owner.
    pub fn to_config_with_files(&self) -> Result<ServerConfig, String> {
        let mut config = self.to_config();
        keep_on_disk(&mut config)?;
        if let Some(path) = &self.password_file {
            config.password = Some(read_password_file(path)?);
        }
        Ok(config)
    }

    /// Whether the log shows what people write.
    pub fn message_text(&self) -> MessageText {
        MessageText::shown_if(!self.hide_text)
    }
}

/// Points `config` at the server's certificate and database in the
/// settings folder (making the certificate on first start).
pub fn keep_on_disk(config: &mut ServerConfig) -> Result<(), String> {
    let (Some(identity), Some(database)) = (
        crate::server::identity_file(),
        crate::server::database_file(),
    ) else {
        return Err(
            "No settings folder was found to keep the server's certificate and \
                    database in. Set HUBCHAT_CONFIG_DIR to a folder."
                .into(),
        );
    };
    let credentials =
        Credentials::load_or_create(&identity, "HubChat server").map_err(|e| e.to_string())?;
    config.credentials = Some(credentials);
    config.database = Some(database);
    Ok(())
}

/// The password in the first line of `path`, hashed.
fn read_password_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Could not read the password file {}: {e}.", path.display()))?;
    let password = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if password.is_empty() {
        return Err(format!(
            "The password file {} is empty: write the password on its first line.",
            path.display()
        ));
    }
    crate::server::password::hash(password).map_err(|e| e.to_string())
}

/// A command-line mistake, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

/// Reads the arguments (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, UsageError> {
    let mut headless = false;
    let mut config = ServerConfigArgs::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| UsageError(format!("{flag} needs {what} after it")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--headless" => headless = true,
            "--start" => config.start = true,
            "--hide-text" => config.hide_text = true,
            "--no-discovery" => config.no_discovery = true,
            "--encrypted-only" => config.encrypted_only = true,
            "--password-file" => {
                config.password_file = Some(value("a file name")?.into());
            }
            "--name" => {
                let v = value("a name")?;
                let name = crate::common::discovery::clean_name(&v);
                if name.is_empty() {
                    return Err(UsageError(
                        "--name needs a name clients will recognise, such as \"Office\"".into(),
                    ));
                }
                config.name = Some(name);
            }
            "--bind" => {
                let v = value("an address")?;
                config.bind = Some(parse_address(&v)?);
            }
            "--port" => {
                let v = value("a port number")?;
                let port = v.trim().parse().map_err(|_| {
                    UsageError(format!(
                        "--port needs a number from 1 to 65535, not \"{v}\""
                    ))
                })?;
                config.port = Some(port);
            }
            "--max-clients" => {
                let v = value("a number")?;
                let n = v.trim().parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    UsageError(format!("--max-clients needs a number above 0, not \"{v}\""))
                })?;
                config.max_clients = Some(n);
            }
            "--max-per-address" => {
                let v = value("a number")?;
                let n = v.trim().parse().map_err(|_| {
                    UsageError(format!(
                        "--max-per-address needs a number, 0 for no limit, not \"{v}\""
                    ))
                })?;
                config.max_per_address = Some(n);
            }
            "--message-rate" => {
                let v = value("a number")?;
                let n = v.trim().parse().map_err(|_| {
                    UsageError(format!(
                        "--message-rate needs a number of messages a second, 0 for no limit, not \"{v}\""
                    ))
                })?;
                config.message_rate = Some(n);
            }
            "--max-queued-mb" => {
                let v = value("a number")?;
                let n = v.trim().parse().map_err(|_| {
                    UsageError(format!(
                        "--max-queued-mb needs a number of MiB, 0 for no budget, not \"{v}\""
                    ))
                })?;
                config.max_queued_mb = Some(n);
            }
            "--max-file-mb" => {
                let v = value("a number")?;
                let n = v.trim().parse().map_err(|_| {
                    UsageError(format!(
                        "--max-file-mb needs a number of MiB, 0 to pass no files, not \"{v}\""
                    ))
                })?;
                config.max_file_mb = Some(n);
            }
            _ => return Err(UsageError(format!("unknown option \"{arg}\""))),
        }
    }
    Ok(Command::Run { headless, config })
}

fn parse_address(v: &str) -> Result<IpAddr, UsageError> {
    // Accept [::1] as people copy it from URLs.
    let bare = v.trim().trim_start_matches('[').trim_end_matches(']');
    bare.parse().map_err(|_| {
        UsageError(format!(
            "--bind needs an IP address such as 0.0.0.0, 192.168.1.20 or ::, not \"{v}\""
        ))
    })
}

/// How long after Ctrl+C or SIGTERM the process exits at the latest, even
/// if the log's output is blocked (a terminal scrolled back, a full pipe) or
/// a client does not close its end: every client has been sent SERVER CLOSE
/// by then, and exiting closes whatever is left.
pub const STOP_DEADLINE: Duration = Duration::from_millis(1500);

/// Runs the server without a window until Ctrl+C or SIGTERM, logging
/// messages with or without their text. Returns the process exit status.
pub fn run_headless(config: ServerConfig, text: MessageText) -> i32 {
    let events = Events::new();
    let server = match Server::start(config, events.clone()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("hubchat-server: {e}");
            return 1;
        }
    };

    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    }) {
        eprintln!(
            "hubchat-server: cannot watch for Ctrl+C ({e}); stop the process to stop the server"
        );
    }
    // The printer may block on a slow or stopped reader of stdout for as
    // long as that reader likes; it runs on its own thread so that nothing
    // else ever waits on it longer than the stop deadline.
    let (printed_tx, printed_rx) = crossbeam_channel::bounded::<()>(1);
    let printed = events.clone();
    thread::spawn(move || {
        print_events(&printed, text);
        let _ = printed_tx.send(());
    });

    let _ = stop_rx.recv();
    let asked = Instant::now();
    let (stopped_tx, stopped_rx) = crossbeam_channel::bounded::<()>(1);
    thread::spawn(move || {
        server.stop();
        let _ = stopped_tx.send(());
    });
    // Stopping sends every client SERVER CLOSE at once, then waits a while
    // for them to close their end; a client that does not is cut off by
    // the exit. The log still ends with "stopped" if it can be written.
    if stopped_rx.recv_deadline(asked + STOP_DEADLINE / 2).is_err() {
        events.emit(ServerEvent::Stopped);
    }
    let _ = printed_rx.recv_deadline(asked + STOP_DEADLINE);
    0
}

/// Prints events in batches until the server reports it has stopped,
/// through a [`log::Throttle`] so that a flood is summed up once a second.
fn print_events(events: &Events, text: MessageText) {
    let mut throttle = log::Throttle::new(Instant::now());
    loop {
        let batch = events.wait(Duration::from_millis(250));
        let summary = throttle.roll(Instant::now());
        let stopped = batch.iter().any(|e| matches!(e.what, ServerEvent::Stopped));
        let stdout = io::stdout();
        let mut out = io::BufWriter::new(stdout.lock());
        // A closed stdout must not stop the server: ignore write errors.
        write_summary(&mut out, summary);
        for event in &batch {
            if matches!(event.what, ServerEvent::Stopped) {
                write_summary(&mut out, throttle.finish(Instant::now()));
            }
            if throttle.admit(&event.what) {
                let _ = writeln!(out, "{}", log::line(event, text));
            }
        }
        let _ = out.flush();
        if stopped {
            return;
        }
    }
}

fn write_summary(out: &mut impl Write, lines: Vec<String>) {
    if lines.is_empty() {
        return;
    }
    let now = log::timestamp(SystemTime::now());
    for line in lines {
        let _ = writeln!(out, "{now} {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_are_all_interfaces_on_port_5050_with_message_text_shown() {
        let Command::Run { headless, config } = parse(args("")).unwrap() else {
            panic!("expected run");
        };
        assert!(!headless);
        assert_eq!(config.to_config().bind, "0.0.0.0:5050".parse().unwrap());
        assert_eq!(config.message_text(), MessageText::Shown);
    }

    #[test]
    fn options_take_values_after_a_space_or_an_equals_sign() {
        let parsed = parse(args(
            "--headless --bind=[::1] --port 6000 --max-clients=7 --hide-text",
        ))
        .unwrap();
        assert_eq!(
            parsed,
            Command::Run {
                headless: true,
                config: ServerConfigArgs {
                    start: false,
                    bind: Some("::1".parse().unwrap()),
                    port: Some(6000),
                    max_clients: Some(7),
                    max_per_address: None,
                    message_rate: None,
                    max_queued_mb: None,
                    max_file_mb: None,
                    hide_text: true,
                    name: None,
                    no_discovery: false,
                    password_file: None,
                    encrypted_only: false,
                }
            }
        );
    }

    #[test]
    fn mistakes_say_what_was_expected() {
        let cases = [
            ("--port", "--port needs a port number after it"),
            (
                "--port 70000",
                "--port needs a number from 1 to 65535, not \"70000\"",
            ),
            (
                "--port abc",
                "--port needs a number from 1 to 65535, not \"abc\"",
            ),
            (
                "--bind localhost",
                "--bind needs an IP address such as 0.0.0.0, 192.168.1.20 or ::, not \"localhost\"",
            ),
            (
                "--max-clients 0",
                "--max-clients needs a number above 0, not \"0\"",
            ),
            (
                "--max-per-address -1",
                "--max-per-address needs a number, 0 for no limit, not \"-1\"",
            ),
            ("--frobnicate", "unknown option \"--frobnicate\""),
        ];
        for (line, message) in cases {
            assert_eq!(parse(args(line)), Err(UsageError(message.into())), "{line}");
        }
    }

    #[test]
    fn the_per_address_limit_is_set_by_its_option_and_zero_lifts_it() {
        let Command::Run { config, .. } = parse(args("--max-per-address 0")).unwrap() else {
            panic!("expected run");
        };
        assert_eq!(config.to_config().max_per_address, 0);
        let Command::Run { config, .. } = parse(args("")).unwrap() else {
            panic!("expected run");
        };
        assert_eq!(config.to_config().max_per_address, 16);
    }

    #[test]
    fn the_queue_budget_is_set_in_mib_by_its_option_and_zero_lifts_it() {
        let budget = |line: &str| match parse(args(line)) {
            Ok(Command::Run { config, .. }) => config.to_config().max_queued,
            other => panic!("expected run, got {other:?}"),
        };
        assert_eq!(budget(""), Some(64 << 20));
        assert_eq!(budget("--max-queued-mb 8"), Some(8 << 20));
        let max_file = |line: &str| match parse(args(line)).unwrap() {
            Command::Run { config, .. } => config.to_config().max_file,
            other => panic!("{other:?}"),
        };
        assert_eq!(max_file(""), 2 << 30);
        assert_eq!(max_file("--max-file-mb 10"), 10 << 20);
        assert_eq!(max_file("--max-file-mb 0"), 0);
        assert!(parse(args("--max-file-mb lots")).is_err());
        assert_eq!(budget("--max-queued-mb 0"), None);
    }

    #[test]
    fn discovery_answers_as_the_host_name_unless_named_or_switched_off() {
        let discovery = |line: &str| match parse(args(line)) {
            Ok(Command::Run { config, .. }) => config.to_config().discovery,
            other => panic!("expected run, got {other:?}"),
        };
        assert_eq!(discovery(""), Some(crate::common::discovery::host_name()));
        assert_eq!(discovery("--name=Office"), Some("Office".into()));
        assert_eq!(discovery("--name Office --no-discovery"), None);
        assert_eq!(
            parse(args("--name")),
            Err(UsageError("--name needs a name after it".into()))
        );
    }

    #[test]
    fn the_message_rate_is_set_by_its_option_and_zero_lifts_it() {
        let rate = |line: &str| match parse(args(line)) {
            Ok(Command::Run { config, .. }) => config.to_config().message_rate,
            other => panic!("expected run, got {other:?}"),
        };
        assert_eq!(rate(""), Some(MessageRate::DEFAULT));
        assert_eq!(rate("--message-rate 0"), None);
        assert_eq!(rate("--message-rate 4").map(|r| r.per_second), Some(4.0));
        assert_eq!(
            parse(args("--message-rate fast")),
            Err(UsageError(
                "--message-rate needs a number of messages a second, 0 for no limit, not \"fast\""
                    .into()
            ))
        );
    }
}
