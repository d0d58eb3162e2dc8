//! `hubchat-load`: measures a server with many simulated clients. See
//! `hubchat-load --help`.

use std::io::Write;

use hubchat::load::attack::{self, AttackOptions};
use hubchat::load::files::{self, FilesOptions};
use hubchat::load::{self, cli};

fn main() {
    // Each client is an open file; the default soft limit (often 1,024)
    // would cap the clients long before memory does.
    let _ = hubchat::common::fdlimit::raise_open_file_limit();
    if std::env::args().nth(1).as_deref() == Some("discover") {
        std::process::exit(hubchat::load::discover::main(std::env::args().skip(2)));
    }
    let status = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Help) => {
            print!("{}", cli::USAGE);
            0
        }
        Ok(cli::Command::Run(opts)) => match load::run(&opts) {
            Ok(report) => {
                // A closed pipe (| head) must not turn a result into a panic.
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "{}", cli::table(&opts, &report));
                let _ = writeln!(out, "{}", cli::json(&opts, &report));
                if report.clean() {
                    0
                } else {
                    1
                }
            }
            Err(e) => {
                eprintln!("hubchat-load: cannot reach {}: {e}", opts.server);
                1
            }
        },
        Ok(cli::Command::Attack(opts, check)) => attack(&opts, check),
        Ok(cli::Command::Files(opts, check)) => files(&opts, check),
        Err(e) => {
            eprintln!("hubchat-load: {e}\nTry 'hubchat-load --help' for the options.");
            2
        }
    };
    std::process::exit(status);
}

/// Runs the attacks, printing each report as it comes and a summary table
/// at the end; 1 if `check` and a goal was missed, 1 if the tool could not
/// run.
fn attack(opts: &AttackOptions, check: bool) -> i32 {
    let result = attack::run(opts, |r| {
        attack::print(&attack::table(r));
        attack::print(&format!("{}\n", attack::json(r)));
    });
    match result {
        Ok(reports) => {
            attack::print(&attack::summary(&reports));
            i32::from(check && !reports.iter().all(attack::AttackReport::goals_met))
        }
        Err(e) => {
            eprintln!("hubchat-load attack: {e}");
            1
        }
    }
}

/// Measures files through the hub against bare sockets and prints the
/// table and a JSON line; 1 if a file arrived damaged or short, a chat
/// message was lost, `check` and a goal was missed, or the run could not be
/// made.
fn files(opts: &FilesOptions, check: bool) -> i32 {
    match files::run(opts) {
        Ok(report) => {
            attack::print(&files::table(opts, &report));
            attack::print(&format!("{}\n", files::json(opts, &report)));
            i32::from(!report.clean() || (check && !report.goals_met()))
        }
        Err(e) => {
            eprintln!("hubchat-load files: {e}");
            1
        }
    }
}
