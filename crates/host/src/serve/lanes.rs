//! Serving on several threads without a request ever crossing between
//! them. Each lane is a thread with a single-threaded runtime, its own
//! listening socket on the shared address (`SO_REUSEPORT`: the kernel
//! spreads new connections across the sockets), the connections it
//! accepted, and its own instances of the chain. A work-stealing runtime
//! instead wakes one thread from another for every hop of a request
//! (connection, worker, instance); on the hosts bench that cost about a
//! quarter of the CPU of a request to the bare service.

use crate::Server;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;

/// `lanes` listening sockets on `addr` (one plain socket for one lane).
/// With port 0, the first picks the port and the others share it.
pub fn bind(addr: SocketAddr, lanes: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let first = socket(addr, lanes > 1)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..lanes {
        listeners.push(socket(addr, true)?);
    }
    Ok(listeners)
}

fn socket(addr: SocketAddr, shared: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As tokio's own `bind`: a restarted server gets its port back at once.
    socket.set_reuse_address(true)?;
    if shared {
        // Only sockets of the same user may share the port (Linux).
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

impl Server {
    /// Serves one lane per listener (at most [`crate::ServeOptions::lanes`]),
    /// each on a thread of its own, until `shutdown` turns true; then each
    /// finishes its in-flight requests, and this returns when all have.
    pub async fn run_lanes(
        &self,
        listeners: Vec<std::net::TcpListener>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            listeners.len() <= self.lanes(),
            "{} listeners for {} lanes",
            listeners.len(),
            self.lanes()
        );
        let mut lanes = Vec::with_capacity(listeners.len());
        for (lane, listener) in listeners.into_iter().enumerate() {
            let server = self.on_lane(lane);
            let mut shutdown = shutdown.clone();
            let (done, finished) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name(format!("pwchain-lane-{lane}"))
                .spawn(move || {
                    let served = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(anyhow::Error::from)
                        .and_then(|runtime| {
                            runtime.block_on(async move {
                                let listener = tokio::net::TcpListener::from_std(listener)?;
                                let stop = async move {
                                    let _ = shutdown.wait_for(|stop| *stop).await;
                                };
                                server.run(listener, stop).await
                            })
                        });
                    let _ = done.send(served);
                })?;
            lanes.push(finished);
        }
        for (lane, finished) in lanes.into_iter().enumerate() {
            finished
                .await
                .map_err(|_| anyhow::anyhow!("lane {lane} stopped unexpectedly (a panic)"))??;
        }
        Ok(())
    }
}
