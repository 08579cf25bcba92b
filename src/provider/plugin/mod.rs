//! Terraform's plugin protocol 6, served by the project itself on tonic + prost: the go-plugin
//! handshake and AutoMTLS ([`go_plugin`], [`tls`]), the gRPC service ([`server`]), values and
//! their msgpack form ([`value`]), schemas ([`schema`]), diagnostics ([`diag`]), and the typed
//! traits the provider's resources implement ([`resource`]). Nothing here knows about AWS or
//! about ebssnap's resources.

pub mod diag;
pub mod go_plugin;
pub mod resource;
pub mod schema;
pub mod server;
pub mod tls;
pub mod value;

/// Code generated from `proto/` at build time.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("tfplugin6");
    pub mod go_plugin {
        tonic::include_proto!("plugin");
    }
}

pub use diag::{AttributePath, Diagnostics};
pub use value::Value;
