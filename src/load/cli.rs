//! `hubchat-load`'s command line and its report.

use std::time::Duration;

use crate::load::attack::{Attack, AttackOptions};
use crate::load::attack_net::loopback_target;
use crate::load::files::FilesOptions;
use crate::load::{LoadOptions, Pace, Pattern, Proto, Report, Storm, StormKind};

pub const USAGE: &str = "\
Usage: hubchat-load [OPTIONS]

Simulates many clients against a HubChat (or original) server and reports
throughput, latency, loss and duplicates. Use it only against your own
server. Exits 1 if any message was lost or duplicated or any client failed.

Options:
  -s, --server HOST:PORT   The server. Default: 127.0.0.1:5050
      --proto P            hubchat (the original protocol) or irc (an IRC
                           server such as ngIRCd: NICK/USER, one channel as
                           the roster, PRIVMSG to the partner's nick).
                           Default: hubchat
      --tls                The HubChat clients join encrypted, as the HubChat
                           client does (TLS in INFO, STARTTLS, TLS 1.3), each
                           with a certificate of its own, made before the
                           clock starts. A join the server does not encrypt
                           fails the run. The report's join figures then
                           time N encrypted joins (with --hold 0: joins
                           only).
  -n, --clients N          How many clients. Default: 10
  -m, --messages M         Messages each client sends. Default: 100
      --pattern P          pairs (0<->1, 2<->3, ...) or ring (i -> i+1).
                           Default: pairs
  -w, --window W           Send as fast as possible with at most W messages
                           in flight per sender. Default: 32
  -r, --rate R             Instead, send R messages a second per client.
      --size BYTES         Message text size. Default: 64
  -c, --concurrency C      Clients connecting at once. Default: 64
      --hold SECONDS       Only connect the clients, hold them this long,
                           then disconnect them all at once.
      --storm KIND K       Once all are listed, K clients leave at the same
                           moment, KIND disconnect (each says DISCONNECT) or
                           kill (each closes its socket without a word),
                           while a fresh client joins. Checks that everyone
                           left is told of each leaver exactly once and
                           times the fresh join; the others then send their
                           messages (or hold).
      --patience SECONDS   Stop waiting for missing messages after this long
                           without progress. Default: 5
  -q, --quiet              No progress lines on standard error.
  -h, --help               Show this help and exit.

       hubchat-load attack NAME... [OPTIONS]

Runs attacks of a hostile LAN user against a server on this machine's
loopback only (any other address is refused), each bounded in connections
and time, while two normal clients chat throughout and a newcomer from
127.0.0.2 tries to join every second. Reports per attack: the server's peak
memory, the pair's p99 latency and loss, newcomers in within 1 s, and (for
a server it started) how fast SIGTERM stopped it. NAME is one or more of
slow-header slow-handshake big-colour join-leave flood picture-flood
stalled-readers inflating-png palette-panic log-pressure look-alikes, or
all.

Attack options:
  -s, --server HOST:PORT   Attack this loopback server. Default: start
                           hubchat-server (beside this program) on a free
                           127.0.0.1 port, afresh for each attack.
      --server-pid PID     The attacked server's process, to read its memory.
      --server-arg ARG     Pass ARG to the server it starts (repeatable).
      --max-clients N      --max-clients of the server it starts. Default: 1000
      --seconds N          How long each attack lasts. Default: 10
      --count N            The attack's scale: connections (slow-header 500,
                           slow-handshake 1300), big-colour clients (3),
                           join/leave cycles (28), messages a second for
                           flood and log-pressure (0: as fast as possible),
                           pictures a second for picture-flood (150),
                           clients that never read in stalled-readers (200),
                           pictures for inflating-png and palette-panic (1).
      --bystanders N       Normal users present in big-colour, join-leave
                           and picture-flood. Default: 200
      --spread N           Attacker connections come from N loopback
                           addresses. Default: 1 (127.0.0.1)
      --pair-rate R        Messages a second each of the pair sends. Default:
                           15, under the server's default rate limit of 20
      --log-rate BYTES     How fast the started server's log is read, bytes a
                           second. Default: at once; 1000000 for log-pressure
      --check-goals        Exit 1 unless every goal held (<= 256 MB, pair p99
                           < 50 ms, no loss, every newcomer within 1 s,
                           SIGTERM within 2 s).
  -q, --quiet              No progress lines on standard error.

       hubchat-load files [OPTIONS]

