//! hashicorp/go-plugin's side of the conversation, as a plugin: check the magic cookie, agree
//! on protocol 6, listen (with AutoMTLS when Terraform asks), print the one handshake line on
//! stdout, serve until Terraform calls `GRPCController.Shutdown` (or SIGTERM), and clean up.
//! SIGINT (Ctrl-C on Windows) is ignored: Terraform forwards it to the process group and then
//! asks the provider to stop itself.
//!
//! Where it listens is go-plugin's rule: a fresh unix socket in `PLUGIN_UNIX_SOCKET_DIR` (or the
//! temporary directory) on unix; on Windows TCP on 127.0.0.1, on the first free port from
//! `PLUGIN_MIN_PORT` to `PLUGIN_MAX_PORT` (both default to 0: any free port).

use std::io::Write;
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Server;
use tonic::transport::server::{Connected, Router};
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
#[cfg(unix)]
struct SocketFile(PathBuf);

#[cfg(unix)]
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

#[cfg(unix)]
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

/// A unix socket, removed when the guard drops. Returns the stream of connections, the
/// handshake's network and address fields, and the guard.
#[cfg(unix)]
fn listen() -> Result<
    (
        tokio_stream::wrappers::UnixListenerStream,
        &'static str,
        String,
        SocketFile,
    ),
    String,
> {
    let path = socket_path();
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    let address = path.display().to_string();
    Ok((
        tokio_stream::wrappers::UnixListenerStream::new(listener),
        "unix",
        address,
        SocketFile(path),
    ))
}

/// TCP on 127.0.0.1 (go-plugin's listener on Windows).
#[cfg(not(unix))]
fn listen() -> Result<
    (
        tokio_stream::wrappers::TcpListenerStream,
        &'static str,
        String,
        (),
    ),
    String,
> {
    let listener = tcp_listener(
        std::env::var("PLUGIN_MIN_PORT").ok().as_deref(),
        std::env::var("PLUGIN_MAX_PORT").ok().as_deref(),
    )?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen: {e}"))?;
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(|e| format!("cannot listen: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot listen: {e}"))?
        .to_string();
    Ok((
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        "tcp",
        address,
        (),
    ))
}

/// The first port of `min..=max` (go-plugin's `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`, unset or
/// empty = 0) free on 127.0.0.1; 0 lets the system choose.
#[cfg_attr(unix, allow(dead_code))] // unix listens on a socket; tested here all the same
fn tcp_listener(min: Option<&str>, max: Option<&str>) -> Result<std::net::TcpListener, String> {
    let port = |name: &str, value: Option<&str>| -> Result<u16, String> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(0),
            Some(v) => v
                .parse()
                .map_err(|e| format!("{name}={v:?} is not a port number: {e}")),
        }
    };
    let (min, max) = (port("PLUGIN_MIN_PORT", min)?, port("PLUGIN_MAX_PORT", max)?);
    if min > max {
        return Err(format!(
            "PLUGIN_MIN_PORT ({min}) is greater than PLUGIN_MAX_PORT ({max})"
        ));
    }
    (min..=max)
        .find_map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
        .ok_or_else(|| format!("no free TCP port on 127.0.0.1 from {min} to {max}"))
}

/// SIGTERM stops like Shutdown; SIGINT is ignored (installing a handler replaces the default).
#[cfg(unix)]
fn on_signals(stop: watch::Sender<bool>) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { let _ = stop.send(true); break; }
                _ = int.recv() => {}
            }
        }
    });
    Ok(())
}

/// Ctrl-C is ignored (a registered handler replaces the default exit); closing the console
/// stops like Shutdown.
#[cfg(windows)]
fn on_signals(stop: watch::Sender<bool>) -> Result<(), String> {
    use tokio::signal::windows::{ctrl_c, ctrl_close};
    let mut int = ctrl_c().map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    let mut close = ctrl_close().map_err(|e| format!("cannot handle console close: {e}"))?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = close.recv() => { let _ = stop.send(true); break; }
                _ = int.recv() => {}
            }
        }
    });
    Ok(())
}

/// Serves the router on `incoming` (TLS when `tls` is given) until `stopped`.
async fn serve_on<S, IO, E>(
    router: Router,
    incoming: S,
    tls: Option<tls::ServerTls>,
    stopped: impl std::future::Future<Output = ()>,
) -> Result<(), String>
where
    S: Stream<Item = Result<IO, E>> + Unpin + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
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

    let (incoming, network, address, _cleanup) = listen()?;

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

    on_signals(shutdown_tx.clone())?;

    let cert_field = tls
        .as_ref()
        .map(|t| base64::engine::general_purpose::STANDARD_NO_PAD.encode(&t.cert_der))
        .unwrap_or_default();
    let line = format!("1|{PROTOCOL_VERSION}|{network}|{address}|grpc|{cert_field}\n");

    let mut rx = shutdown_rx.clone();
    let stopped = async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let serving = serve_on(router, incoming, tls, stopped);

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

#[cfg(test)]
mod tests {
    use super::tcp_listener;

    #[test]
    fn tcp_listener_follows_go_plugins_port_range() {
        let any = tcp_listener(None, Some("")).unwrap();
        let addr = any.local_addr().unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

        // The range's first port is taken: the next one is used.
        let first = addr.port();
        if let Some(next) = first.checked_add(1) {
            let (lo, hi) = (first.to_string(), next.to_string());
            match tcp_listener(Some(&lo), Some(&hi)) {
                Ok(l) => assert_eq!(l.local_addr().unwrap().port(), next),
                // Someone else holds `next` too: the error names the range.
                Err(e) => assert!(e.contains(&format!("from {first} to {next}")), "{e}"),
            }
        }
        let e = tcp_listener(Some(&first.to_string()), Some(&first.to_string())).unwrap_err();
        assert_eq!(
            e,
            format!("no free TCP port on 127.0.0.1 from {first} to {first}")
        );

        let e = tcp_listener(Some("30000"), Some("20000")).unwrap_err();
        assert!(e.contains("greater than PLUGIN_MAX_PORT"), "{e}");
        let e = tcp_listener(Some("x"), None).unwrap_err();
        assert!(
            e.starts_with("PLUGIN_MIN_PORT=\"x\" is not a port number"),
            "{e}"
        );
    }
}
