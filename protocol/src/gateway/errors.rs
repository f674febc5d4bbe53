//! Failures as HTTP responses: a status code and a one-line `text/plain` body, never a
//! dropped connection.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::client::ClientError;
use crate::wire::Status;

/// A `text/plain` response of `status` saying `why`.
pub fn plain(status: StatusCode, why: impl std::fmt::Display) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}: {why}\n", status.as_u16()),
    )
        .into_response()
}

/// `405 Method Not Allowed`, with the `Allow` header naming the methods that are.
pub fn not_allowed(allow: &'static str, why: &str) -> Response {
    let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, why);
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}

/// The HTTP status a client error maps to.
pub fn status_of(e: &ClientError) -> StatusCode {
    match e.status() {
        Some(Status::NotFound | Status::Removed) => StatusCode::NOT_FOUND,
        Some(Status::RangeOutOfBounds) => StatusCode::RANGE_NOT_SATISFIABLE,
        Some(Status::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
        Some(Status::BadRequest) => StatusCode::BAD_REQUEST,
        Some(Status::Unauthorized) => StatusCode::FORBIDDEN,
        Some(Status::NoSpace) => StatusCode::INSUFFICIENT_STORAGE,
        Some(Status::ChecksumMismatch) => StatusCode::INTERNAL_SERVER_ERROR,
        Some(
            Status::Unavailable
            | Status::Busy
            | Status::Timeout
            | Status::ReadOnly
            | Status::ConnectionLimit
            | Status::TooManyHops
            | Status::NotOwner,
        ) => StatusCode::SERVICE_UNAVAILABLE,
        Some(Status::Changed) => StatusCode::CONFLICT,
        Some(_) => StatusCode::INTERNAL_SERVER_ERROR,
        None => match e {
            ClientError::Timeout(_)
            | ClientError::Connect { .. }
            | ClientError::Disconnected(_)
            // The key moved to another node mid-upload: sent again, it succeeds.
            | ClientError::UploadLost(_) => StatusCode::SERVICE_UNAVAILABLE,
            ClientError::Input(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_GATEWAY,
        },
    }
}

/// A client error as a response.
pub fn failure(e: &ClientError) -> Response {
    plain(status_of(e), e)
}

/// Refusals of the authentication step.
pub mod refuse {
    use super::*;

    pub fn unauthorized(why: &str) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, "Basic realm=\"ringblob\""),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            format!("401: {why}\n"),
        )
            .into_response()
    }

    pub fn throttled(secs: u64) -> Response {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            "429: too many failed attempts from this address\n",
        )
            .into_response()
    }
}
