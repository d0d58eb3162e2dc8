//! Asking the taskbar for the user's attention without taking the keyboard.
//!
//! On X11 this is the ICCCM urgency hint (`XSetWMHints` with `UrgencyHint`),
//! which window managers show as a flashing or highlighted taskbar entry
//! (openbox turns it into `_NET_WM_STATE_DEMANDS_ATTENTION`). libX11 is
//! already linked by FLTK, so no crate is needed. On Windows it is
//! `FlashWindowEx`: the taskbar button (and caption) flash until the user
//! brings the window to the front. Elsewhere this does nothing: raising the
//! window and the sound still tell the user.

use fltk::prelude::*;
use fltk::window::DoubleWindow;

/// Sets or clears the window's request for attention. Does nothing while
/// the window is not shown (it has no system window then).
pub fn request(window: &DoubleWindow, on: bool) {
    if !window.shown() {
        return;
    }
    imp::set_urgency(window, on);
}

/// Shows a window the user did not ask for (a message arrived): maps it if
/// needed, restores it if minimised and raises it, without taking the
/// keyboard focus from the window the user is typing in.
///
/// A window shown for the first time is marked with `_NET_WM_USER_TIME` 0,
/// which tells an EWMH window manager not to focus it. Xlib sends that
/// request right behind FLTK's map request, before the window manager
/// reads the window's properties to place it. A visible window is simply
/// shown again, which raises it without focus. A minimised one cannot be
/// restored that way: window managers (openbox among them) treat a request
/// to restore as the user's own and focus the window. So it is closed and
/// opened afresh where it was, as an unfocused new window; its widgets and
/// transcript are untouched.
pub fn show_unasked(window: &mut DoubleWindow) {
    if window.shown() && !window.visible() {
        let (x, y) = (window.x(), window.y());
        window.hide();
        window.set_pos(x, y);
    }
    if window.shown() {
        window.show();
        return;
    }
    // The window manager must read "do not focus" with the map request.
    // FLTK maps the window inside `show()` and may then wait on the X
    // server (loading fonts for a new window), which sends the map request
    // on ahead of the property; a window manager that reads it first
    // focuses the window, as it may for a window of the program the user
    // is typing in. Holding the X server for the few requests in between
    // makes the two arrive as one.
    imp::hold_server(true);
    window.show();
    if window.shown() {
        imp::refuse_focus_on_map(window);
    }
    imp::hold_server(false);
}

/// Whether the window asks for attention now, as the window system sees it.
/// Tests use this; it is `false` where there is no such hint.
pub fn requested(window: &DoubleWindow) -> bool {
    window.shown() && imp::urgency(window)
}

#[cfg(all(unix, not(target_os = "macos")))]
mod imp {
    use std::os::raw::{c_char, c_int, c_long, c_uchar, c_ulong, c_void};

    use fltk::prelude::*;
    use fltk::window::DoubleWindow;

    /// `XWMHints` from `<X11/Xutil.h>`.
    #[repr(C)]
    struct XWMHints {
        flags: c_long,
        input: c_int,
        initial_state: c_int,
        icon_pixmap: c_ulong,
        icon_window: c_ulong,
        icon_x: c_int,
        icon_y: c_int,
        icon_mask: c_ulong,
        window_group: c_ulong,
    }

    /// `XUrgencyHint`: bit 8 of `flags`.
    const URGENCY_HINT: c_long = 1 << 8;

    extern "C" {
        fn XGetWMHints(display: *mut c_void, window: c_ulong) -> *mut XWMHints;
        fn XAllocWMHints() -> *mut XWMHints;
        fn XSetWMHints(display: *mut c_void, window: c_ulong, hints: *mut XWMHints) -> c_int;
        fn XFree(data: *mut c_void) -> c_int;
        fn XInternAtom(display: *mut c_void, name: *const c_char, only_if_exists: c_int)
            -> c_ulong;
        fn XChangeProperty(
            display: *mut c_void,
            window: c_ulong,
            property: c_ulong,
            kind: c_ulong,
            format: c_int,
            mode: c_int,
            data: *const c_uchar,
            elements: c_int,
        ) -> c_int;
        fn XFlush(display: *mut c_void) -> c_int;
        fn XGrabServer(display: *mut c_void) -> c_int;
        fn XUngrabServer(display: *mut c_void) -> c_int;
    }

