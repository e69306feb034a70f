//! Thin wrappers over `ip`, `sysctl` and process control. Everything here acts inside a
//! namespace the sandbox created; nothing changes the root namespace's addresses or routes.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Runs a command, failing with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program} (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS`.
pub fn ip(args: &[&str]) -> Result<String> {
    run("ip", args)
}

/// `ip -n NS ARGS`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<String> {
    let mut a = vec!["-n", ns];
    a.extend_from_slice(args);
    ip(&a)
}

/// Runs a command inside a namespace.
pub fn exec_in(ns: &str, cmd: &[&str]) -> Result<String> {
    let mut a = vec!["netns", "exec", ns];
    a.extend_from_slice(cmd);
    ip(&a)
}

/// Sets sysctls inside a namespace.
pub fn sysctl(ns: &str, settings: &[&str]) -> Result<()> {
    let mut a = vec!["sysctl", "-q", "-w"];
    a.extend_from_slice(settings);
    exec_in(ns, &a).map(|_| ())
}

/// Namespaces that exist now.
pub fn namespaces() -> Vec<String> {
    run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// Deletes a namespace (and so every link inside it); a missing one is fine.
pub fn delete_netns(ns: &str) {
    let _ = run("ip", &["netns", "delete", ns]);
    let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
}

/// Starts a long-running process (inside `ns` when given) in its own process group, with
/// stdout and stderr in `log`. Returns its pid, which is also its process group.
pub fn spawn(
    ns: Option<&str>,
    cmd: &[String],
    log: &Path,
    env: &[(&str, &str)],
    append: bool,
) -> Result<u32> {
    spawn_child(ns, cmd, log, env, append).map(|c| c.id())
}

/// [`spawn`], keeping the child so its exit status can be collected.
pub fn spawn_child(
    ns: Option<&str>,
    cmd: &[String],
    log: &Path,
    env: &[(&str, &str)],
    append: bool,
) -> Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(log)
        .with_context(|| format!("cannot create log {}", log.display()))?;
    let mut c = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).args(cmd);
            c
        }
        None => {
            let mut c = Command::new(&cmd[0]);
            c.args(&cmd[1..]);
            c
        }
    };
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", cmd.join(" ")))
}

/// Whether a process is alive.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(true)
}

/// Signals a whole process group.
pub fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}
