use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cim::cli::Cli::parse();
    cim::cli::init_tracing();
    cim::cli::exit_code(cim::cli::run(cli).await)
}
