//! The stable mapping from backend errors to wire status codes.

use ringblob_backends::Error;

use crate::wire::Status;

/// The status a backend error is reported with.
pub fn status_of(e: &Error) -> Status {
    match e {
        Error::NotFound(_) => Status::NotFound,
        Error::RangeOutOfBounds { .. } => Status::RangeOutOfBounds,
        Error::TooLarge { .. } => Status::TooLarge,
        Error::NoUpload(_) => Status::BadRequest,
        Error::Corrupt(_) => Status::ChecksumMismatch,
        Error::ReadOnly(_) => Status::ReadOnly,
        Error::Unsupported(_) => Status::BadRequest,
        Error::InvalidInput(_) => Status::BadRequest,
        Error::Busy(_) => Status::Busy,
        Error::NotNewer { .. } => Status::NotNewer,
        Error::NoSpace(_) => Status::NoSpace,
        _ => Status::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringblob_engine::Key;

    #[test]
    fn every_client_visible_error_has_its_own_status() {
        assert_eq!(
            status_of(&Error::NotFound(Key::default())),
            Status::NotFound
        );
        assert_eq!(
            status_of(&Error::RangeOutOfBounds { offset: 2, len: 1 }),
            Status::RangeOutOfBounds
        );
        assert_eq!(
            status_of(&Error::TooLarge {
                what: "x",
                got: 2,
                limit: 1
            }),
            Status::TooLarge
        );
        assert_eq!(
            status_of(&Error::NoUpload(Key::default())),
            Status::BadRequest
        );
        assert_eq!(
            status_of(&Error::Corrupt("crc".into())),
            Status::ChecksumMismatch
        );
        assert_eq!(
            status_of(&Error::ReadOnly("fsync failed".into())),
            Status::ReadOnly
        );
        assert_eq!(
            status_of(&Error::NoSpace("disk full".into())),
            Status::NoSpace
        );
        assert_eq!(status_of(&Error::Internal("x".into())), Status::Internal);
    }
}
