//! The examples as a newcomer runs them: each is started as a child process on a free
//! loopback port and driven over the socket through the flows the README shows, asserting
//! every status and header it shows.
//!
//! `cargo test` builds the examples next to this test binary (`target/<profile>/examples/`).

// The axum example also needs the issuer and the axum extractors.
#[cfg(all(feature = "issuer", feature = "axum"))]
mod axum_orders;
mod tonic_orders;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings the examples read from the environment that a developer's shell or
/// `scripts/test.sh` may have set; every run starts without them unless a test sets them.
const INHERITED: [&str; 9] = [
    "TOLLGATE_POSTGRES_URL",
    "TOLLGATE_REDIS_URL",
    "TOLLGATE_API_KEYS",
    "TOLLGATE_DEMO_KEY",
    "TOLLGATE_JWKS_URL",
    "TOLLGATE_RATE_LIMIT",
    "TOLLGATE_OIDC_ISSUER",
    "TOLLGATE_OIDC_AUDIENCE",
    "TOLLGATE_OIDC_CA",
];

/// A running example; killed when dropped.
pub(crate) struct Example {
    child: Child,
    output: Arc<Mutex<String>>,
    addr: SocketAddr,
}

impl Example {
    /// Starts example `name` on a free port with `env`, and waits for its "ready" line.
    ///
    /// The port is free when it is chosen, but something else may bind it before the example
    /// does (any outgoing connection on this machine takes an ephemeral port): the example then
    /// exits saying "Address already in use", and it is started again on another port, up to
    /// five times.
    pub(crate) fn start(name: &str, env: &[(&str, &str)]) -> Self {
        const TRIES: usize = 5;
        for attempt in 1..=TRIES {
            let mut example = Self::spawn(name, env);
            match example.try_wait_for("ready on", Duration::from_secs(60)) {
                Ok(()) => return example,
                Err(why) if attempt < TRIES && why.contains("Address already in use") => {
                    eprintln!("{name}: its port was taken before it bound it; starting it again");
                }
                Err(why) => panic!("{why}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn spawn(name: &str, env: &[(&str, &str)]) -> Self {
        let addr = free_port();
        let mut command = Command::new(binary(name));
        for var in INHERITED {
            command.env_remove(var);
        }
        command
            .env("TOLLGATE_ADDR", addr.to_string())
            .env("RUST_LOG", "info,tollgate=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start the example");
        let output = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), &output);
        collect(child.stderr.take().unwrap(), &output);
        Self {
            child,
            output,
            addr,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything the example printed so far (stdout and stderr).
    pub(crate) fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle`; panics with the output when the example
    /// exits or `timeout` passes first.
    pub(crate) fn wait_for(&mut self, needle: &str, timeout: Duration) {
        if let Err(why) = self.try_wait_for(needle, timeout) {
            panic!("{why}");
        }
    }

    /// Waits until the output contains `needle`; says why, with the output, when the example
    /// exits or `timeout` passes first.
    fn try_wait_for(&mut self, needle: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.output().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // let the readers drain
                return Err(format!(
                    "the example exited ({status}) before printing {needle:?}:\n{}",
                    self.output()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no {needle:?} from the example within {timeout:?}:\n{}",
                    self.output()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Example {
    /// Sends SIGTERM (a graceful shutdown) and waits up to 10 s for the example to exit;
    /// returns whether it exited successfully.
    pub(crate) fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // let the readers drain
                return status.success();
            }
            assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs example `name` with `env` until it exits (at most 60 s); returns whether it
/// succeeded, and its output.
pub(crate) fn run_to_end(name: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(binary(name));
    for var in INHERITED {
        command.env_remove(var);
    }
    // A free port, so an example that wrongly starts serving is caught by the timeout below
    // rather than colliding with a developer's server.
    let addr = free_port().to_string();
    let mut child = command
        .env("TOLLGATE_ADDR", &addr)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the example");
    let output = Arc::new(Mutex::new(String::new()));
    collect(child.stdout.take().unwrap(), &output);
    collect(child.stderr.take().unwrap(), &output);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(100)); // let the readers drain
    let output = output.lock().unwrap().clone();
    let status = status.unwrap_or_else(|| panic!("{name} did not exit within 60 s:\n{output}"));
    (status.success(), output)
}

/// `target/<profile>/examples/<name>`, beside this test binary's `deps/` folder.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().join("../examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let directions = format!(
        "run the tests with `cargo test --all-features` (without `--test`, which builds the \
         examples too) or build it with `cargo build --all-features --example {name}`"
    );
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("example binary {} is missing: {directions}", path.display()));
    // `cargo test --test integration` builds no example, and a target directory shared by
    // several checkouts may hold another one's build: check the sources cargo recorded.
    let recorded = std::fs::read_to_string(dir.join(format!("{name}.d"))).unwrap_or_default();
    let ours = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for source in recorded.split_whitespace().skip(1).map(PathBuf::from) {
        let example_source = source.components().any(|c| c.as_os_str() == "examples");
        if !example_source || !source.is_absolute() {
            continue;
        }
        assert!(
            source.starts_with(&ours),
            "example binary {} was built from another checkout ({}): {directions}",
            path.display(),
            source.display()
        );
        let modified = std::fs::metadata(&source).and_then(|m| m.modified());
        assert!(
            modified.is_ok_and(|m| m <= built),
            "example binary {} is older than {}: {directions}",
            path.display(),
            source.display()
        );
    }
    path
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn collect(stream: impl std::io::Read + Send + 'static, output: &Arc<Mutex<String>>) {
    let output = Arc::clone(output);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut output = output.lock().unwrap();
            output.push_str(&line);
            output.push('\n');
        }
    });
}

/// An HS256 token from the test's own "issuer", for examples configured with its secret.
pub(crate) fn hs256_token(secret: &str, claims: &serde_json::Value) -> String {
    // With both crypto backends enabled (`--all-features`), jsonwebtoken needs to be told.
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
