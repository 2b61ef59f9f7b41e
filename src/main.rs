use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    mmsr_bench::openmp::apply_wait_policy();
    mmsr_bench::allocator::tune();
    mmsr_bench::vml::initialise_on_one_thread();
    mmsr_bench::guard::install_hook();
    let cli = mmsr_bench::cli::Cli::parse();
    match mmsr_bench::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
