//! HTTP failures as beluga errors.

use beluga_core::{Error, ErrorCode};
use reqwest::{Response, StatusCode};

/// The most bytes of an error response that are read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The error an error response stands for: the beluga error in its body when there is one
/// (its code preserved), else one for the status with the start of the body as the message.
pub(super) async fn error_for_response(mut response: Response) -> Error {
    let status = response.status();
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    if let Ok(err) = serde_json::from_slice::<Error>(&body) {
        return err;
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    let message = if text.is_empty() {
        format!("the server answered {status}")
    } else {
        format!("the server answered {status}: {text}")
    };
    Error::new(code_for_status(status), message).with_op("sse.read")
}

/// The code for an HTTP error status.
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 | 403 => ErrorCode::Auth,
        404 | 410 => ErrorCode::NotFound,
        408 | 504 => ErrorCode::Timeout,
        429 => ErrorCode::RateLimit,
        500..=599 => ErrorCode::ProviderUnavailable,
        400..=499 => ErrorCode::InvalidInput,
        _ => ErrorCode::Internal,
    }
}

/// The error for a request that could not be sent or whose response failed.
pub(super) fn transport_error(err: reqwest::Error, op: &'static str) -> Error {
    let (code, message) = if err.is_timeout() {
        (ErrorCode::Timeout, "the request timed out")
    } else if err.is_builder() {
        (ErrorCode::InvalidInput, "the request is malformed")
    } else {
        (
            ErrorCode::ProviderUnavailable,
            "the server could not be reached",
        )
    };
    Error::new(code, message).with_op(op).with_source(err)
}