Measures files through a server on this machine's loopback only (any other
address is refused): N transfers at once, each from a sender client of its
own to a receiver client of its own, flow-controlled as HubChat does (a
768 KiB window, acknowledged every 192 KiB), chunks sent from memory and
received into nothing, every byte checked. In the same run the same bytes
go through N bare TCP socket pairs on 127.0.0.1, the reference; the report
gives both speeds and their ratio. Meanwhile two clients chat at a steady
rate and the report gives their latency. Exits 1 if any file arrived short,
out of order or damaged, or a chat message was lost. MB are MiB here
(1,048,576 bytes), in sizes and speeds alike.

Files options:
  -s, --server HOST:PORT   The loopback server. Default: 127.0.0.1:5050
      --size MB            Each file's size. Default: 1024
      --transfers N        Transfers at once, each with two clients of its
                           own, each from a loopback address of its own.
                           Default: 1, at most 200
      --chat-rate R        Messages a second each of the chatting pair sends
                           while the files travel; 0 for no chat. Default:
                           15, under the server's default rate limit of 20
      --server-pid PID     The server's process: its resident memory (VmRSS)
                           is read every 20 ms while the clients are there
                           (Linux only), and the peak reported.
      --patience SECONDS   A transfer fails after this long without the next
                           thing it needs. Default: 10
      --check-goals        Exit 1 also unless the goals held: the hub at least
                           half the bare pairs' speed, chat p99 under 5 ms,
                           server RSS under 64 MB (a goal not measured, for
                           want of --server-pid or chat, is not checked).
  -q, --quiet              No progress lines on standard error.
";

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Help,
    Run(LoadOptions),
    /// Attacks; and whether to exit 1 when a goal was missed.
    Attack(AttackOptions, bool),
    /// Files through the hub against bare sockets; and whether to exit 1
    /// when a goal was missed.
    Files(FilesOptions, bool),
}

/// Reads the arguments (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    match args.peek().map(String::as_str) {
        Some("attack") => {
            args.next();
            return parse_attack(args);
        }
        Some("files") => {
            args.next();
            return parse_files(args);
        }
        _ => {}
    }
    let mut o = LoadOptions {
        progress: true,
        ..LoadOptions::default()
    };

    while let Some(arg) = args.next() {
        let (flag, inline) = split_flag(&arg);
        let mut value = || flag_value(&flag, inline.clone(), &mut args);
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-s" | "--server" => o.server = value()?,
            "--proto" => {
                o.proto = match value()?.as_str() {
                    "hubchat" => Proto::Hubchat,
                    "irc" => Proto::Irc,
                    other => return Err(format!("--proto is hubchat or irc, not \"{other}\"")),
                }
            }
            "--tls" => o.tls = true,
            "-n" | "--clients" => o.clients = number(&flag, &value()?, 1)?,
            "-m" | "--messages" => o.messages = number(&flag, &value()?, 0)?,
            "--pattern" => {
                o.pattern = match value()?.as_str() {
                    "pairs" => Pattern::Pairs,
                    "ring" => Pattern::Ring,
                    other => return Err(format!("--pattern is pairs or ring, not \"{other}\"")),
                }
            }
            "-w" | "--window" => o.pace = Pace::Window(number(&flag, &value()?, 1)?),
            "-r" | "--rate" => {
                let v = value()?;
                let rate: f64 = v
                    .parse()
                    .ok()
                    .filter(|r: &f64| *r > 0.0 && r.is_finite())
                    .ok_or_else(|| {
                        format!("{flag} needs messages per second above 0, not \"{v}\"")
                    })?;
                o.pace = Pace::Rate(rate);
            }
            "--size" => o.size = number(&flag, &value()?, 0)?,
            "-c" | "--concurrency" => o.connect_concurrency = number(&flag, &value()?, 1)?,
            "--storm" => {
                let kind = match value()?.as_str() {
                    "disconnect" => StormKind::Disconnect,
                    "kill" => StormKind::Kill,
                    other => {
                        return Err(format!(
                            "--storm is disconnect or kill, then a count, not \"{other}\""
                        ))
                    }
                };
                let count = number(&flag, &args.next().unwrap_or_default(), 1)?;
                o.storm = Some(Storm { kind, count });
            }
            "--hold" => o.hold = Some(Duration::from_secs(number(&flag, &value()?, 0)?)),
            "--patience" => o.patience = Duration::from_secs(number(&flag, &value()?, 1)?),
            "-q" | "--quiet" => o.progress = false,
            _ => return Err(format!("unknown option \"{arg}\"")),
        }
    }
    if o.tls && o.proto == Proto::Irc {
        return Err(
            "--tls is for HubChat servers; an IRC server encrypts on a port of its own".into(),
        );
    }
    Ok(Command::Run(o))
}

