//! Names: whatever a client offers, checking it and computing its keys
//! never panics, and a name that passes is taken by itself, so nobody can
//! join twice under one name however it is spelt.
#![no_main]

use hubchat::common::profile::{name_keys, validate_name, TakenNames};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(name) = validate_name(text) {
        let mut taken = TakenNames::default();
        assert!(taken.check(&name_keys(name)).is_ok());
        taken.insert(name_keys(name));
        assert!(
            taken.check(&name_keys(name)).is_err(),
            "{name:?} taken twice"
        );
        taken.remove(name);
        assert!(taken.check(&name_keys(name)).is_ok(), "{name:?} not freed");
    }
});
