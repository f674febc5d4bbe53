//! Connection lanes: client connections served each on one thread of its own runtime.
//!
//! tokio's multi-thread runtime lets either worker run a connection's task after any
//! wake-up, and a worker with nothing to do steals from the other: on two cores a request
//! pipelined behind another often crossed between the workers, paying a cross-core wake-up
//! each way. A lane is a single-threaded runtime on a thread of its own; an accepted
//! connection is given to one lane (round robin) and every wake-up of its task stays on
//! that thread, as Redis's event loop keeps its clients. Everything else of the node (the
//! cluster's tasks, the admin listener, the blocking pool's callers) stays on the main
//! runtime; tokio's channels, `Notify` and the shared sync's wake-ups cross runtimes.
//!
//! A lane's runtime is built, run and dropped on its own thread (a runtime dropped inside
//! another's task would panic); [`Lanes`] dropped stops them and waits for the threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The lanes, or none (connections then run on the runtime that accepted them).
pub struct Lanes {
    lanes: Vec<Lane>,
    next: AtomicUsize,
}

struct Lane {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Lanes {
    /// `count` lanes (0: none).
    pub fn start(count: usize) -> std::io::Result<Lanes> {
        let lanes = (0..count).map(start_lane).collect::<std::io::Result<_>>()?;
        Ok(Lanes {
            lanes,
            next: AtomicUsize::new(0),
        })
    }

    /// The lane the next connection runs on (round robin); `None` without lanes.
    pub fn next_handle(&self) -> Option<Handle> {
        if self.lanes.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        Some(self.lanes[i].handle.clone())
    }
}

fn start_lane(i: usize) -> std::io::Result<Lane> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("ringblob-lane-{i}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = handle_tx.send(Err(e));
                    return;
                }
            };
            let _ = handle_tx.send(Ok(rt.handle().clone()));
            rt.block_on(async {
                let _ = stopped.await;
            });
        })?;
    let handle = handle_rx
        .recv()
        .map_err(|_| std::io::Error::other("a connection lane's thread ended at its start"))??;
    Ok(Lane {
        handle,
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Drop for Lanes {
    fn drop(&mut self) {
        for lane in &mut self.lanes {
            if let Some(stop) = lane.stop.take() {
                let _ = stop.send(());
            }
        }
        for lane in &mut self.lanes {
            if let Some(t) = lane.thread.take() {
                let _ = t.join();
            }
        }
    }
}
