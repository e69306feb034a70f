//! Every `subctl` command explains itself: `--help` of each leaf command (found by walking the
//! real binary's command tree) describes it and gives an example.

use std::process::Command;

use subsea_integration::binary;

fn help(path: &[String]) -> String {
    let out = Command::new(binary("subctl"))
        .args(path)
        .arg("--help")
        .output()
        .expect("run subctl (cargo build --workspace --bins first)");
    assert!(out.status.success(), "subctl {} --help failed", path.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands listed under `Commands:`.
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_subctl_command_has_an_example() {
    let mut todo = vec![vec![]];
    let mut leaves = Vec::new();
    while let Some(path) = todo.pop() {
        let text = help(&path);
        let subs = subcommands(&text);
        if subs.is_empty() {
            leaves.push((path, text));
        } else {
            todo.extend(subs.into_iter().map(|s| {
                let mut p = path.clone();
                p.push(s);
                p
            }));
        }
    }
    assert!(leaves.len() >= 20, "found only {} commands", leaves.len());
    let missing: Vec<String> = leaves
        .iter()
        .filter(|(_, t)| !t.contains("Example: subctl "))
        .map(|(p, _)| p.join(" "))
        .collect();
    assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    for (path, text) in &leaves {
        let summary = text.lines().next().unwrap_or_default();
        assert!(summary.len() > 10, "subctl {} has no description", path.join(" "));
    }
}
