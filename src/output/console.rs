//! pidvisor's own answers on its stdout and stderr (help, version, the `check` report,
//! pidvisorctl's replies and errors), written without ever panicking.

use std::io::{self, Write};

/// Writes `text` to stdout; false if stdout does not take it (`print!` would panic on
/// a full disk or a broken pipe).
pub fn print_stdout(text: &str) -> bool {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// Writes `text` to stderr, if it takes it (`eprint!` would panic otherwise).
pub fn print_stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
