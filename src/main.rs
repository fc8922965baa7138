use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = rollcall::cli::Cli::parse();
    match rollcall::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One readable line (with its causes), not a panic backtrace.
            eprintln!("rollcall: {err:#}");
            ExitCode::FAILURE
        }
    }
}
