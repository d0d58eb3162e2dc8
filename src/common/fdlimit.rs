//! Raising this process's open-file limit, so one process can hold
//! thousands of connections.
//!
//! Every connection is a file descriptor, and many systems start programs
//! with a soft limit of 1,024 open files while allowing far more (the hard
//! limit). The server and the load tool raise their soft limit to the hard
//! limit at start; a limit that cannot be raised further is left as it is.
//! Windows has no such per-process limit for sockets, so there this does
//! nothing.

/// The soft limit before and after raising it, where the platform has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub before: u64,
    pub now: u64,
}

/// Raises the soft open-file limit to the hard limit. `None` where the
/// platform has no such limit or would not tell it.
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<Raised> {
    // SAFETY: getrlimit and setrlimit only read and write the struct we
    // pass, which lives on this stack frame for the whole call.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        let before = lim.rlim_cur as u64;
        // macOS refuses RLIM_INFINITY for files; OPEN_MAX (10240) is its
        // real ceiling.
        #[cfg(target_os = "macos")]
        let want = lim.rlim_max.min(10_240);
        #[cfg(not(target_os = "macos"))]
        let want = lim.rlim_max;
        if want > lim.rlim_cur {
            lim.rlim_cur = want;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Some(Raised {
                    before,
                    now: before,
                });
            }
        }
        Some(Raised {
            before,
            now: lim.rlim_cur as u64,
        })
    }
}

/// Windows and other platforms: sockets are not limited this way.
#[cfg(not(unix))]
pub fn raise_open_file_limit() -> Option<Raised> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_ends_at_least_where_it_began() {
        let raised = raise_open_file_limit().expect("unix reports its limit");
        assert!(raised.now >= raised.before);
        // A second call finds nothing more to raise.
        let again = raise_open_file_limit().unwrap();
        assert_eq!(again.before, again.now);
    }
}
