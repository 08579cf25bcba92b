//! A private `moto_server` per test, on a free loopback port, stopped on drop.
//!
//! Under `CI=true` a missing emulator fails the test; locally the test is skipped with a reason.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::Credentials;
use ebssnap::aws::{Clients, ConnectOptions, config_loader};

pub const REGION: &str = "us-east-1";

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The emulator binary: `EBSSNAP_MOTO_SERVER` (set by the Makefile to its pinned venv) or PATH.
fn moto_binary() -> Option<String> {
    if let Ok(p) = std::env::var("EBSSNAP_MOTO_SERVER") {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

impl Moto {
    /// Starts moto, or returns None (skip) when it is missing outside CI.
    pub fn start() -> Option<Moto> {
        let Some(bin) = moto_binary() else {
            if in_ci() {
                panic!(
                    "moto_server not found under CI=true: run `make deps` (or set EBSSNAP_MOTO_SERVER)"
                );
            }
            eprintln!("SKIP: moto_server not found; run `make deps` to install it");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port());
        let port = port.expect("no free loopback port");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let moto = Moto { child, port };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Clients the runner would build, with the emulator's static credentials.
    pub async fn clients(&self) -> Clients {
        clients_at(&self.endpoint()).await
    }

    /// The same environment with every service at `endpoint` (a proxy in front of this moto).
    pub fn env_at(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        for (k, v) in env.iter_mut() {
            if *k == "AWS_ENDPOINT_URL" {
                *v = endpoint.to_string();
            }
        }
        env
    }

    /// Environment for a child process (the CLI or the Lambda bootstrap) talking to this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }
}

/// The SDK config of the runner at `endpoint`, with the emulator's static credentials.
async fn sdk_at(endpoint: &str) -> aws_config::SdkConfig {
    config_loader(&ConnectOptions {
        region: Some(REGION.into()),
        endpoint_url: Some(endpoint.to_string()),
        max_attempts: Some(2),
        ..Default::default()
    })
    .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
    .load()
    .await
}

/// The same clients, with Lambda at `endpoint` (a fake Invoke endpoint; moto cannot run one).
pub async fn with_lambda_at(mut c: Clients, endpoint: &str) -> Clients {
    c.lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&sdk_at(endpoint).await)
            .interceptor(c.calls.clone())
            .build(),
    );
    c
}

/// Clients with the emulator's static credentials at `endpoint` (moto, or a proxy in front).
pub async fn clients_at(endpoint: &str) -> Clients {
    Clients::from_sdk_config(&sdk_at(endpoint).await)
}
