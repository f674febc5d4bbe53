//! The native module of the `ringblob` Python package (`ringblob._ringblob`): the Rust
//! client — routing, replication across groups with W of N, reads from the newest replica
//! with fall-over and read repair, streamed uploads — behind a thin Python API, so Python
//! and the CLI share one implementation of that logic. See `clients/python/README.md`.

mod ahead;
mod client;
mod core;
mod failure;
mod run;
mod settings;
mod target;
mod upload;
mod values;

use pyo3::prelude::*;

#[pymodule]
fn _ringblob(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Streamed values pass through buffers of a few MiB on the runtime's threads: with
    // glibc's moving mmap threshold they would stay in per-thread heaps (a 200 MiB
    // upload's peak memory grew with the threads: 105-152 MiB against 75 MiB), and with
    // every such buffer mapped on its own each was faulted in again (`open()` streamed at
    // a quarter of the speed). Set as the CLI does (two shared heaps that keep their free
    // memory up to a bound); MALLOC_MMAP_THRESHOLD_ still wins.
    ringblob_engine::alloc_tuning::fix_for_client();
    m.add_class::<client::Core>()?;
    m.add_class::<upload::Upload>()?;
    m.add_class::<ahead::Ahead>()?;
    m.add_class::<values::Meta>()?;
    m.add_class::<values::Entry>()?;
    m.add_class::<values::Found>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
