//! Integration tests for `blob-inspect`: fixtures written by the real engine, damaged in
//! known ways, inspected by the real binary. Every run also checks that the inspected
//! directory is byte-for-byte (and mtime-for-mtime) unchanged.

mod campaign;
mod damage;
mod dump;
mod fixture;
mod healthy;
mod index;
mod page;
mod patches;
mod sorted;