/// `--flag=value` split into its two halves; anything else is a flag or
/// word alone, whose value, if it takes one, is the next argument.
fn split_flag(arg: &str) -> (String, Option<String>) {
    match arg.split_once('=') {
        Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
        _ => (arg.to_string(), None),
    }
}

/// The value `flag` was given: after its `=`, else the next argument.
fn flag_value(
    flag: &str,
    inline: Option<String>,
    args: &mut impl Iterator<Item = String>,
) -> Result<String, String> {
    inline
        .or_else(|| args.next())
        .ok_or_else(|| format!("{flag} needs a value after it"))
}

/// Reads the arguments after `attack`.
fn parse_attack<I: Iterator<Item = String>>(mut args: I) -> Result<Command, String> {
    let mut o = AttackOptions {
        progress: true,
        ..AttackOptions::default()
    };
    let mut check = false;
    while let Some(arg) = args.next() {
        let (flag, inline) = split_flag(&arg);
        let mut value = || flag_value(&flag, inline.clone(), &mut args);
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-s" | "--server" => o.server = Some(loopback_target(&value()?, "attack")?),
            "--server-pid" => o.server_pid = Some(number(&flag, &value()?, 1)?),
            "--server-arg" => o.server_args.push(value()?),
            "--max-clients" => o.max_clients = number(&flag, &value()?, 1)?,
            "--seconds" => o.seconds = number::<u64>(&flag, &value()?, 1)?.min(600),
            "--count" => o.count = Some(number::<usize>(&flag, &value()?, 0)?.min(20_000)),
            "--bystanders" => o.bystanders = number::<usize>(&flag, &value()?, 0)?.min(5_000),
            "--spread" => o.spread = number::<usize>(&flag, &value()?, 1)?.min(12_500),
            "--pair-rate" => {
                let v = value()?;
                o.pair_rate = v
                    .parse()
                    .ok()
                    .filter(|r: &f64| *r > 0.0 && *r <= 10_000.0)
                    .ok_or_else(|| format!("{flag} needs messages a second, above 0 and at most 10000, not \"{v}\""))?;
            }
            "--log-rate" => o.log_rate = Some(number(&flag, &value()?, 0)?),
            "--check-goals" => check = true,
            "-q" | "--quiet" => o.progress = false,
            "all" => o.attacks.extend(Attack::ALL),
            name if !name.starts_with('-') => {
                o.attacks.push(Attack::by_name(name).ok_or_else(|| {
                    format!("there is no attack \"{name}\"; see --help for their names")
                })?)
            }
            _ => return Err(format!("unknown option \"{arg}\"")),
        }
    }
    if o.attacks.is_empty() {
        return Err("name an attack (or all) after \"attack\"".into());
    }
    Ok(Command::Attack(o, check))
}

