//! The server's command-line options (flags, `STOCKSTREAM_*` variables, or
//! `stockstream.toml` keys of the same names) and starting it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use stockstream_pipeline::{AnalyticsStage, Stats};
use stockstream_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{AppState, Hub, Limits};

/// Where to listen, and the limits that keep one client from starving others.
#[derive(clap::Args, Debug, Clone)]
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
    /// The limits asked for.
    pub fn limits(&self) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(self.header_timeout),
            max_connections: self.max_connections as usize,
            max_subscribers: self.max_subscribers as usize,
        }
    }

    /// Starts serving in the background until `stop` turns true; returns the
    /// bound address.
    pub async fn start(
        &self,
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        analytics: Arc<AnalyticsStage>,
        stats: Arc<Stats>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
        let bind = self.bind;
        let listener =
            tokio::net::TcpListener::bind(bind).await.map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
        let addr = listener.local_addr()?;
        let state =
            AppState::new(store, hub, analytics, Arc::new(move || stats.prometheus())).with_limits(self.limits());
        let mut stop = stop;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        Ok((addr, tokio::spawn(crate::serve(listener, state, shutdown))))
    }
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
