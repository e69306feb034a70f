//! kubectl against the sandbox's contexts, and owner-only files.

use super::*;

/// Writes a file only its owner can read.
pub fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

pub(crate) fn kubectl_ok(kc: &Path, context: &str, args: &[&str]) -> bool {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .args(["--context", context])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs kubectl with `input` on stdin.
pub fn kubectl_stdin(kc: &Path, context: &str, args: &[&str], input: &str) -> Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .args(["--context", context])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run kubectl (is it installed?)")?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("kubectl stdin"))?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Sandbox {
    /// Runs kubectl against one of the sandbox's contexts (`broker`, `cluster1`, …).
    pub fn kubectl(&self, context: &str, args: &[&str]) -> Result<String> {
        kubectl_stdin(&self.kubeconfig(), context, args, "")
    }
}
