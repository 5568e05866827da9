//! Accepting connections within limits: a client that opens sockets and never
//! finishes a request cannot hold the server's file descriptors, and `/healthz`
//! answers while it tries.
//!
//! - Every connection must send a whole request header within
//!   [`Limits::header_timeout`]; the same timer closes a keep-alive connection
//!   idle that long between requests (hyper starts it again after a response).
//! - At most [`Limits::max_connections`] connections are open, fewer when the
//!   process may open fewer files. A connection over the cap closes the oldest
//!   one that has not sent a whole request yet; when every open one has, the
//!   newcomer is closed.
//! - The server-sent event stream has its own cap, [`Limits::max_subscribers`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{watch, Notify};

/// How much a server lets its clients hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time allowed for a request header, and for a connection idle between requests.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Clients of the live event stream at once.
    pub max_subscribers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { header_timeout: Duration::from_secs(10), max_connections: 1024, max_subscribers: 256 }
    }
}

/// File descriptors kept free of connections: the store's files, the bus's
/// sockets, the runtime's own.
const RESERVED_FILES: usize = 64;

/// The connection cap this process can honour: the configured one, or fewer
/// when its open-file limit is lower.
pub fn connection_cap(configured: usize) -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct passed.
    let files = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
        0 => usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    configured.min(files.saturating_sub(RESERVED_FILES)).max(1)
}

/// The open connections, oldest first.
#[derive(Default)]
struct Open {
    next: u64,
    by_age: BTreeMap<u64, Slot>,
}

struct Slot {
    /// A whole request header arrived on it.
    requested: Arc<AtomicBool>,
    close: Arc<Notify>,
}

/// A log line at most every few seconds for a limit that is hit again and again.
struct Throttled(Mutex<Option<Instant>>);

impl Throttled {
    fn warn(&self, message: impl FnOnce() -> String) {
        let mut last = self.0.lock().expect("log throttle");
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
            *last = Some(Instant::now());
            tracing::warn!("{}", message());
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes; then
/// stops accepting, lets requests in flight finish (5 s at most) and returns.
pub async fn serve_limited(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = connection_cap(limits.max_connections);
    if cap < limits.max_connections {
        tracing::info!("at most {cap} connections: the open-file limit leaves no room for more");
    }
    let open = Arc::new(Mutex::new(Open::default()));
    let (stopping, stopped) = watch::channel(false);
    let full = Throttled(Mutex::new(None));
    let accept_failed = Throttled(Mutex::new(None));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Events are small writes: sent at once, not held back
                    // (Nagle) until the client's delayed acknowledgement.
                    let _ = stream.set_nodelay(true);
                    stream
                }
                Err(e) => {
                    // Out of file descriptors, say: wait for connections to close.
                    accept_failed.warn(|| format!("cannot accept a connection: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let (id, requested, close) = {
            let mut open = open.lock().expect("connections");
            if open.by_age.len() >= cap {
                let oldest_silent =
                    open.by_age.iter().find(|(_, s)| !s.requested.load(Ordering::Relaxed)).map(|(id, _)| *id);
                match oldest_silent {
                    Some(id) => {
                        full.warn(|| format!("connection limit of {cap} reached: closing the oldest connections that sent no whole request"));
                        if let Some(slot) = open.by_age.remove(&id) {
                            slot.close.notify_one();
                        }
                    }
                    None => {
                        full.warn(|| {
                            format!("connection limit of {cap} reached, every connection busy: closing new ones")
                        });
                        continue;
                    }
                }
            }
            let id = open.next;
            open.next += 1;
            let (requested, close) = (Arc::new(AtomicBool::new(false)), Arc::new(Notify::new()));
            open.by_age.insert(id, Slot { requested: requested.clone(), close: close.clone() });
            (id, requested, close)
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| {
            requested.store(true, Ordering::Relaxed);
            tower::ServiceExt::oneshot(app.clone(), request)
        });
        let (open, mut stopped) = (open.clone(), stopped.clone());
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = close.notified() => {}
                _ = async { stopped.wait_for(|s| *s).await.map(|_| ()) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
                }
            }
            open.lock().expect("connections").by_age.remove(&id);
        });
    }
    let _ = stopping.send(true);
    // Wait for the connections to finish what they were doing.
    let deadline = Instant::now() + Duration::from_secs(6);
    while !open.lock().expect("connections").by_age.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
