//! Criterion micro-benchmarks of ringblob's hot paths, in `benches/` (`cargo bench -p
//! ringblob-benches`; the README lists the figures that matter). Not a default workspace
//! member, so building the node does not build criterion. The library is empty: each
//! `benches/*.rs` is one group of benchmarks.
