use std::process::ExitCode;

fn main() -> ExitCode {
    latchkey::main(std::env::args_os())
}
