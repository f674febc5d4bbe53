//! Peak resident memory of this process (Linux `/proc`).

use std::fs;

/// Resets the process's peak RSS (`VmHWM`) to its current RSS by writing `5` to
/// `/proc/self/clear_refs` (Linux ≥ 4.0). Returns false where that is not possible.
pub fn reset_peak() -> bool {
    match fs::write("/proc/self/clear_refs", "5") {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reset peak RSS; peak_rss_bytes covers the whole run");
            false
        }
    }
}

/// Peak RSS since the last reset, in bytes (`VmHWM`), or 0 if unknown.
pub fn peak_bytes() -> u64 {
    status_kib("VmHWM:") * 1024
}

/// Current RSS in bytes (`VmRSS`), or 0 if unknown.
pub fn current_bytes() -> u64 {
    status_kib("VmRSS:") * 1024
}

/// Current anonymous resident memory in bytes (`RssAnon`: heap and stacks, without the
/// binary's code and other file-backed pages), or 0 if unknown.
pub fn anon_bytes() -> u64 {
    status_kib("RssAnon:") * 1024
}

fn status_kib(field: &str) -> u64 {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    parse_kib(&status, field).unwrap_or(0)
}

/// Finds a `Field:   1234 kB` line.
pub fn parse_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.get(field.len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let s = "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_kib(s, "VmHWM:"), Some(2048));
        assert_eq!(parse_kib(s, "VmRSS:"), Some(1024));
        assert_eq!(parse_kib(s, "VmSwap:"), None);
    }
}
