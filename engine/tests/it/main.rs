//! Integration tests of the blob engine: one binary, a module per subject.

mod basics;
mod campaign;
mod copies;
mod crash_images;
mod damage;
mod defrag;
mod devices;
mod faults;
mod fixtures;
mod fixtures_v2;
mod fixtures_v3;
mod many_blobs;
mod mapped_index;
mod model;
mod patches;
mod process_kill;
mod record_cache;
mod recovery;
mod scrub;
mod sealing_race;
mod stream;
mod support;
