//! A loop on a thread of its own that can be stopped and joined: the alerting and repair
//! loops. Their work is CPU or blocking I/O that must not occupy the async workers serving
//! `/metrics` and `/health`.

use std::sync::mpsc::{Receiver, Sender};

/// A running loop thread.
pub struct Worker {
    name: &'static str,
    stop: Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Worker {
    /// Starts `body` on a thread named `name`; `body` returns when its receiver yields
    /// (a stop request) or disconnects.
    pub fn spawn(
        name: &'static str,
        body: impl FnOnce(Receiver<()>) + Send + 'static,
    ) -> std::io::Result<Worker> {
        let (stop, stopped) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(stopped))?;
        Ok(Worker { name, stop, thread })
    }

    /// Asks the loop to stop and waits for it.
    pub fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::error!("the {} loop panicked", self.name);
        }
    }
}
