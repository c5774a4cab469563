use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cim::cli::Cli::parse();
    cim::cli::init_tracing();
    match cim::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
