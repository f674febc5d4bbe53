//! The real binaries end to end: `ringblob-node` started as a process, driven by the real
//! `ringblob` CLI and by the client library; stopped with SIGTERM and with SIGKILL.

mod admin;
mod admin_tls;
mod big_reads;
mod certs;
mod cli;
mod columns;
mod full_disk;
mod http;
mod inline;
mod kill9;
mod lanes;
mod limits;
mod names;
mod node_process;
mod objects;
mod output;
mod s3_clients;
mod security;
mod space;
mod streaming;
