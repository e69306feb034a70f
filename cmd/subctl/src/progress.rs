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

/// An error and its causes, each said once: many errors already include their cause in their
/// own message, which `{:#}` would then print twice.
pub fn render_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod render_tests {
    use super::render_error;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::new(io)
            .context("failed to read x: No such file or directory")
            .context("cannot connect");
        assert_eq!(
            render_error(&e),
            "cannot connect: failed to read x: No such file or directory"
        );
    }
}
