//! Figures for the client's conversation history (src/client/history.rs):
//! fills a fresh history file with 100,000 messages as a busy user might
//! gather them, then prints its size and how long the window layer's calls
//! take on it.
//!
//!     cargo run --release --no-default-features --example history_figures [MESSAGES]
//!
//! The file goes into a new folder under the system's temporary folder and
//! is removed at the end. Twenty conversations (one of them the Everyone
//! room, with many authors), busier ones more often; lines of 5 to 200
//! characters of words drawn from a vocabulary of 5,000 (frequent words
//! far more often, as in real text, some with accents); four lines in ten
//! mine, each then moved on by its receipts as a client would (most
//! delivered, many read, some kept, failed or still sending). Times are
//! medians of several runs, with the file in the operating system's cache
//! (as it is for a client that just wrote it); the first run of each is
//! shown too.

use std::path::Path;
use std::time::{Duration, Instant};

use hubchat::client::history::{History, HistoryError, Partner, State, FILE_NAME};

const SERVER: &str = "tls:4f1c2a9e0b7d3c5a";
const CONVERSATIONS: usize = 20;
const RUNS: usize = 15;

fn main() {
    let messages: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().unwrap_or_else(|_| {
            eprintln!("history_figures: \"{arg}\" is not a number of messages");
            std::process::exit(2)
        }),
        None => 100_000,
    };
    let folder =
        std::env::temp_dir().join(format!("hubchat-history-figures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let path = folder.join(FILE_NAME);
    let result = run(&path, messages);
    let _ = std::fs::remove_dir_all(&folder);
    if let Err(e) = result {
        eprintln!("history_figures: {e}");
        std::process::exit(1);
    }
}

fn run(path: &Path, messages: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let words = Vocabulary::new(&mut random);
    let partners: Vec<Partner> = (0..CONVERSATIONS)
        .map(|n| Partner {
            name: if n == 0 {
                "Everyone".to_string()
            } else {
                format!("Person{n:02}")
            },
            color: ["blue", "#aa3300", "dark green", "purple"][n % 4].to_string(),
            image_name: format!("image_{}.png", n % 25 + 1),
        })
        .collect();
    let conv_key = |n: usize| {
        if n == 0 {
            "everyone".to_string()
        } else {
            format!("person{n:02}")
        }
    };
    // Busier conversations more often: the busiest has about a fifth of
    // all lines.
    let conv_weights: Vec<f64> = (0..CONVERSATIONS).map(|n| 1.0 / (n as f64 + 1.0)).collect();
    let conv_pick = Cumulative::new(&conv_weights);

    println!("HubChat history figures: {messages} messages, {CONVERSATIONS} conversations");
    println!();

    let history = History::open(path)?;
    let mut at_ms: i64 = 1_764_000_000_000;
    let mut text_bytes = 0usize;
    let mut mine_count = 0usize;
    let mut states = [0usize; 7];
    let mut per_conv = [0usize; CONVERSATIONS];
    let started = Instant::now();
    for _ in 0..messages {
        let n = conv_pick.pick(&mut random);
        per_conv[n] += 1;
        let conv = conv_key(n);
        let partner = &partners[n];
        let text = words.line(&mut random);
        text_bytes += text.len();
        at_ms += 1_000 + (random.next() % 600_000) as i64;
        let msg_id = format!("{:016x}", random.next());
        if random.below(10) < 4 {
            mine_count += 1;
            history.add_outgoing(SERVER, &conv, partner, &msg_id, "Me", &text, at_ms)?;
            let roll = random.below(100);
            let path: &[State] = match roll {
                0..=1 => &[],
                2..=4 => &[State::Failed],
                5..=9 => &[State::Sent],
                10..=19 => &[State::Kept, State::Delivered],
                20..=54 => &[State::Delivered],
                _ => &[State::Delivered, State::Read],
            };
            for &state in path {
                let detail = if state == State::Failed {
                    "The recipient left before it arrived."
                } else {
                    ""
                };
                history.set_state(SERVER, &msg_id, state, detail)?;
            }
            let last = path.last().copied().unwrap_or(State::Sending);
            states[state_index(last)] += 1;
        } else {
            let author = if n == 0 {
                format!("Person{:02}", 1 + random.below(40))
            } else {
                partner.name.clone()
            };
            let id = (random.below(10) != 0).then_some(msg_id.as_str());
            history.add_incoming(SERVER, &conv, partner, id, &author, &text, at_ms)?;
            states[state_index(State::Received)] += 1;
        }
    }
    let fill = started.elapsed();
    let main_open = file_size(path);
    let wal_open = file_size(&wal_path(path));
    drop(history);
    let main_closed = file_size(path);
    let wal_closed = file_size(&wal_path(path));

    println!("Filling (one transaction per add, and per receipt of mine):");
    println!(
        "  {messages} messages ({mine_count} mine) in {} = {:.1} µs a message",
        seconds(fill),
        fill.as_secs_f64() * 1e6 / messages.max(1) as f64
    );
    println!(
        "  final states: {}",
        [
            State::Sending,
            State::Sent,
            State::Kept,
            State::Delivered,
            State::Read,
            State::Failed,
            State::Received
        ]
        .iter()
        .map(|s| format!("{s} {}", states[state_index(*s)]))
        .collect::<Vec<_>>()
        .join(", ")
    );
    println!(
        "  lines per conversation: busiest {}, quietest {}",
        per_conv.iter().max().unwrap_or(&0),
        per_conv.iter().min().unwrap_or(&0)
    );
    println!();
    println!("Size:");
    println!(
        "  text of all lines:              {:>12} bytes ({:.1} a line)",
        group(text_bytes as u64),
        text_bytes as f64 / messages.max(1) as f64
    );
    println!(
        "  file while open:                {:>12} bytes + WAL {} bytes",
        group(main_open),
        group(wal_open)
    );
    println!(
        "  file after closing:             {:>12} bytes + WAL {} bytes ({:.0} bytes a message)",
        group(main_closed),
        group(wal_closed),
        (main_closed + wal_closed) as f64 / messages.max(1) as f64
    );
    let parts = parts(path)?;
    for (what, bytes) in &parts {
        println!("    {what:<30} {:>12} bytes", group(*bytes));
    }
    println!();

    // The busiest private conversation: the one most often opened.
    let busiest = (1..CONVERSATIONS)
        .max_by_key(|&n| per_conv[n])
        .map_or_else(|| conv_key(1), conv_key);
    println!("Opening (times: median of {RUNS} runs [first run]):");
    let open = measure(|| History::open(path).map(drop))?;
    println!("  open the file:                          {open}");
    let open_recent = measure(|| -> Result<(), HistoryError> {
        let history = History::open(path)?;
        let lines = history.recent(SERVER, &busiest, 200)?;
        assert_eq!(
            lines.len(),
            200.min(per_conv[1..].iter().copied().max().unwrap_or(0))
        );
        Ok(())
    })?;
    println!("  open + last 200 lines of {busiest}:      {open_recent}");
    let history = History::open(path)?;
    let recent = measure(|| history.recent(SERVER, &busiest, 200).map(drop))?;
    println!("  last 200 lines of {busiest} (open file): {recent}");
    let list = measure(|| history.conversations(SERVER).map(drop))?;
    println!("  the list of 20 conversations:           {list}");
    let unsent = measure(|| history.unsent(SERVER).map(drop))?;
    println!("  unsent messages of mine:                {unsent}");
    let check = measure(|| -> rusqlite::Result<()> {
        let conn = rusqlite::Connection::open(path)?;
        let answer: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
        assert_eq!(answer, "ok");
        Ok(())
    })?;
    println!("  (PRAGMA quick_check of the whole file:  {check}; not done at opening)");
    println!();

    println!("Searching (limit 50 hits, newest first, all servers):");
    let rare = words.rare_word();
    let searches = [
        ("the most common word", words.common_word().to_string()),
        (
            "a word of middling frequency",
            words.middling_word().to_string(),
        ),
        ("a rare word", rare.to_string()),
        ("a prefix (3 letters)", words.prefix().to_string()),
        (
            "two common words",
            format!("{} {}", words.common_word(), words.second_word()),
        ),
        ("an accent left out", "cafe".to_string()),
        ("a word never written", "xylophonic".to_string()),
    ];
    for (what, typed) in &searches {
        let hits = history.search(None, typed, 50)?.len();
        let all = history.search(None, typed, 1_000_000)?.len();
        let time = measure(|| history.search(None, typed, 50).map(drop))?;
        let server_time = measure(|| history.search(Some(SERVER), typed, 50).map(drop))?;
        println!(
            "  {what:<30} {:<16} {time}  (this server only: {server_time}); {hits} hits of {all}",
            format!("\"{typed}\":")
        );
    }
    let all_time = measure(|| {
        history
            .search(None, words.common_word(), 1_000_000)
            .map(drop)
    })?;
    println!("  every hit of the most common word (no limit): {all_time}");
    let hit = history.search(None, rare, 1)?;
    if let Some(hit) = hit.first() {
        let context = measure(|| history.around(hit.row, 10, 10).map(drop))?;
        println!("  a hit in context (10 lines before and after): {context}");
    }
    println!();

    println!("Clearing:");
    let quietest = (1..CONVERSATIONS)
        .min_by_key(|&n| per_conv[n])
        .map_or_else(|| conv_key(1), conv_key);
    let mut cleared = 0;
    for conv in [&quietest, &busiest] {
        let started = Instant::now();
        let removed = history.clear(SERVER, conv)?;
        let time = started.elapsed();
        cleared += removed;
        println!("  {conv} ({removed} lines): {}", millis(time));
    }
    let started = Instant::now();
    history.clear_all()?;
    let clear_all = started.elapsed();
    drop(history);
    println!(
        "  everything else ({} lines): {}; file afterwards {} bytes",
        messages - cleared,
        millis(clear_all),
        group(file_size(path) + file_size(&wal_path(path)))
    );
    Ok(())
}

fn state_index(state: State) -> usize {
    match state {
        State::Sending => 0,
        State::Sent => 1,
        State::Kept => 2,
        State::Delivered => 3,
        State::Read => 4,
        State::Failed => 5,
        State::Received => 6,
    }
}

/// Two parts of the file, counted with SQL (the dbstat table is left out
/// of HubChat's SQLite): the search index's data and the free pages.
fn parts(path: &Path) -> rusqlite::Result<Vec<(&'static str, u64)>> {
    let conn = rusqlite::Connection::open(path)?;
    let page: u64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    let free: u64 = conn.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
    let fts: u64 = conn.query_row(
        "SELECT coalesce(sum(length(block)), 0) FROM lines_fts_data",
        [],
        |row| row.get(0),
    )?;
    Ok(vec![
        ("of which search index data", fts),
        ("of which free pages", free * page),
    ])
}

/// A time as "median [first]".
struct Timing {
    median: Duration,
    first: Duration,
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]", millis(self.median), millis(self.first))
    }
}

