//! XML for S3 replies, written as text with every value escaped; request bodies
//! (`DeleteObjects`, `CompleteMultipartUpload`) are read with quick-xml.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// `text` escaped for XML character data and attribute values.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// The XML declaration.
pub const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
/// The S3 namespace of every reply's root element.
pub const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// A 200 reply with an XML body.
pub fn ok(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        format!("{DECLARATION}{body}"),
    )
        .into_response()
}

/// `<tag>escaped text</tag>`.
pub fn element(tag: &str, text: &str) -> String {
    format!("<{tag}>{}</{tag}>", escape(text))
}
