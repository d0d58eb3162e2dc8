//! The attack mode of the load tool, short, against the real
//! `hubchat-server` executable on loopback: it runs, it reports every
//! figure, and the chatting pair loses nothing. These hold before and after
//! the server's defences; the goals themselves (issue 10) are checked by
//! `scripts/attack.sh --check-goals`, not here.

use std::path::PathBuf;

use hubchat::load::attack::{self, Attack, AttackOptions, AttackReport};

fn short(attacks: &[Attack], count: Option<usize>) -> Vec<AttackReport> {
    let opts = AttackOptions {
        attacks: attacks.to_vec(),
        server_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_hubchat-server"))),
        seconds: 3,
        count,
        bystanders: 5,
        pair_rate: 15.0,
        ..AttackOptions::default()
    };
    attack::run(&opts, |_| {}).expect("the attack tool runs")
}

/// The figures every attack report carries, and the pair's clean record.
fn assert_measured(r: &AttackReport) {
    let text = attack::table(r);
    assert!(
        r.peak_rss_kib.is_some_and(|k| k > 0),
        "memory was read: {text}"
    );
    assert!(r.pair_sent > 20, "the pair chatted throughout: {text}");
    assert_eq!(r.pair_lost, 0, "the pair lost nothing: {text}");
    assert_eq!(r.pair_delivered, r.pair_sent, "{text}");
    assert!(r.pair_dropped_at.is_none(), "{text}");
    assert!(r.pair_ms[1] > 0.0, "{text}");
    assert_eq!(r.newcomers, 2, "a newcomer tried once a second: {text}");
    assert!(r.stopped.is_some(), "SIGTERM was timed: {text}");
    assert!(!r.notes.is_empty(), "the attack said what it saw: {text}");
    let json: serde_json::Value = serde_json::from_str(&attack::json(r)).unwrap();
    assert_eq!(json["attack"], r.attack);
    assert_eq!(json["pair"]["lost"], 0);
}

#[test]
fn a_few_slow_headers_are_measured_while_the_pair_chats_without_loss() {
    let reports = short(&[Attack::SlowHeader], Some(20));
    assert_measured(&reports[0]);
    assert!(
        reports[0].notes[0].starts_with("20 of 20 connections opened"),
        "{:?}",
        reports[0].notes
    );
}

#[test]
fn a_flood_and_log_pressure_are_measured_while_the_pair_chats_without_loss() {
    let reports = short(&[Attack::Flood, Attack::LogPressure], Some(20_000));
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert_measured(r);
        assert!(r.log_bytes.is_some_and(|b| b > 0), "the log was read");
    }
    assert!(
        reports[0].notes.iter().any(|n| n.contains("victim")),
        "{:?}",
        reports[0].notes
    );
}

#[test]
fn look_alike_names_and_bad_pictures_are_tried_and_reported() {
    let reports = short(
        &[
            Attack::LookAlikes,
            Attack::PalettePanic,
            Attack::InflatingPng,
        ],
        None,
    );
    for r in &reports {
        assert_measured(r);
    }
    assert!(
        reports[0]
            .notes
            .iter()
            .any(|n| n.contains("look-alikes of \"alice\" accepted")),
        "{:?}",
        reports[0].notes
    );
    assert!(reports[1].notes[0].contains("palette PNG"));
    assert!(reports[2].notes[0].contains("inflating PNG"));
    let summary = attack::summary(&reports);
    assert_eq!(summary.lines().count(), 2 + 3, "{summary}");
}