fn measure<E: std::error::Error + 'static>(
    mut work: impl FnMut() -> Result<(), E>,
) -> Result<Timing, Box<dyn std::error::Error>> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        work()?;
        times.push(started.elapsed());
    }
    let first = times[0];
    times.sort();
    Ok(Timing {
        median: times[RUNS / 2],
        first,
    })
}

fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// xorshift64*: the same lines on every run, no dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks an index with probability proportional to its weight.
struct Cumulative(Vec<f64>);

impl Cumulative {
    fn new(weights: &[f64]) -> Cumulative {
        let mut sum = 0.0;
        Cumulative(
            weights
                .iter()
                .map(|w| {
                    sum += w;
                    sum
                })
                .collect(),
        )
    }

    fn pick(&self, random: &mut Random) -> usize {
        let total = self.0.last().copied().unwrap_or(0.0);
        let x = random.unit() * total;
        self.0.partition_point(|&c| c <= x).min(self.0.len() - 1)
    }
}

/// Words by rank, drawn by Zipf's law (the word of rank r about 1/r as
/// often as the most common one), as words are in real text.
struct Vocabulary {
    words: Vec<String>,
    pick: Cumulative,
}

const COMMON: &[&str] = &[
    "the",
    "to",
    "I",
    "you",
    "a",
    "and",
    "it",
    "is",
    "that",
    "of",
    "in",
    "for",
    "on",
    "me",
    "we",
    "have",
    "are",
    "be",
    "do",
    "this",
    "not",
    "with",
    "at",
    "so",
    "can",
    "will",
    "just",
    "what",
    "no",
    "yes",
    "ok",
    "my",
    "your",
    "but",
    "was",
    "get",
    "if",
    "know",
    "now",
    "there",
    "lunch",
    "meeting",
    "today",
    "tomorrow",
    "thanks",
    "please",
    "where",
    "when",
    "see",
    "send",
    "file",
    "printer",
    "server",
    "coffee",
    "café",
    "déjà",
    "naïve",
    "über",
    "résumé",
    "jalapeño",
];

