//! `subctl`: the command line for deploying and operating subsea (Submariner-compatible verbs).

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "subctl",
    version,
    about = "Deploy and operate subsea, multi-cluster networking compatible with Submariner"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the version of subctl.
    ///
    /// Example: subctl version
    Version,
}

fn main() {
    match Cli::parse().command {
        Command::Version => println!("subctl version: v{}", env!("CARGO_PKG_VERSION")),
    }
}
