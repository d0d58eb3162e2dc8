//! `hubchat-load`'s command line and its report.

use std::time::Duration;

use crate::load::{LoadOptions, Pace, Pattern, Report, Storm, StormKind};

pub const USAGE: &str = "\
Usage: hubchat-load [OPTIONS]

Simulates many clients against a HubChat (or original) server and reports
throughput, latency, loss and duplicates. Use it only against your own
server. Exits 1 if any message was lost or duplicated or any client failed.

Options:
  -s, --server HOST:PORT   The server. Default: 127.0.0.1:5050
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
";

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Help,
    Run(LoadOptions),
}

/// Reads the arguments (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut o = LoadOptions {
        progress: true,
        ..LoadOptions::default()
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value after it"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-s" | "--server" => o.server = value()?,
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
    Ok(Command::Run(o))
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
    let mut t = String::new();
    if let Some(hold) = o.hold {
        t += &format!(
            "hubchat-load: {} clients held for {} s against {}\n",
            o.clients,
            hold.as_secs(),
            o.server
        );
    } else {
        t += &format!(
            "hubchat-load: {} clients ({pattern}), {} messages each, {pace}, {} bytes, against {}\n",
            o.clients, o.messages, o.size, o.server
        );
    }
    t += &format!(
        "  clients      {} connected, {} failed; all in every roster after {:.1} ms\n",
        r.connected, r.failed, r.join_ms
    );
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

/// The report as one JSON line, for scripts.
pub fn json(o: &LoadOptions, r: &Report) -> String {
    let [p50, p90, p99, max] = r.latency_us;
    serde_json::json!({
        "clients": o.clients,
        "messages_per_client": o.messages,
        "connected": r.connected,
        "failed": r.failed,
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
            Command::Help => Err("help".into()),
        }
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
