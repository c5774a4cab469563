use clap::Parser;

/// Many small, short-lived allocations (JSON trees of events, rows, requests) across the runtime's
/// threads: mimalloc serves them from per-thread pages where glibc's malloc spent a fifth of a
/// projection rebuild's time (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cim::cli::Cli::parse();
    cim::cli::init_tracing();
    cim::cli::exit_code(cim::cli::run(cli).await)
}