    /// Grabs or releases the X server for this connection alone. Nothing
    /// in between may wait for another client (the window manager): FLTK's
    /// `show()` does not.
    pub fn hold_server(on: bool) {
        let display = fltk::app::display();
        if display.is_null() {
            return;
        }
        // SAFETY: the display is FLTK's open connection; grabbing and
        // ungrabbing take no other arguments and are always paired by the
        // caller.
        unsafe {
            if on {
                XGrabServer(display);
            } else {
                XUngrabServer(display);
                XFlush(display);
            }
        }
    }

    fn handle(window: &DoubleWindow) -> c_ulong {
        window.raw_handle() as c_ulong
    }

    pub fn set_urgency(window: &DoubleWindow, on: bool) {
        let display = fltk::app::display();
        let xid = handle(window);
        // SAFETY: the display is FLTK's open connection and the window is
        // shown, so `xid` names a live X window. The hints come from Xlib
        // (or are allocated by it), are changed in place and freed with
        // XFree, as Xlib documents.
        unsafe {
            let mut hints = XGetWMHints(display, xid);
            if hints.is_null() {
                hints = XAllocWMHints();
            }
            if hints.is_null() {
                return;
            }
            if on {
                (*hints).flags |= URGENCY_HINT;
            } else {
                (*hints).flags &= !URGENCY_HINT;
            }
            XSetWMHints(display, xid, hints);
            XFree(hints.cast());
            XFlush(display);
        }
    }

    /// `XA_CARDINAL` and `PropModeReplace` from `<X11/Xatom.h>`, `<X11/X.h>`.
    const XA_CARDINAL: c_ulong = 6;
    const PROP_MODE_REPLACE: c_int = 0;

    pub fn refuse_focus_on_map(window: &DoubleWindow) {
        let display = fltk::app::display();
        let xid = handle(window);
        let zero: c_long = 0;
        // SAFETY: as in `set_urgency`. The atom name is a NUL-terminated
        // literal; the data is one 32-bit-format item, which Xlib reads as
        // a C long.
        unsafe {
            let atom = XInternAtom(display, c"_NET_WM_USER_TIME".as_ptr(), 0);
            XChangeProperty(
                display,
                xid,
                atom,
                XA_CARDINAL,
                32,
                PROP_MODE_REPLACE,
                (&zero as *const c_long).cast(),
                1,
            );
            XFlush(display);
        }
    }

    pub fn urgency(window: &DoubleWindow) -> bool {
        let display = fltk::app::display();
        // SAFETY: as in `set_urgency`; the hints are only read, then freed.
        unsafe {
            let hints = XGetWMHints(display, handle(window));
            if hints.is_null() {
                return false;
            }
            let on = (*hints).flags & URGENCY_HINT != 0;
            XFree(hints.cast());
            on
        }
    }
}

#[cfg(windows)]
mod imp {
    use fltk::prelude::*;
    use fltk::window::DoubleWindow;
    use windows_sys::Win32::UI::WindowsAndMessaging::{
        FlashWindowEx, FLASHWINFO, FLASHW_ALL, FLASHW_STOP, FLASHW_TIMERNOFG,
    };

    /// Flashes the caption and taskbar button until the window comes to the
    /// foreground (`FLASHW_TIMERNOFG`), or stops the flashing.
    pub fn set_urgency(window: &DoubleWindow, on: bool) {
        let info = FLASHWINFO {
            cbSize: std::mem::size_of::<FLASHWINFO>() as u32,
            hwnd: window.raw_handle(),
            dwFlags: if on {
                FLASHW_ALL | FLASHW_TIMERNOFG
            } else {
                FLASHW_STOP
            },
            uCount: 0,
            dwTimeout: 0,
        };
        // SAFETY: the window is shown, so FLTK's handle is a live HWND; the
        // structure is fully initialised and only read during the call.
        unsafe {
            FlashWindowEx(&info);
        }
    }

    /// Windows focuses what it maps as it sees fit; there is no hint to set.
    pub fn refuse_focus_on_map(_window: &DoubleWindow) {}

    pub fn hold_server(_on: bool) {}

    /// Windows cannot be asked whether a window is flashing.
    pub fn urgency(_window: &DoubleWindow) -> bool {
        false
    }
}

#[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
mod imp {
    use fltk::window::DoubleWindow;

    pub fn set_urgency(_window: &DoubleWindow, _on: bool) {}

    pub fn refuse_focus_on_map(_window: &DoubleWindow) {}

    pub fn hold_server(_on: bool) {}

    pub fn urgency(_window: &DoubleWindow) -> bool {
        false
    }
}
