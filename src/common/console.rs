//! Text output of the windowed programs on Windows.
//!
//! `hubchat-server.exe` and `hubchat-client.exe` are built for the Windows
//! GUI subsystem, so a double-click opens no black console window beside
//! them. Such a program starts with no console and, unless its output was
//! redirected, no standard output or error: `--help`, `--version`,
//! `--headless` and error messages would vanish when it is started from
//! `cmd` or PowerShell. [`attach_to_parent`] joins the console of the
//! program that started it, if that has one, and points standard output and
//! error at it. Elsewhere it does nothing: a Unix program has its terminal
//! already.

/// Joins the parent's console, if there is one, so that what the program
/// prints reaches the user who started it from a console. Output already
/// redirected (`hubchat-server.exe --help > help.txt`) stays where it goes.
/// Started by a double-click there is no parent console and nothing changes.
/// Call it first thing in `main`, before anything is printed.
pub fn attach_to_parent() {
    #[cfg(windows)]
    windows::attach_to_parent();
}

#[cfg(windows)]
mod windows {
    use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
    };
    use windows_sys::Win32::System::Console::{
        AttachConsole, GetStdHandle, SetStdHandle, ATTACH_PARENT_PROCESS, STD_ERROR_HANDLE,
        STD_HANDLE, STD_OUTPUT_HANDLE,
    };

    pub fn attach_to_parent() {
        // A redirected stream is a handle the parent gave us: keep it. Look
        // before attaching, since attaching may itself fill in the handles.
        let redirected = [STD_OUTPUT_HANDLE, STD_ERROR_HANDLE].map(|id| (id, usable(id)));
        // SAFETY: AttachConsole takes a process id (here the documented
        // "parent" constant) and only fails, returning 0, when there is no
        // such console or one is attached already.
        if unsafe { AttachConsole(ATTACH_PARENT_PROCESS) } == 0 {
            return;
        }
        for (id, _) in redirected.iter().filter(|(_, kept)| !kept) {
            point_at_console(*id);
        }
    }

    /// Whether the standard handle `id` leads somewhere.
    fn usable(id: STD_HANDLE) -> bool {
        // SAFETY: GetStdHandle only reads the process's handle table.
        let handle = unsafe { GetStdHandle(id) };
        !handle.is_null() && handle != INVALID_HANDLE_VALUE
    }

    /// Opens the attached console's screen buffer and makes it the standard
    /// handle `id`. Rust's `std::io::stdout()` and `stderr()` look the
    /// handle up on every write, so printing works from here on.
    fn point_at_console(id: STD_HANDLE) {
        let name: Vec<u16> = "CONOUT$\0".encode_utf16().collect();
        // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the
        // call; no security attributes or template file are passed. The
        // handle is owned by the process's standard handle table from here on.
        unsafe {
            let console = CreateFileW(
                name.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                std::ptr::null(),
                OPEN_EXISTING,
                0,
                std::ptr::null_mut(),
            );
            if console != INVALID_HANDLE_VALUE {
                SetStdHandle(id, console);
            }
        }
    }
}
