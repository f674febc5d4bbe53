//! Library half of the ringblob tools: the pieces the binaries share.

pub mod bench;
pub mod inspect;
