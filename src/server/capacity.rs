//! How many connections this computer lets one server process hold.
//!
//! Each connection has two threads (a reader and a writer). On Linux every
//! thread costs four memory mappings (its stack and guard page, and the
//! signal stack Rust gives each thread, with its guard page), and a process
//! may have only `vm.max_map_count` mappings (65,530 by default), about
//! 8,000 connections' worth. Past that, starting a thread fails inside
//! Rust's runtime, which aborts the whole process. So the server never
//! admits more connections than the system can give threads to: the rest
//! are refused as "server full", and the server goes on.
//!
//! `sysctl vm.max_map_count=262144` (and `kernel.pid_max`, which caps
//! threads machine-wide) raise the limit; see the README.

/// Mappings one connection's two threads take.
const MAPS_PER_CONNECTION: u64 = 8;
/// Mappings left for everything else: libraries, the heap, the window.
const RESERVED_MAPS: u64 = 2_000;
/// Threads one connection takes.
const THREADS_PER_CONNECTION: u64 = 2;
/// Threads left for everything else, on a machine shared with others.
const RESERVED_THREADS: u64 = 1_000;

/// The most connections the system lets this process serve, where it says.
pub fn system_limit() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        let threads = match (
            read("/proc/sys/kernel/threads-max"),
            read("/proc/sys/kernel/pid_max"),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        limit_from(read("/proc/sys/vm/max_map_count"), threads)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The connection limit that follows from the mapping and thread limits.
pub fn limit_from(max_map_count: Option<u64>, max_threads: Option<u64>) -> Option<usize> {
    let by_maps = max_map_count.map(|m| m.saturating_sub(RESERVED_MAPS) / MAPS_PER_CONNECTION);
    let by_threads =
        max_threads.map(|t| t.saturating_sub(RESERVED_THREADS) / THREADS_PER_CONNECTION);
    let limit = match (by_maps, by_threads) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(usize::try_from(limit).unwrap_or(usize::MAX).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_defaults_allow_about_eight_thousand_connections() {
        assert_eq!(limit_from(Some(65_530), Some(32_768)), Some(7_941));
    }

    #[test]
    fn the_tighter_of_mappings_and_threads_wins() {
        assert_eq!(limit_from(Some(1_000_000), Some(9_000)), Some(4_000));
        assert_eq!(limit_from(Some(262_144), None), Some(32_518));
        assert_eq!(limit_from(None, None), None);
        assert_eq!(limit_from(Some(10), Some(10)), Some(1), "never zero");
    }
}
