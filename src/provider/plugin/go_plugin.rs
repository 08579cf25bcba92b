//! hashicorp/go-plugin's side of the conversation, as a plugin: check the magic cookie, agree
//! on protocol 6, listen on a fresh unix socket (with AutoMTLS when Terraform asks), print the
//! one handshake line on stdout, serve until Terraform calls `GRPCController.Shutdown` (or
//! SIGTERM), and remove the socket. SIGINT is ignored: Terraform forwards Ctrl-C to the process
//! group and then asks the provider to stop itself.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use super::proto::{self, provider_server::ProviderServer};
use super::server::{ProviderService, Registry};
use super::tls;

/// The cookie Terraform sets so a provider knows it was started by Terraform.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const PROTOCOL_VERSION: &str = "6";

/// Removes the socket file when serving ends, however it ends.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Controller {
    shutdown: watch::Sender<bool>,
}

#[tonic::async_trait]
impl proto::go_plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _r: Request<proto::go_plugin::Empty>,
    ) -> Result<Response<proto::go_plugin::Empty>, Status> {
        let _ = self.shutdown.send(true);
        Ok(Response::new(proto::go_plugin::Empty {}))
    }
}

/// The stdio stream: empty (the provider logs to stderr itself), open until shutdown so that
/// it does not hold a graceful stop.
struct Stdio {
    shutdown: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl proto::go_plugin::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = tonic::codegen::BoxStream<proto::go_plugin::StdioData>;
    async fn stream_stdio(
        &self,
        _r: Request<proto::go_plugin::Empty>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        let mut rx = self.shutdown.clone();
        let stream = futures::stream::once(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        })
        .filter_map(|()| None);
        Ok(Response::new(Box::pin(stream)))
    }
}

fn socket_path() -> PathBuf {
    let dir = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    dir.join(format!("plugin{}{nanos:08x}", std::process::id()))
}

/// Serves `registry` to Terraform. Returns when Terraform is done with the plugin.
pub async fn serve(registry: Registry) -> Result<(), String> {
    if std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        return Err(
            "This binary is a plugin. These are not meant to be executed directly. \
                    Please execute the program that consumes these plugins, which will load any \
                    plugins automatically"
                .into(),
        );
    }
    if let Ok(offered) = std::env::var("PLUGIN_PROTOCOL_VERSIONS")
        && !offered.split(',').any(|v| v.trim() == PROTOCOL_VERSION)
    {
        return Err(format!(
            "Terraform offers plugin protocol versions {offered}; this provider speaks {PROTOCOL_VERSION} (Terraform 1.0 or later)"
        ));
    }

    let path = socket_path();
    let listener = UnixListener::bind(&path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    let _cleanup = SocketFile(path.clone());

    let client_cert = std::env::var("PLUGIN_CLIENT_CERT").unwrap_or_default();
    let tls = if client_cert.trim().is_empty() {
        None
    } else {
        Some(tls::server_tls(&client_cert)?)
    };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (mut health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let service = ProviderService {
        registry: Arc::new(registry),
        stop: Arc::new(tokio::sync::Notify::new()),
    };
    let router = Server::builder()
        .add_service(ProviderServer::new(service))
        .add_service(
            proto::go_plugin::grpc_controller_server::GrpcControllerServer::new(Controller {
                shutdown: shutdown_tx.clone(),
            }),
        )
        .add_service(proto::go_plugin::grpc_stdio_server::GrpcStdioServer::new(
            Stdio {
                shutdown: shutdown_rx.clone(),
            },
        ))
        .add_service(health_service);

    // SIGTERM stops like Shutdown; SIGINT is ignored (installing a handler replaces the default).
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    let tx = shutdown_tx.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { let _ = tx.send(true); break; }
                _ = int.recv() => {}
            }
        }
    });

    let cert_field = tls
        .as_ref()
        .map(|t| base64::engine::general_purpose::STANDARD_NO_PAD.encode(&t.cert_der))
        .unwrap_or_default();
    let line = format!(
        "1|{PROTOCOL_VERSION}|unix|{}|grpc|{cert_field}\n",
        path.display()
    );

    let mut rx = shutdown_rx.clone();
    let stopped = async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let incoming = UnixListenerStream::new(listener);
    let serving = async {
        match tls {
            None => router
                .serve_with_incoming_shutdown(incoming, stopped)
                .await
                .map_err(|e| format!("plugin server: {e}")),
            Some(t) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(t.config);
                // Handshakes run concurrently; a failed one is logged and dropped.
                let (conn_tx, conn_rx) = tokio::sync::mpsc::channel(16);
                let mut incoming = incoming;
                tokio::spawn(async move {
                    while let Some(stream) = incoming.next().await {
                        let Ok(stream) = stream else { continue };
                        let acceptor = acceptor.clone();
                        let conn_tx = conn_tx.clone();
                        tokio::spawn(async move {
                            match acceptor.accept(stream).await {
                                Ok(tls) => {
                                    let _ = conn_tx.send(Ok::<_, std::io::Error>(tls)).await;
                                }
                                Err(e) => tracing::warn!("plugin TLS handshake failed: {e}"),
                            }
                        });
                    }
                });
                router
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::ReceiverStream::new(conn_rx),
                        stopped,
                    )
                    .await
                    .map_err(|e| format!("plugin server: {e}"))
            }
        }
    };

    // The handshake line is the only thing this process ever writes to stdout.
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write the plugin handshake: {e}"))?;
    drop(out);

    // A connection that does not close after Shutdown must not keep the process alive.
    let mut rx = shutdown_rx;
    tokio::select! {
        r = serving => r,
        () = async {
            let _ = rx.wait_for(|stop| *stop).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        } => Ok(()),
    }
}
