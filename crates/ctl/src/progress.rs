//! Progress lines in Submariner's style: `✓ done`, `✗ failed`, `⚠ warning`.

use std::io::Write;

/// Prints progress to a writer (stdout for subctl, a buffer in tests).
pub struct Progress<'a> {
    out: &'a mut dyn Write,
}

impl<'a> Progress<'a> {
    /// Progress on `out`.
    pub fn new(out: &'a mut dyn Write) -> Self {
        Self { out }
    }

    /// A finished step.
    pub fn done(&mut self, msg: impl AsRef<str>) {
        let _ = writeln!(self.out, " ✓ {}", msg.as_ref());
    }

    /// A failed step.
    pub fn failed(&mut self, msg: impl AsRef<str>) {
        let _ = writeln!(self.out, " ✗ {}", msg.as_ref());
    }

    /// Something the user should know.
    pub fn warn(&mut self, msg: impl AsRef<str>) {
        let _ = writeln!(self.out, " ⚠ {}", msg.as_ref());
    }

    /// Plain information.
    pub fn info(&mut self, msg: impl AsRef<str>) {
        let _ = writeln!(self.out, " • {}", msg.as_ref());
    }
}
