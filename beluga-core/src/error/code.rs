//! [`ErrorCode`]: what kind of failure an error is, with Beluga's names.

use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;

#[cfg(doc)]
use crate::error::Error;

/// What kind of failure an [`Error`] is, with Beluga's names.
///
/// The code decides whether a retry can help: see [`ErrorCode::is_retryable`] and
/// [`Error::is_retryable`].
///
/// ```
/// use beluga_core::ErrorCode;
///
/// assert_eq!(ErrorCode::RateLimit.as_str(), "rate_limit");
/// assert_eq!("auth_error".parse::<ErrorCode>(), Ok(ErrorCode::Auth));
/// assert!(ErrorCode::RateLimit.is_retryable());
/// assert!(!ErrorCode::Auth.is_retryable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `rate_limit`: the provider throttled the call. Retryable.
    RateLimit,
    /// `auth_error`: credentials are missing, wrong or lack permission. Not retryable.
    Auth,
    /// `timeout`: an operation took too long. Retryable.
    Timeout,
    /// `invalid_input`: the request itself is wrong. Not retryable.
    InvalidInput,
    /// `tool_failed`: a tool returned an error. Not retryable by itself.
    ToolFailed,
    /// `provider_unavailable`: the provider could not be reached or is down. Retryable.
    ProviderUnavailable,
    /// `guard_blocked`: a safety guard refused the content. Not retryable.
    GuardBlocked,
    /// `budget_exhausted`: a token, cost or step budget ran out. Not retryable.
    BudgetExhausted,
    /// `not_found`: a named resource does not exist. Not retryable.
    NotFound,
    /// `cancelled`: the caller's [`Context`](crate::Context) was cancelled. Not retryable.
    Cancelled,
    /// `deadline_exceeded`: the caller's [`Context`](crate::Context) deadline passed. Not
    /// retryable: the caller has given up waiting.
    DeadlineExceeded,
    /// `internal`: anything else, such as an unclassified error converted with `?`.
    /// Not retryable.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    ///
    /// ```
    /// use beluga_core::ErrorCode;
    /// assert!(ErrorCode::ALL.contains(&ErrorCode::NotFound));
    /// ```
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::RateLimit,
        ErrorCode::Auth,
        ErrorCode::Timeout,
        ErrorCode::InvalidInput,
        ErrorCode::ToolFailed,
        ErrorCode::ProviderUnavailable,
        ErrorCode::GuardBlocked,
        ErrorCode::BudgetExhausted,
        ErrorCode::NotFound,
        ErrorCode::Cancelled,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Internal,
    ];

    /// The code's wire name, as Beluga spells it (`"rate_limit"`, `"auth_error"`, ...).
    ///
    /// ```
    /// use beluga_core::ErrorCode;
    /// assert_eq!(ErrorCode::DeadlineExceeded.as_str(), "deadline_exceeded");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RateLimit => "rate_limit",
            ErrorCode::Auth => "auth_error",
            ErrorCode::Timeout => "timeout",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::ToolFailed => "tool_failed",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::GuardBlocked => "guard_blocked",
            ErrorCode::BudgetExhausted => "budget_exhausted",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::DeadlineExceeded => "deadline_exceeded",
            ErrorCode::Internal => "internal",
        }
    }

    /// Whether a failure with this code may succeed if tried again: `rate_limit`, `timeout` and
    /// `provider_unavailable`.
    ///
    /// To decide for an [`Error`], use [`Error::is_retryable`], which looks at the root cause.
    ///
    /// ```
    /// use beluga_core::ErrorCode;
    /// assert!(ErrorCode::Timeout.is_retryable());
    /// assert!(!ErrorCode::Cancelled.is_retryable());
    /// ```
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimit | ErrorCode::Timeout | ErrorCode::ProviderUnavailable
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when parsing an unknown [`ErrorCode`] name.
///
/// ```
/// use beluga_core::ErrorCode;
/// let err = "teapot".parse::<ErrorCode>().unwrap_err();
/// assert!(err.to_string().contains("teapot"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownErrorCode(String);

impl fmt::Display for UnknownErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown error code `{}`, expected one of: ", self.0)?;
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{code}`")?;
        }
        Ok(())
    }
}

impl StdError for UnknownErrorCode {}

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}
