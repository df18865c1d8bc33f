//! Conversions into [`Error`], so that `?` works in producers: `From` for common errors, and
//! [`ResultExt::err_code`] for any other.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::sync::Arc;

use crate::error::{Error, ErrorCode, Inner};

impl From<std::io::Error> for Error {
    /// Converts an I/O error, choosing the code from its kind (see the [module docs](crate::error)).
    fn from(err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = err.kind();
        let code = match kind {
            K::TimedOut => ErrorCode::Timeout,
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::AddrNotAvailable
            | K::UnexpectedEof => ErrorCode::ProviderUnavailable,
            K::NotFound => ErrorCode::NotFound,
            K::PermissionDenied => ErrorCode::Auth,
            K::InvalidInput | K::InvalidData => ErrorCode::InvalidInput,
            _ => ErrorCode::Internal,
        };
        Error::from_source(code, "io", err)
    }
}

impl From<tokio::time::error::Elapsed> for Error {
    /// `tokio::time::timeout` ran out: a `timeout` error.
    fn from(err: tokio::time::error::Elapsed) -> Self {
        Error::from_source(ErrorCode::Timeout, "timeout", err)
    }
}

impl From<Box<dyn StdError + Send + Sync + 'static>> for Error {
    /// Unboxes a beluga [`Error`] as it was; wraps anything else as `internal`.
    fn from(err: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        match err.downcast::<Error>() {
            Ok(ours) => *ours,
            Err(other) => Error {
                inner: Arc::new(Inner {
                    code: ErrorCode::Internal,
                    op: Cow::Borrowed(""),
                    message: Cow::Borrowed(""),
                    source: Some(Arc::from(other)),
                    retry_after: None,
                }),
            },
        }
    }
}

/// Turns any `Result<T, E>` with a standard error into `Result<T, Error>` with a chosen code, so
/// that `?` works inside beluga producers.
///
/// ```
/// use beluga_core::{Error, ErrorCode, ResultExt};
///
/// fn parse(s: &str) -> Result<u32, Error> {
///     let n = s.parse::<u32>().err_code(ErrorCode::InvalidInput, "parse_count")?;
///     Ok(n)
/// }
/// let err = parse("many").unwrap_err();
/// assert_eq!(err.code(), ErrorCode::InvalidInput);
/// assert_eq!(format!("{err:#}"), "parse_count [invalid_input]: invalid digit found in string");
/// ```
pub trait ResultExt<T> {
    /// Wraps the error, if any, with `code` and `op`; the original error becomes the source.
    fn err_code(self, code: ErrorCode, op: impl Into<Cow<'static, str>>) -> Result<T, Error>;
}

impl<T, E> ResultExt<T> for Result<T, E>
where
    E: StdError + Send + Sync + 'static,
{
    fn err_code(self, code: ErrorCode, op: impl Into<Cow<'static, str>>) -> Result<T, Error> {
        self.map_err(|e| Error::from_source(code, op, e))
    }
}
