//! `forkless-server [CONFIG-FILE] [--<option> <value>]...`: the same server as `forkless server`,
//! as a binary of its own (named like `redis-server`; the crate's tests spawn it and kill it).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match forkless_server::main_with_args(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forkless-server: {e}");
            ExitCode::FAILURE
        }
    }
}