/// Reads the arguments after `files`.
fn parse_files<I: Iterator<Item = String>>(mut args: I) -> Result<Command, String> {
    let mut o = FilesOptions {
        progress: true,
        ..FilesOptions::default()
    };
    let mut check = false;
    while let Some(arg) = args.next() {
        let (flag, inline) = split_flag(&arg);
        let mut value = || flag_value(&flag, inline.clone(), &mut args);
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-s" | "--server" => o.server = loopback_target(&value()?, "files")?,
            "--size" => {
                // A MiB count whose bytes fit in a u64 many times over.
                o.size_mb = number(&flag, &value()?, 1)?;
                if o.size_mb > 1 << 20 {
                    return Err(format!("{flag} is at most 1048576 MB (1 TiB)"));
                }
            }
            "--transfers" => o.transfers = number::<usize>(&flag, &value()?, 1)?.min(200),
            "--chat-rate" => {
                let v = value()?;
                o.chat_rate = v
                    .parse()
                    .ok()
                    .filter(|r: &f64| (0.0..=10_000.0).contains(r))
                    .ok_or_else(|| {
                        format!("{flag} needs messages a second, 0 to 10000, not \"{v}\"")
                    })?;
            }
            "--server-pid" => o.server_pid = Some(number(&flag, &value()?, 1)?),
            "--patience" => o.patience = Duration::from_secs(number(&flag, &value()?, 1)?),
            "--check-goals" => check = true,
            "-q" | "--quiet" => o.progress = false,
            _ => return Err(format!("unknown option \"{arg}\"")),
        }
    }
    Ok(Command::Files(o, check))
}

fn number<T: std::str::FromStr + PartialOrd + From<u8>>(
    flag: &str,
    v: &str,
    min: u8,
) -> Result<T, String> {
    v.trim()
        .parse::<T>()
        .ok()
        .filter(|n| *n >= T::from(min))
        .ok_or_else(|| format!("{flag} needs a whole number of at least {min}, not \"{v}\""))
}

/// The report as a readable table.
pub fn table(o: &LoadOptions, r: &Report) -> String {
    let pace = match o.pace {
        Pace::Window(w) => format!("window {w}"),
        Pace::Rate(rate) => format!("{rate} msg/s per client"),
    };
    let pattern = match o.pattern {
        Pattern::Pairs => "pairs",
        Pattern::Ring => "ring",
    };
    let server = match (o.proto, o.tls) {
        (Proto::Hubchat, false) => o.server.clone(),
        (Proto::Hubchat, true) => format!("{} (TLS)", o.server),
        (Proto::Irc, _) => format!("{} (IRC)", o.server),
    };
    let mut t = String::new();
    if let Some(hold) = o.hold {
        t += &format!(
            "hubchat-load: {} clients held for {} s against {server}\n",
            o.clients,
            hold.as_secs(),
        );
    } else {
        t += &format!(
            "hubchat-load: {} clients ({pattern}), {} messages each, {pace}, {} bytes, against {server}\n",
            o.clients, o.messages, o.size
        );
    }
    t += &format!(
        "  clients      {} connected, {} failed, in {:.1} ms; all in every roster after {:.1} ms\n",
        r.connected, r.failed, r.connect_ms, r.join_ms
    );
    t += &format!(
        "  join rate    {:.0} clients a second (first connect to last join)\n",
        r.join_rate()
    );
    t += &encryption_line(r);
    if let Some(e) = &r.first_error {
        t += &format!("  first error  {e}\n");
    }
    if let Some(s) = &r.storm {
        t += &format!(
            "  storm        {} left at once; {} of {} departures told to the {} others in {:.1} ms\n",
            s.leavers, s.announced, s.expected, s.survivors, s.told_ms
        );
        match (s.fresh_join_ms, &s.fresh_error) {
            (Some(ms), _) => t += &format!("  fresh join   {ms:.1} ms after the storm began\n"),
            (None, e) => {
                t += &format!(
                    "  fresh join   failed: {}\n",
                    e.as_deref().unwrap_or("unknown")
                )
            }
        }
    }
    t += &format!("  told twice   {}\n", r.told_twice);
    if o.hold.is_none() {
        t += &format!("  sent         {}\n", r.sent);
        t += &format!("  delivered    {}\n", r.delivered);
        t += &format!("  lost         {}\n", r.lost);
        t += &format!("  duplicated   {}\n", r.duplicated);
        t += &format!(
            "  time         {:.3} s, {:.0} msg/s\n",
            r.seconds,
            r.throughput()
        );
        let [p50, p90, p99, max] = r.latency_us;
        t += &format!(
            "  latency      p50 {p50:.1} us, p90 {p90:.1} us, p99 {p99:.1} us, max {max:.1} us\n"
        );
    }
    if let Some(cpu) = r.tool_cpu_s {
        let per = if r.delivered > 0 {
            format!(", {:.2} us per message", cpu * 1e6 / r.delivered as f64)
        } else {
            String::new()
        };
        t += &format!("  tool CPU     {cpu:.2} s{per}\n");
    }
    t
}

