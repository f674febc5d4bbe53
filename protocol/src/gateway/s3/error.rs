//! S3 errors: the HTTP status and the `<Error>` XML body S3 defines, with its codes.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::xml::escape;
use crate::client::ClientError;
use crate::wire::Status;

/// One S3 error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct S3Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl S3Error {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn malformed_auth() -> S3Error {
        Self::new(
            StatusCode::BAD_REQUEST,
            "AuthorizationHeaderMalformed",
            "the authorization header or query is malformed",
        )
    }

    pub fn access_denied(why: &str) -> S3Error {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", why)
    }

    pub fn signature_mismatch() -> S3Error {
        Self::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    }

    pub fn unknown_key() -> S3Error {
        Self::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The access key id you provided does not exist in our records.",
        )
    }

    pub fn skewed() -> S3Error {
        Self::new(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        )
    }

    pub fn invalid_argument(why: &str) -> S3Error {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", why)
    }

    pub fn no_such_bucket(bucket: &str) -> S3Error {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            format!("The specified bucket {bucket} does not exist"),
        )
    }

    pub fn no_such_key() -> S3Error {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    }

    pub fn no_such_upload() -> S3Error {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified multipart upload does not exist.",
        )
    }

    pub fn invalid_range(size: u64) -> S3Error {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            format!("The requested range is not satisfiable (object size {size})"),
        )
    }

    pub fn not_implemented(what: &str) -> S3Error {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("{what} is not implemented by the ringblob gateway (docs/HTTP.md)"),
        )
    }

    pub fn internal(why: impl std::fmt::Display) -> S3Error {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            why.to_string(),
        )
    }

    /// A client error of a request about an object (`NOT_FOUND` is `NoSuchKey`).
    pub fn from_client(e: &ClientError) -> S3Error {
        let status = super::super::errors::status_of(e);
        let code = match e.status() {
            Some(Status::NotFound | Status::Removed) => return Self::no_such_key(),
            Some(Status::Unauthorized) => "AccessDenied",
            Some(Status::TooLarge) => "EntityTooLarge",
            Some(Status::BadRequest) => "InvalidRequest",
            Some(Status::NoSpace) => "ServiceUnavailable",
            Some(Status::RangeOutOfBounds) => "InvalidRange",
            _ if status == StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
            _ => "InternalError",
        };
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code,
            escape(&self.message)
        );
        (
            self.status,
            [(header::CONTENT_TYPE, "application/xml")],
            body,
        )
            .into_response()
    }
}
