//! `hubchat-load discover`: searches the LAN for servers as the client
//! window does, and prints each one found. For checking discovery from
//! another machine or network namespace, where no window is at hand.

use std::time::Duration;

use crate::common::discovery::{self, Search};
use crate::server::DEFAULT_PORT;

pub const USAGE: &str = "\
Usage: hubchat-load discover [--port PORT]... [--seconds N]

Searches the network for HubChat servers the way the client window does
(a UDP broadcast on each port, to 255.255.255.255 and every interface's
broadcast address) and prints one line per server found:
  found NAME - ADDRESS:PORT (version V)
then how many were found. Exit status 0 if at least one answered, 1 if none.

Options:
      --port PORT    A port to search on; may be repeated. Default: 5050
      --seconds N    How long to listen for answers, 1 to 60. Default: 2
  -h, --help         Show this help and exit.
";

/// Runs the subcommand on its arguments (after `discover`); returns the
/// exit status.
pub fn main<I: IntoIterator<Item = String>>(args: I) -> i32 {
    let search = match parse(args) {
        Ok(Some(search)) => search,
        Ok(None) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("hubchat-load discover: {e}\nTry 'hubchat-load discover --help'.");
            return 2;
        }
    };
    let result = discovery::search(&search, |found| {
        println!("found {} (version {})", found.label(), found.version);
    });
    match result {
        Ok(0) => {
            println!("no server found");
            1
        }
        Ok(n) => {
            println!("{n} found");
            0
        }
        Err(e) => {
            eprintln!("hubchat-load discover: cannot search: {e}");
            1
        }
    }
}

/// The search asked for, or `None` for `--help`.
fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Option<Search>, String> {
    let mut ports = Vec::new();
    let mut seconds = 2;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => {
                let v = value()?;
                let port =
                    v.parse().ok().filter(|&p| p > 0).ok_or_else(|| {
                        format!("--port needs a number from 1 to 65535, not \"{v}\"")
                    })?;
                ports.push(port);
            }
            "--seconds" => {
                let v = value()?;
                seconds = v
                    .parse()
                    .ok()
                    .filter(|s| (1..=60).contains(s))
                    .ok_or_else(|| format!("--seconds needs a number from 1 to 60, not \"{v}\""))?;
            }
            _ => return Err(format!("unknown option \"{arg}\"")),
        }
    }
    if ports.is_empty() {
        ports.push(DEFAULT_PORT);
    }
    let mut search = Search::on_ports(&ports);
    search.duration = Duration::from_secs(seconds);
    Ok(Some(search))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn ports_repeat_and_default_to_5050() {
        let search = parse(args("")).unwrap().unwrap();
        assert_eq!(search.ports, [DEFAULT_PORT]);
        let search = parse(args("--port 6000 --port 6001 --seconds 1"))
            .unwrap()
            .unwrap();
        assert_eq!(search.ports, [6000, 6001]);
        assert_eq!(search.duration, Duration::from_secs(1));
        assert!(parse(args("--port 0")).unwrap_err().contains("1 to 65535"));
        assert!(parse(args("--seconds 600"))
            .unwrap_err()
            .contains("1 to 60"));
    }
}