impl Vocabulary {
    fn new(random: &mut Random) -> Vocabulary {
        const ONSETS: &[&str] = &[
            "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "br",
            "cr", "st", "tr", "pl", "gr", "sh", "ch", "th",
        ];
        const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ea", "ou", "ai", "é"];
        let mut words: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        while words.len() < 5_000 {
            let syllables = 1 + random.below(4);
            let mut word = String::new();
            for _ in 0..syllables {
                word.push_str(ONSETS[random.below(ONSETS.len())]);
                word.push_str(VOWELS[random.below(VOWELS.len())]);
            }
            if random.below(2) == 0 {
                word.push_str(["n", "r", "s", "t", "ng"][random.below(5)]);
            }
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let weights: Vec<f64> = (0..words.len()).map(|r| 1.0 / (r as f64 + 1.0)).collect();
        Vocabulary {
            words,
            pick: Cumulative::new(&weights),
        }
    }

    /// A line of 5 to 200 characters.
    fn line(&self, random: &mut Random) -> String {
        let target = 5 + random.below(196);
        let mut line = String::new();
        loop {
            let word = &self.words[self.pick.pick(random)];
            let longer =
                line.chars().count() + word.chars().count() + usize::from(!line.is_empty());
            if longer > target && line.chars().count() >= 5 {
                break;
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            if longer >= target {
                break;
            }
        }
        line.chars().take(200).collect()
    }

    fn common_word(&self) -> &str {
        &self.words[0]
    }

    fn second_word(&self) -> &str {
        &self.words[1]
    }

    fn middling_word(&self) -> &str {
        &self.words[300]
    }

    fn rare_word(&self) -> &str {
        &self.words[4_900]
    }

    fn prefix(&self) -> &str {
        "bra"
    }
}
