//! `stockstream serve`: the REST API, live events and dashboard over a store.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use stockstream_pipeline::{stop_on_signal, AnalyticsStage, Stats};
use stockstream_server::{AppState, Hub};
use stockstream_store::Store;
use tokio::sync::watch;

use crate::cli::StoreArgs;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on; loopback unless told otherwise.
    #[arg(long, env = "STOCKSTREAM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Seconds a client has to send a request header, and a connection may
    /// stay idle between requests.
    #[arg(long, env = "STOCKSTREAM_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Connections open at once (fewer if the open-file limit is lower); over
    /// it, the oldest connection that sent no whole request is closed.
    #[arg(long, env = "STOCKSTREAM_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Clients of the live event stream at once; over it, 503.
    #[arg(long, env = "STOCKSTREAM_MAX_SUBSCRIBERS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_subscribers: u64,
}

impl ServeArgs {
    fn limits(&self) -> stockstream_server::Limits {
        stockstream_server::Limits {
            header_timeout: std::time::Duration::from_secs(self.header_timeout),
            max_connections: self.max_connections as usize,
            max_subscribers: self.max_subscribers as usize,
        }
    }
}

#[derive(Args, Debug)]
pub struct ServeCommandArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Starts serving in the background; returns the bound address.
pub async fn start(
    args: &ServeArgs,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    analytics: Arc<AnalyticsStage>,
    stats: Arc<Stats>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<anyhow::Result<()>>)> {
    let bind = args.bind;
    let listener =
        tokio::net::TcpListener::bind(bind).await.map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(store, hub, analytics, Arc::new(move || stats.prometheus())).with_limits(args.limits());
    let mut stop = stop;
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    Ok((addr, tokio::spawn(stockstream_server::serve(listener, state, shutdown))))
}

pub async fn serve_command(args: ServeCommandArgs) -> anyhow::Result<()> {
    let store = args.store.open_existing().await?;
    let stop = stop_on_signal();
    let (hub, analytics) = (Arc::new(Hub::default()), Arc::new(AnalyticsStage::default()));
    let (addr, server) = start(&args.serve, store, hub, analytics, Arc::new(Stats::default()), stop).await?;
    println!("serving    http://{addr}/ (store {})", args.store.describe());
    server.await?
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ServeArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn listens_on_loopback_unless_told_otherwise() {
        let default = Cli::try_parse_from(["serve"]).unwrap().serve.bind;
        assert!(default.ip().is_loopback(), "{default}");
        let told = Cli::try_parse_from(["serve", "--bind", "0.0.0.0:9000"]).unwrap().serve.bind;
        assert!(told.ip().is_unspecified());
    }
}
