use std::process::ExitCode;

fn main() -> ExitCode {
    latchkey::cli::main(std::env::args_os())
}
