//! [`HttpError`]: a beluga [`Error`] as an HTTP response.

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use beluga_core::{Error, ErrorCode};

use crate::encoding::beluga_json::error_json;

/// A beluga [`Error`] as an HTTP response: a status for its code and the error's JSON
/// (`{"code":…,"op":…,"message":…}`) as the body, which [`client`](crate::client) reads back
/// with the code intact.
///
/// | code | status |
/// |---|---|
/// | `invalid_input` | 400 |
/// | `auth_error` | 401 |
/// | `budget_exhausted` | 402 |
/// | `not_found` | 404 |
/// | `guard_blocked` | 422 |
/// | `rate_limit` | 429 |
/// | `provider_unavailable` | 503 |
/// | `timeout`, `deadline_exceeded` | 504 |
/// | anything else | 500 |
///
/// `From<Error>` lets a handler use `?` on beluga results:
///
/// ```
/// use axum::response::IntoResponse;
/// use beluga_core::{Error, ErrorCode};
/// use beluga_sse::server::HttpError;
///
/// fn check(prompt: &str) -> Result<(), HttpError> {
///     if prompt.is_empty() {
///         Err(Error::new(ErrorCode::InvalidInput, "empty prompt"))?;
///     }
///     Ok(())
/// }
///
/// let response = check("").unwrap_err().into_response();
/// assert_eq!(response.status(), 400);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HttpError(pub Error);

impl HttpError {
    /// The status the error's code maps to (see the table above).
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// use beluga_sse::server::HttpError;
    /// let err = HttpError(Error::new(ErrorCode::NotFound, "no such stream"));
    /// assert_eq!(err.status(), 404);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self.0.code() {
            ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorCode::Auth => StatusCode::UNAUTHORIZED,
            ErrorCode::BudgetExhausted => StatusCode::PAYMENT_REQUIRED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::GuardBlocked => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimit => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ProviderUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout | ErrorCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<Error> for HttpError {
    fn from(err: Error) -> Self {
        HttpError(err)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (
            self.status(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            error_json(&self.0),
        )
            .into_response()
    }
}
