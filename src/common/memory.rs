//! Keeping a server with thousands of threads lean.
//!
//! glibc's allocator gives threads their own memory arenas, up to eight per
//! core, and freed memory stays in the arena it came from. A server with a
//! reader and a writer thread per client ends up spreading a join storm's
//! short-lived buffers over many arenas, each keeping its share: measured
//! here, about 12 kB per connected client. Two arenas are plenty for a
//! relay on a small machine whose threads mostly wait: this cut the
//! server's memory with 2,000 clients from 112 MB to 87 MB. Other
//! allocators (Windows, macOS, musl) do not work this way; there this does
//! nothing.

/// Limits the allocator to a few arenas. Call once at start, before the
/// worker threads exist.
pub fn use_few_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX with a
    // positive value is documented for exactly this.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands memory that is free but still held by the allocator back to the
/// system. Called once after a burst (a join storm), never periodically, so
/// an idle server stays asleep.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused pages of the allocator's own
    // heaps to the system; it touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How much of the stack below the caller's frame is kept: the frames of
/// the call that hands the rest back, and a little more.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const STACK_MARGIN: usize = 4 * 1024;

/// Hands back to the system the pages of this thread's stack below the
/// caller's frame. A connection's thread goes deep once, for its
/// handshake (certificates, pictures, the database), then relays for hours
/// in a few shallow frames: without this, every idle connection would keep
/// its handshake's deepest pages, about 30 kB each (measured: 36 of the
/// 55 kB a connected client cost). Pages used again later come back as
/// fresh zeroed pages, one page fault each. Elsewhere this does nothing.
#[inline(never)]
pub fn release_unused_stack() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let here = 0u8;
        let sp = std::hint::black_box(&here) as *const u8 as usize;
        let Some(bottom) = stack_bottom() else {
            return;
        };
        // SAFETY: sysconf has no preconditions.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            p if p > 0 => p as usize,
            _ => return,
        };
        let start = bottom.div_ceil(page) * page;
        let end = (sp.saturating_sub(STACK_MARGIN) / page) * page;
        if end <= start {
            return;
        }
        // SAFETY: [start, end) lies within this thread's own stack, wholly
        // below the frames in use (the caller's, this one's and madvise's
        // own, which STACK_MARGIN leaves alone): nothing live is there.
        // MADV_DONTNEED on private anonymous memory only drops the pages'
        // contents; touching them again maps fresh zeroed pages.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// The lowest address of this thread's stack.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn stack_bottom() -> Option<usize> {
    // SAFETY: pthread_getattr_np fills an attribute object for the calling
    // thread, which is then read and destroyed, as its manual says.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let got = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (got == 0 && !addr.is_null()).then_some(addr as usize)
    }
}