/// Whether the joins were encrypted, in one line of the table.
fn encryption_line(r: &Report) -> String {
    if !r.tls {
        return "  encryption   none: plain text, as original clients join\n".into();
    }
    let key = r
        .server_key
        .map_or_else(|| "none seen".to_string(), |k| k.to_string());
    let made = r.identities_ms.map_or_else(String::new, |ms| {
        format!("; their certificates made beforehand in {ms:.0} ms")
    });
    let verdict = if r.encrypted == r.connected && r.connected > 0 {
        "every join encrypted"
    } else {
        "NOT every join encrypted"
    };
    format!(
        "  encryption   TLS 1.3: {} of {} joined clients encrypted ({verdict}); server key {key}{made}\n",
        r.encrypted, r.connected
    )
}

/// The report as one JSON line, for scripts.
pub fn json(o: &LoadOptions, r: &Report) -> String {
    let [p50, p90, p99, max] = r.latency_us;
    serde_json::json!({
        "proto": match o.proto {
            Proto::Hubchat => "hubchat",
            Proto::Irc => "irc",
        },
        "clients": o.clients,
        "messages_per_client": o.messages,
        "tls": r.tls,
        "encrypted": r.encrypted,
        "server_key": r.server_key.map(|k| k.hex()),
        "identities_ms": r.identities_ms,
        "joins_per_s": r.join_rate(),
        "connected": r.connected,
        "failed": r.failed,
        "connect_ms": r.connect_ms,
        "join_ms": r.join_ms,
        "sent": r.sent,
        "delivered": r.delivered,
        "lost": r.lost,
        "duplicated": r.duplicated,
        "seconds": r.seconds,
        "msg_per_s": r.throughput(),
        "latency_us": {"p50": p50, "p90": p90, "p99": p99, "max": max},
        "told_twice": r.told_twice,
        "storm": r.storm.as_ref().map(|s| serde_json::json!({
            "kind": match o.storm.map(|s| s.kind) {
                Some(StormKind::Kill) => "kill",
                _ => "disconnect",
            },
            "leavers": s.leavers,
            "survivors": s.survivors,
            "announced": s.announced,
            "expected": s.expected,
            "told_ms": s.told_ms,
            "fresh_join_ms": s.fresh_join_ms,
            "fresh_error": s.fresh_error,
        })),
        "tool_cpu_s": r.tool_cpu_s,
        "clean": r.clean(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Result<LoadOptions, String> {
        match parse(line.split_whitespace().map(String::from))? {
            Command::Run(o) => Ok(o),
            _ => Err("not a load run".into()),
        }
    }

    fn attack(line: &str) -> Result<(AttackOptions, bool), String> {
        match parse(line.split_whitespace().map(String::from))? {
            Command::Attack(o, check) => Ok((o, check)),
            _ => Err("not an attack".into()),
        }
    }

    fn files(line: &str) -> Result<(FilesOptions, bool), String> {
        match parse(line.split_whitespace().map(String::from))? {
            Command::Files(o, check) => Ok((o, check)),
            _ => Err("not a files run".into()),
        }
    }

    #[test]
    fn files_take_their_sizes_counts_and_rates() {
        let (o, check) = files("files").unwrap();
        assert_eq!(
            (o.size_mb, o.transfers, o.chat_rate, o.server_pid, check),
            (1024, 1, 15.0, None, false)
        );
        assert_eq!(o.server.to_string(), "127.0.0.1:5050");
        assert_eq!(o.size(), 1 << 30);
        let (o, check) = files(
            "files -s 127.0.0.1:5077 --size 100 --transfers 10 --chat-rate=50 --server-pid 42 --check-goals -q",
        )
        .unwrap();
        assert_eq!(
            (o.size_mb, o.transfers, o.chat_rate, o.server_pid, check),
            (100, 10, 50.0, Some(42), true)
        );
        assert_eq!(o.server.port(), 5077);
        assert!(!o.progress);
        assert_eq!(files("files --chat-rate 0").unwrap().0.chat_rate, 0.0);
        assert_eq!(files("files --transfers 5000").unwrap().0.transfers, 200);
    }

    #[test]
    fn files_refuse_sizes_counts_and_rates_that_make_no_sense() {
        for (line, says) in [
            (
                "files --size 0",
                "--size needs a whole number of at least 1",
            ),
            ("files --size 2000000", "at most 1048576 MB"),
            ("files --size", "--size needs a value"),
            ("files --transfers 0", "--transfers needs a whole number"),
            ("files --chat-rate -1", "0 to 10000, not \"-1\""),
            ("files --chat-rate fast", "not \"fast\""),
            ("files --server-pid 0", "--server-pid needs"),
            ("files --window 3", "unknown option \"--window\""),
        ] {
            let e = files(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
    }

    #[test]
    fn files_against_another_machine_are_refused_before_anything_is_sent() {
        let e = files("files -s 192.0.2.7:5050").unwrap_err();
        assert!(e.contains("only against this machine's loopback"), "{e}");
        assert!(e.contains("192.0.2.7 is not loopback"), "{e}");
        assert!(files("files -s 0.0.0.0:5050").is_err());
        assert!(files("files --server=[::1]:5050").is_ok());
        assert!(files("files -s 127.0.0.9:5050").is_ok(), "all of 127/8");
    }

    #[test]
    fn attacks_are_named_and_bounded() {
        let (o, check) = attack("attack flood look-alikes --seconds 3 --count 99999").unwrap();
        assert_eq!(o.attacks, [Attack::Flood, Attack::LookAlikes]);
        assert_eq!((o.seconds, o.count, check), (3, Some(20_000), false));
        let (o, check) = attack("attack all --check-goals -s 127.0.0.1:5050").unwrap();
        assert_eq!(o.attacks.len(), 11);
        assert!(check && o.server.is_some());
        assert!(attack("attack").unwrap_err().contains("name an attack"));
        assert!(attack("attack nuke")
            .unwrap_err()
            .contains("no attack \"nuke\""));
    }

    #[test]
    fn an_attack_on_another_machine_is_refused_before_anything_is_sent() {
        let e = attack("attack flood -s 192.0.2.7:5050").unwrap_err();
        assert!(e.contains("only against this machine's loopback"), "{e}");
        assert!(attack("attack flood --server=[::1]:5050").is_ok());
    }

    #[test]
    fn the_protocol_is_hubchat_unless_irc_is_asked_for() {
        assert_eq!(run("-n 5").unwrap().proto, Proto::Hubchat);
        assert_eq!(run("--proto irc -n 5").unwrap().proto, Proto::Irc);
        assert_eq!(run("--proto=hubchat").unwrap().proto, Proto::Hubchat);
        assert!(run("--proto xmpp")
            .unwrap_err()
            .contains("hubchat or irc, not \"xmpp\""));
    }

    #[test]
    fn tls_is_asked_for_and_only_with_hubchat() {
        assert!(!run("-n 5").unwrap().tls);
        assert!(run("--tls -n 5").unwrap().tls);
        assert!(run("--proto irc --tls")
            .unwrap_err()
            .contains("--tls is for HubChat servers"));
    }

    #[test]
    fn a_storm_names_its_kind_and_size() {
        let o = run("-n 2000 --storm kill 1000").unwrap();
        assert_eq!(
            o.storm,
            Some(Storm {
                kind: StormKind::Kill,
                count: 1000
            })
        );
        let o = run("--storm=disconnect 5").unwrap();
        assert_eq!(o.storm.map(|s| s.kind), Some(StormKind::Disconnect));
        assert!(run("--storm explode 5")
            .unwrap_err()
            .contains("disconnect or kill"));
        assert!(run("--storm kill").unwrap_err().contains("--storm needs"));
    }
}
