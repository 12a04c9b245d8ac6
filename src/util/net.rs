//! Accepting connections for the servers nehr-probe runs (`serve`, the mock): the next
//! one, or `None` once `stop` is cancelled, with no spin on a failing accept.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The next connection, `TCP_NODELAY` set (answers go out as soon as they are written,
/// HTTP/2's frames included, not after the client's delayed ACK); `None` once `stop`
/// is cancelled. A failing accept (out of file descriptors and the like) is retried
/// after a moment, never in a tight loop.
pub async fn accept(listener: &TcpListener, stop: &CancellationToken) -> Option<TcpStream> {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    return Some(stream);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
}
