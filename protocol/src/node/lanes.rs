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
//! TLS handshakes get runtimes of their own too (`ringblob-tls-N`, as many as the cores the
//! lanes leave, at least one): a handshake's milliseconds of CPU on a lane would hold up the
//! lane's other connections, and on the shared runtime's workers (as many as the cores) a
//! burst of them ran beside the lanes on every core (`tls::MovableTcp` moves the finished
//! connection to its lane).
//!
//! A lane's runtime is built, run and dropped on its own thread (a runtime dropped inside
//! another's task would panic); [`Lanes`] dropped stops them and waits for the threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The lanes, or none (connections then run on the runtime that accepted them), and the
/// runtimes for TLS handshakes.
pub struct Lanes {
    lanes: Vec<Lane>,
    next: AtomicUsize,
    handshakes: Vec<Lane>,
    next_handshake: AtomicUsize,
}

struct Lane {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Lanes {
    /// `count` lanes (0: none), and `handshakes` runtimes for TLS handshakes.
    pub fn start(count: usize, handshakes: usize) -> std::io::Result<Lanes> {
        let start = |name: &str, n: usize| {
            (0..n)
                .map(|i| start_lane(format!("ringblob-{name}-{i}")))
                .collect::<std::io::Result<Vec<_>>>()
        };
        Ok(Lanes {
            lanes: start("lane", count)?,
            next: AtomicUsize::new(0),
            handshakes: start("tls", handshakes)?,
            next_handshake: AtomicUsize::new(0),
        })
    }

    /// The lane the next connection runs on (round robin); `None` without lanes.
    pub fn next_handle(&self) -> Option<Handle> {
        next_of(&self.lanes, &self.next)
    }

    /// The runtime the next TLS handshake runs on (round robin); `None` without any.
    pub fn next_handshake(&self) -> Option<Handle> {
        next_of(&self.handshakes, &self.next_handshake)
    }
}

fn next_of(lanes: &[Lane], next: &AtomicUsize) -> Option<Handle> {
    if lanes.is_empty() {
        return None;
    }
    let i = next.fetch_add(1, Ordering::Relaxed) % lanes.len();
    Some(lanes[i].handle.clone())
}

/// Runtimes for TLS handshakes beside `lanes` connection lanes: the cores the lanes leave,
/// at least one; none without lanes or without TLS (handshakes then run where the
/// connection does).
pub fn handshake_runtimes(lanes: usize, tls: bool) -> usize {
    if lanes == 0 || !tls {
        return 0;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(lanes).max(1)
}

fn start_lane(name: String) -> std::io::Result<Lane> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new().name(name).spawn(move || {
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
        for lane in self.lanes.iter_mut().chain(&mut self.handshakes) {
            if let Some(stop) = lane.stop.take() {
                let _ = stop.send(());
            }
        }
        for lane in self.lanes.iter_mut().chain(&mut self.handshakes) {
            if let Some(t) = lane.thread.take() {
                let _ = t.join();
            }
        }
    }
}
