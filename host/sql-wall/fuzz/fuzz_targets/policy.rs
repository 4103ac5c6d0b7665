//! Any text, under every grant: whatever the policy accepts must keep the invariant of
//! `tests/oracle` (one statement, every relation and function inside the grant, as SQLite itself
//! reports it, or an independent walk of the rendering for PostgreSQL).
#![no_main]

#[path = "../../tests/oracle/mod.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        oracle::check_all(sql);
    }
});
