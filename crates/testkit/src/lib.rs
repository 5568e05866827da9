//! Real servers for tests, on free loopback ports, stopped when dropped. They are
//! installed by `scripts/setup.sh`; a missing one fails the test loudly.
#![warn(missing_docs)]

pub mod hostile;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port for a server a test starts, reserved for this process until it
/// exits. A port the kernel handed out and took back (bind to port 0, then
/// close) may be given to any outgoing connection before the server binds
/// it; so the port is taken below the kernel's ephemeral range, where no
/// connection's local port falls, and held by a lock file that the other
/// test processes respect (`/tmp/stockstream-test-ports/PORT`).
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let (low, _) = ephemeral_range();
    let span = 10_000u16.min(low.saturating_sub(1_024));
    let first = low - span;
    let dir = std::env::temp_dir().join("stockstream-test-ports");
    std::fs::create_dir_all(&dir).expect("a directory for port locks");
    let mut held = HELD.lock().expect("port lock list");
    // Each process starts elsewhere in the span: fewer collisions to skip.
    let start = (std::process::id() as u64 * 7_919 + held.len() as u64 * 13) % span as u64;
    for i in 0..span as u64 {
        let port = first + ((start + i) % span as u64) as u16;
        let Ok(file) = std::fs::File::create(dir.join(port.to_string())) else { continue };
        // flock(2), held while the file stays open (until the process exits).
        use std::os::fd::AsRawFd;
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            held.push(file);
            return port;
        }
    }
    panic!("no free port in {first}..{low}");
}

/// The kernel's range of ports for outgoing connections (Linux), or its default.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<_> = text.lines().rev().take(30).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Finds an installed program: `$ENV`, then `PATH`, then `~/.cargo/bin`.
fn find_program(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo/bin").join(name);
    assert!(home.is_file(), "{name} is not installed: run scripts/setup.sh (or set {env})");
    home
}

/// A server process: killed when dropped.
struct Process(Option<Child>);

impl Process {
    /// Starts `cmd` with its output in `log` and waits for it to listen on `port`.
    fn start(mut cmd: Command, log: &Path, port: u16, name: &str, within: Duration) -> Self {
        let out = std::fs::File::create(log).expect("create server log");
        let err = out.try_clone().expect("clone log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let process = Process(Some(child));
        assert!(
            wait_for_port(port, within),
            "{name} did not listen on port {port} within {within:?}; its log:\n{}",
            log_tail(log)
        );
        process
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Storage of a Tansu broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TansuStorage {
    /// An SQLite file: survives a broker restart.
    Sqlite,
    /// In memory: fastest, gone on restart.
    Memory,
}

/// A Tansu broker (Kafka protocol) on a free loopback port.
pub struct Tansu {
    process: Process,
    /// Its loopback port.
    pub port: u16,
    storage: TansuStorage,
    dir: tempfile::TempDir,
}

impl Tansu {
    /// Starts a broker with this storage on a free port; panics (failing the test) when it cannot.
    pub fn start(storage: TansuStorage) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the broker");
        let mut t = Tansu { process: Process(None), port: free_port(), storage, dir };
        t.launch();
        t
    }

    fn launch(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let engine = match self.storage {
            // Tansu reads `sqlite://FILE` relative to its working directory.
            TansuStorage::Sqlite => "sqlite://tansu.db".to_string(),
            TansuStorage::Memory => "memory://tansu/".to_string(),
        };
        let mut cmd = Command::new(find_program("tansu", "TANSU"));
        cmd.current_dir(self.dir.path()).args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            &engine,
        ]);
        self.process =
            Process::start(cmd, &self.dir.path().join("tansu.log"), self.port, "Tansu", Duration::from_secs(30));
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL) without starting it again.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts a killed broker again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

/// AWS's DynamoDB Local on a free loopback port.
pub struct DynamoLocal {
    process: Process,
    /// Its loopback port.
    pub port: u16,
    /// `Some` when started with `-dbPath` (data survives a restart).
    data: Option<PathBuf>,
    dir: tempfile::TempDir,
}

/// Where `scripts/setup.sh` installs tools: `$STOCKSTREAM_TOOLS` or
/// `~/.cache/stockstream`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("STOCKSTREAM_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/stockstream"))
}

/// Where `scripts/setup.sh` puts DynamoDB Local.
pub fn dynamodb_local_home() -> PathBuf {
    if let Some(p) = std::env::var_os("DYNAMODB_LOCAL_HOME") {
        return PathBuf::from(p);
    }
    tools_dir().join("dynamodb/node_modules/amplify-dynamodb-simulator/emulator")
}

impl DynamoLocal {
    /// In memory: fastest.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// With its data in files, so that a restart keeps it.
    pub fn start_persistent() -> Self {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for DynamoDB Local");
        let data = persistent.then(|| dir.path().join("data"));
        if let Some(d) = &data {
            std::fs::create_dir_all(d).unwrap();
        }
        let mut d = DynamoLocal { process: Process(None), port: free_port(), data, dir };
        d.launch();
        d
    }

    fn launch(&mut self) {
        let home = dynamodb_local_home();
        assert!(
            home.join("DynamoDBLocal.jar").is_file(),
            "DynamoDB Local is not installed at {}: run scripts/setup.sh",
            home.display()
        );
        let mut cmd = Command::new("java");
        cmd.current_dir(&home).args(["-Djava.library.path=DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar"]);
        match &self.data {
            Some(path) => cmd.args(["-dbPath", &path.display().to_string()]),
            None => cmd.arg("-inMemory"),
        };
        // One database whatever the credentials and region of the client, so
        // that boto3 and the Rust SDK see the same tables.
        cmd.args(["-sharedDb", "-port", &self.port.to_string()]);
        let log = self.dir.path().join("dynamodb.log");
        self.process = Process::start(cmd, &log, self.port, "DynamoDB Local", Duration::from_secs(60));
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (a crash, for fault tests).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts a stopped server again on the same port (and data, if persistent).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

/// Runs a Python script with arguments; panics with its output when it fails.
pub fn python(script: &Path, args: &[&str]) -> String {
    let out = Command::new("python3").arg(script).args(args).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ports handed out are outside the range outgoing connections take
    /// theirs from, and never twice, whichever thread asks.
    #[test]
    fn ports_are_reserved_outside_the_ephemeral_range_and_never_twice() {
        let (low, high) = ephemeral_range();
        let asked: Vec<u16> = std::thread::scope(|s| {
            let askers: Vec<_> = (0..4).map(|_| s.spawn(|| (0..25).map(|_| free_port()).collect::<Vec<_>>())).collect();
            askers.into_iter().flat_map(|a| a.join().unwrap()).collect()
        });
        assert!(asked.iter().all(|p| !(low..=high).contains(p)), "a port in the ephemeral range {low}-{high}");
        let mut distinct = asked.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), asked.len(), "a port handed out twice");
        // Free for a server to bind.
        assert!(TcpListener::bind(("127.0.0.1", asked[0])).is_ok());
    }
}
