//! `blob-inspect`: read-only inspector for ringblob data directories and blob files.
//! See `blob-inspect --help`; the code is in `ringblob_tools::inspect`.

fn main() -> std::process::ExitCode {
    ringblob_tools::inspect::main()
}
