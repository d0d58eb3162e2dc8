//! HubChat's icon on its windows: the speech bubble of assets/hubchat.png
//! (drawn by assets/make-icon.sh). On X11 FLTK hands it to the window
//! manager as `_NET_WM_ICON`, which taskbars and Alt+Tab show; on Windows it
//! becomes the title bar's and taskbar button's icon (the .exe carries the
//! same picture for Explorer, see build.rs).

use fltk::prelude::*;
use fltk::window::DoubleWindow;

use crate::gui::avatars;

/// The icon, built into the binaries so no file has to sit beside them.
const PNG: &[u8] = include_bytes!("../../assets/hubchat.png");

/// Gives `window` HubChat's icon. Call it before the window is first shown:
/// X11 window managers read the icon when the window is mapped.
pub fn apply(window: &mut DoubleWindow) {
    // The picture is ours and checked by a test, so it always decodes; were
    // it ever broken, a window without an icon is still a working window.
    if let Some(picture) = avatars::png_image(PNG) {
        window.set_icon(Some(picture));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_icon_is_a_square_256_pixel_picture() {
        let picture = avatars::png_image(PNG).expect("assets/hubchat.png decodes");
        assert_eq!((picture.data_w(), picture.data_h()), (256, 256));
    }
}
