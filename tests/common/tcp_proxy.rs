//! A TCP forwarder that can be cut: its port closes and every connection through it drops, as
//! when a server goes away; restored, it listens on the same port again.

#![allow(
    clippy::disallowed_methods,
    reason = "the forwarder's own tasks end with it or when cut"
)]

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct TcpProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    /// Cancelled to cut; replaced when restored.
    running: Mutex<Option<(CancellationToken, tokio::task::JoinHandle<()>)>>,
}

impl TcpProxy {
    /// Forward a port of its own on 127.0.0.1 to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = TcpProxy {
            addr,
            upstream,
            running: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let token = CancellationToken::new();
        let upstream = self.upstream;
        let cut = token.clone();
        let task = tokio::spawn(async move {
            loop {
                let (mut client, _) = tokio::select! {
                    () = cut.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                };
                let cut = cut.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        () = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        *self.running.lock().unwrap() = Some((token, task));
    }

    /// Close the port and drop every connection through it.
    pub async fn cut(&self) {
        let running = self.running.lock().unwrap().take();
        if let Some((token, task)) = running {
            token.cancel();
            task.await.unwrap();
        }
    }

    /// Listen on the same port again.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some((token, _)) = self.running.lock().unwrap().take() {
            token.cancel();
        }
    }
}
