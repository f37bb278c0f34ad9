//! Opaque TCP forwarding.

use crate::{
    http::client::{ConnectError, connect_mesh},
    tls::MeshTls,
};
use std::{net::SocketAddr, time::Duration};
use tokio::io::{AsyncRead, AsyncWrite};

/// Why an opaque connection ended badly.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The target did not accept.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The copy failed midway.
    #[error("forwarding to {target} failed: {source}")]
    Copy {
        /// The target.
        target: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// Copies bytes both ways between `client` and `target` until both sides are done. A side's
/// EOF is passed on as a write shutdown to the other, so half-closed protocols keep working.
/// With `tls`, the target is a meshed endpoint that must prove the given identity.
/// Returns the bytes sent to and received from the target.
pub async fn forward<I>(
    mut client: I,
    target: SocketAddr,
    connect_timeout: Duration,
    tls: Option<(&MeshTls, &str)>,
) -> Result<(u64, u64), ForwardError>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut server = connect_mesh(target, connect_timeout, tls).await?;
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut server, 16 * 1024, 16 * 1024)
        .await
        .map_err(|source| ForwardError::Copy { target, source })
}
