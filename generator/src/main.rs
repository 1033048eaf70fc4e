use std::process::ExitCode;

fn main() -> ExitCode {
    aiperf_gen::cli::main(std::env::args_os())
}
