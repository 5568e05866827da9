//! `stockstream`: a real-time stock market data pipeline in one binary.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod analyze;
mod backfill;
mod catalog;
mod config;
mod consume;
mod generate;
mod produce;
mod query;
mod report;
mod run;
mod serve;
mod summary;

#[derive(Parser)]
#[command(name = "stockstream", version, about = "A real-time stock market data pipeline", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole pipeline in one process (embedded: in-process bus, SQLite store).
    Run(Box<run::RunArgs>),
    /// Sends records (a CSV file or SYNTHETIC data) to a Kafka topic.
    Produce(produce::ProduceArgs),
    /// Consumes a Kafka topic into the store as a consumer-group member.
    Consume(consume::ConsumeCommandArgs),
    /// Downloads bars from Yahoo Finance as CSV in the original project's layout.
    Fetch(generate::FetchArgs),
    /// Writes SYNTHETIC market data (made up, not real prices) as CSV.
    Generate(generate::GenerateArgs),
    /// Indicators (SMA, EMA, RSI, MACD, Bollinger, ATR, ...) per bar, from a CSV file or the store.
    Indicators(analyze::IndicatorsArgs),
    /// Insights computed from the stored data's statistics.
    Insights(analyze::InsightsArgs),
    /// Charts (PNG, SVG) and a self-contained HTML report of the stored data.
    Report(report::ReportArgs),
    /// REST API, live events (SSE), metrics and the dashboard over the store.
    Serve(serve::ServeCommandArgs),
    /// Reads bars back from the store.
    Query(query::QueryArgs),
    /// The store's catalog of companies (`catalog rebuild`).
    Catalog(catalog::CatalogArgs),
}

fn main() -> ExitCode {
    let file = match config::load() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut command = Cli::command();
    if let Some(file) = &file {
        command = match file.apply(command) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    }
    let companies = std::env::var("STOCKSTREAM_COMPANIES").ok().or_else(|| file.as_ref()?.companies());
    if let Some(text) = companies {
        match stockstream_core::parse_companies(&text) {
            Ok(pairs) => stockstream_core::register_companies(&pairs),
            Err(e) => {
                eprintln!("error: STOCKSTREAM_COMPANIES / companies: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Output piped into `head` ends quietly when the reader goes, as `ls` does,
    // instead of a panic on the next print. Not for a command that serves:
    // its clients' sockets are written with writev (vectored writes), which
    // raises SIGPIPE when a client has gone, and the default disposition
    // would end the server. `run` prints its summary after its work is stored.
    let serves = match &cli.command {
        Command::Serve(_) => true,
        Command::Run(args) => args.serve,
        _ => false,
    };
    #[cfg(unix)]
    if !serves {
        // SAFETY: restoring a signal's default disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(*args).await,
            Command::Produce(args) => produce::produce_command(args).await,
            Command::Consume(args) => consume::consume_command(args).await,
            Command::Fetch(args) => generate::fetch(args).await,
            Command::Generate(args) => generate::generate(args),
            Command::Query(args) => query::query(args).await,
            Command::Serve(args) => serve::serve_command(args).await,
            Command::Report(args) => report::report_command(args).await,
            Command::Indicators(args) => analyze::indicators_command(args).await,
            Command::Insights(args) => analyze::insights_command(args).await,
            Command::Catalog(args) => catalog::catalog_command(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `STOCKSTREAM_LOG` (or `RUST_LOG`) picks the levels, as
/// `warn` or `info,stockstream_bus=debug`: a level, then a level per module.
fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    const DEFAULT: &str = "info,aws_config=error,aws_smithy_runtime=error";
    let asked = std::env::var("STOCKSTREAM_LOG").or_else(|_| std::env::var("RUST_LOG"));
    let filter = match asked.as_deref().unwrap_or(DEFAULT).parse::<Targets>() {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("warning: STOCKSTREAM_LOG {asked:?} is not a log filter ({e}); logging at info");
            DEFAULT.parse().expect("the default filter parses")
        }
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let format = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    tracing_subscriber::registry().with(format).with(filter).init();
}

/// The stored bars of one length (made from shorter ones where a company
/// has none of its own): the daily table without one.
pub async fn open_interval(
    store: &stockstream_store::StoreArgs,
    interval: Option<stockstream_window::BarLength>,
) -> anyhow::Result<std::sync::Arc<dyn stockstream_store::Store>> {
    let opened = store.open_existing().await?;
    Ok(match interval {
        Some(length) => stockstream_store::interval_view(opened.as_ref(), length).await?,
        None => opened,
    })
}

/// The tick stage's options for a source: a tick source needs `--bar`, a
/// source of bars refuses it.
pub fn tick_options(
    source: &dyn stockstream_core::Source,
    window: &stockstream_pipeline::WindowArgs,
) -> anyhow::Result<Option<stockstream_pipeline::TickOptions>> {
    match (source.ticks(), window.options()) {
        (true, None) => {
            anyhow::bail!("{} yields ticks: pass --bar (1s, 1m, 5m, 15m, 30m, 1h, 1d) to aggregate them", source.name())
        }
        (false, Some(_)) => anyhow::bail!("--bar aggregates ticks, and {} yields bars", source.name()),
        (_, options) => Ok(options),
    }
}
