//! The error type of every beluga stream, and how errors end a stream.
//!
//! # Terminal errors and error events
//!
//! A stream of `Result<Event<T>, Error>` can report a failure in two ways, and they mean
//! different things:
//!
//! * **`Err(Error)` item: terminal.** The producer has failed and the stream is over. It is the
//!   last item a well-behaved stream yields. [`collect_events`](crate::EventStreamExt::collect_events) stops at it and
//!   reports it as *the* error, [`cancellable`](crate::EventStreamExt::cancellable) ends (and
//!   drops its source) right after it, and the pure adapters (`map_payload`, `filter_events`)
//!   pass it through unchanged.
//! * **[`Event::error`](crate::Event::error) event: reported, non-terminal.** Something went wrong
//!   that the consumer should know about (a tool call failed, a guard flagged a chunk), but the
//!   producer carries on and more events follow. It is an ordinary event of kind
//!   [`EventKind::Error`](crate::EventKind::Error).
//!
//! Use the first when the stream cannot go on, the second when it can.
//!
//! # Codes, causes and retries
//!
//! An [`Error`] has an [`ErrorCode`], the operation that failed (`op`), a message, and an optional
//! cause (its [`source`](std::error::Error::source)). Wrapping is cheap and keeps the cause:
//!
//! ```
//! use beluga_core::{Error, ErrorCode};
//!
//! let auth = Error::new(ErrorCode::Auth, "invalid api key").with_op("openai.chat");
//! let wrapped = Error::new(ErrorCode::ProviderUnavailable, "model call failed")
//!     .with_op("agent.step")
//!     .with_source(auth);
//!
//! // Retryability is decided by the root cause: an auth error stays fatal however it is wrapped.
//! assert_eq!(wrapped.code(), ErrorCode::ProviderUnavailable);
//! assert_eq!(wrapped.root_code(), ErrorCode::Auth);
//! assert!(!wrapped.is_retryable());
//!
//! // `Display` shows this error only; `{:#}` shows the whole chain, each cause once.
//! assert_eq!(wrapped.to_string(), "agent.step [provider_unavailable]: model call failed");
//! assert_eq!(
//!     format!("{wrapped:#}"),
//!     "agent.step [provider_unavailable]: model call failed: openai.chat [auth_error]: invalid api key",
//! );
//! ```
//!
//! # Using `?` with other error types
//!
//! * [`std::io::Error`] converts with `?` directly; its [`ErrorKind`](std::io::ErrorKind) picks
//!   the code (`TimedOut` is `timeout`, a refused or reset connection is `provider_unavailable`,
//!   `NotFound` is `not_found`, `PermissionDenied` is `auth_error`, bad input or data is
//!   `invalid_input`, anything else `internal`), and the I/O error stays reachable as the source.
//! * [`tokio::time::error::Elapsed`] (from `tokio::time::timeout`) converts to `timeout`.
//! * Any other error type: say which code it means with [`ResultExt::err_code`], or implement
//!   `From<YourError> for beluga_core::Error` once and use `?` everywhere.
//!
//! ```
//! use beluga_core::{Error, ErrorCode, ResultExt};
//!
//! #[derive(Debug)]
//! struct SearchError(String);
//! impl std::fmt::Display for SearchError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         write!(f, "search backend said: {}", self.0)
//!     }
//! }
//! impl std::error::Error for SearchError {}
//!
//! fn search() -> Result<u32, SearchError> {
//!     Err(SearchError("index offline".into()))
//! }
//!
//! // One call site: name the code and the operation.
//! fn tool() -> Result<u32, Error> {
//!     let hits = search().err_code(ErrorCode::ToolFailed, "web_search")?;
//!     Ok(hits)
//! }
//! assert_eq!(tool().unwrap_err().code(), ErrorCode::ToolFailed);
//!
//! // Every call site: a `From` impl.
//! impl From<SearchError> for Error {
//!     fn from(e: SearchError) -> Self {
//!         Error::from_source(ErrorCode::ToolFailed, "web_search", e)
//!     }
//! }
//! fn tool2() -> Result<u32, Error> {
//!     Ok(search()?)
//! }
//! let err = tool2().unwrap_err();
//! assert_eq!(err.to_string(), "web_search [tool_failed]");
//! assert_eq!(format!("{err:#}"), "web_search [tool_failed]: search backend said: index offline");
//!
//! // `std::io::Error` needs nothing.
//! fn read() -> Result<String, Error> {
//!     Ok(std::fs::read_to_string("/this/path/does/not/exist")?)
//! }
//! assert_eq!(read().unwrap_err().code(), ErrorCode::NotFound);
//! ```

mod code;
mod convert;
#[cfg(feature = "serde")]
mod serde_impl;

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use self::code::{ErrorCode, UnknownErrorCode};
pub use self::convert::ResultExt;

/// The error of every beluga stream: a code, the operation that failed, a message and an
/// optional cause.
///
/// It is one pointer wide (so `Result<Event<T>, Error>` stays small), cheap to clone (fan-out
/// hands the same error to every consumer), and `Send + Sync + 'static`. See the
/// [module docs](crate::error) for terminal errors versus error events, retries, and `?`.
///
/// ```
/// use beluga_core::{Error, ErrorCode};
///
/// let err = Error::new(ErrorCode::RateLimit, "429 from provider").with_op("llm.generate");
/// assert_eq!(err.code(), ErrorCode::RateLimit);
/// assert_eq!(err.op(), "llm.generate");
/// assert_eq!(err.message(), "429 from provider");
/// assert!(err.is_retryable());
/// assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
/// ```
#[derive(Clone)]
pub struct Error {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) code: ErrorCode,
    pub(crate) op: Cow<'static, str>,
    pub(crate) message: Cow<'static, str>,
    pub(crate) source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
    pub(crate) retry_after: Option<Duration>,
}

impl Error {
    /// A new error with a code and a message, no operation and no cause.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// let err = Error::new(ErrorCode::InvalidInput, "prompt is empty");
    /// assert_eq!(err.to_string(), "[invalid_input] prompt is empty");
    /// ```
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            inner: Arc::new(Inner {
                code,
                op: Cow::Borrowed(""),
                message: message.into(),
                source: None,
                retry_after: None,
            }),
        }
    }

    /// An error that wraps `source` with a code and an operation name and no message of its own;
    /// the cause explains what happened.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// let io = std::io::Error::other("disk on fire");
    /// let err = Error::from_source(ErrorCode::ToolFailed, "file_reader", io);
    /// assert_eq!(err.to_string(), "file_reader [tool_failed]");
    /// assert_eq!(format!("{err:#}"), "file_reader [tool_failed]: disk on fire");
    /// ```
    pub fn from_source(
        code: ErrorCode,
        op: impl Into<Cow<'static, str>>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Error {
            inner: Arc::new(Inner {
                code,
                op: op.into(),
                message: Cow::Borrowed(""),
                source: Some(Arc::new(source)),
                retry_after: None,
            }),
        }
    }

    /// The error a stream ends with when its [`Context`](crate::Context) is cancelled.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// assert_eq!(Error::cancelled().code(), ErrorCode::Cancelled);
    /// ```
    pub fn cancelled() -> Self {
        Error::new(ErrorCode::Cancelled, "context cancelled").with_op("context")
    }

    /// The error a stream ends with when its [`Context`](crate::Context) deadline passes.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// assert_eq!(Error::deadline_exceeded().code(), ErrorCode::DeadlineExceeded);
    /// ```
    pub fn deadline_exceeded() -> Self {
        Error::new(ErrorCode::DeadlineExceeded, "context deadline exceeded").with_op("context")
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Sets the operation that failed (`"openai.chat"`, `"tool.web_search"`).
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// let err = Error::new(ErrorCode::Timeout, "no reply").with_op("llm.generate");
    /// assert_eq!(err.to_string(), "llm.generate [timeout]: no reply");
    /// ```
    #[must_use]
    pub fn with_op(mut self, op: impl Into<Cow<'static, str>>) -> Self {
        self.inner_mut().op = op.into();
        self
    }

    /// Sets the cause. Any error type works, a beluga [`Error`] included (that is wrapping).
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// let root = Error::new(ErrorCode::RateLimit, "slow down");
    /// let err = Error::new(ErrorCode::ToolFailed, "search failed").with_source(root);
    /// assert!(err.is_retryable()); // decided by the rate limit underneath
    /// ```
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner_mut().source = Some(Arc::new(source));
        self
    }

    /// Says how long the failed service asked to be left alone before it is called again (an
    /// HTTP `Retry-After`). [`batch`](crate::RunnableExt::batch) waits at least this long before
    /// it retries the item, whatever its [`RetryPolicy`](crate::runnable::RetryPolicy)'s backoff.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::{Error, ErrorCode};
    /// let err = Error::new(ErrorCode::RateLimit, "429").with_retry_after(Duration::from_secs(2));
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    /// assert_eq!(err.to_string(), "[rate_limit] 429"); // not part of the text
    /// ```
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.inner_mut().retry_after = Some(delay);
        self
    }

    /// How long to wait before calling the failed service again, if it said
    /// ([`Error::with_retry_after`]): this error's own delay, else the first one found in its
    /// chain of causes, so wrapping keeps it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::{Error, ErrorCode};
    /// let limit = Error::new(ErrorCode::RateLimit, "429").with_retry_after(Duration::from_secs(3));
    /// let wrapped = Error::new(ErrorCode::ToolFailed, "search failed").with_source(limit);
    /// assert_eq!(wrapped.retry_after(), Some(Duration::from_secs(3)));
    /// assert_eq!(Error::cancelled().retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.chain()
            .filter_map(|err| err.downcast_ref::<Error>())
            .find_map(|err| err.inner.retry_after)
    }

    /// This error's own code (not the root cause's: see [`Error::root_code`]).
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// assert_eq!(Error::new(ErrorCode::NotFound, "no such tool").code(), ErrorCode::NotFound);
    /// ```
    pub fn code(&self) -> ErrorCode {
        self.inner.code
    }

    /// The operation that failed, or `""` if none was set.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// assert_eq!(Error::new(ErrorCode::Internal, "x").op(), "");
    /// ```
    pub fn op(&self) -> &str {
        &self.inner.op
    }

    /// This error's own message, without its cause.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// assert_eq!(Error::new(ErrorCode::Internal, "boom").message(), "boom");
    /// ```
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The code of the root cause: the code of the innermost beluga [`Error`] in the chain of
    /// sources (looking through foreign error types in between) that says more than `internal`,
    /// or this error's own code if no cause does.
    ///
    /// `internal` is what an unclassified error gets when converted with `?`, so it never
    /// overrides a classification made further out: `provider_unavailable` wrapping an
    /// `internal` I/O error stays `provider_unavailable`.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// let err = Error::new(ErrorCode::ToolFailed, "tool failed")
    ///     .with_source(Error::new(ErrorCode::RateLimit, "429"));
    /// assert_eq!(err.root_code(), ErrorCode::RateLimit);
    /// ```
    pub fn root_code(&self) -> ErrorCode {
        let mut code = self.code();
        let mut next = self
            .inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static));
        while let Some(err) = next {
            if let Some(ours) = err.downcast_ref::<Error>() {
                if ours.code() != ErrorCode::Internal {
                    code = ours.code();
                }
            }
            next = err.source();
        }
        code
    }

    /// Whether retrying may help, decided by the [root cause](Error::root_code): wrapping an
    /// auth error as `provider_unavailable` never makes it retryable, and a rate limit stays
    /// retryable when wrapped as `tool_failed`.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// let auth = Error::new(ErrorCode::Auth, "bad key");
    /// let wrapped = Error::new(ErrorCode::ProviderUnavailable, "call failed").with_source(auth);
    /// assert!(!wrapped.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        self.root_code().is_retryable()
    }

    /// Whether the [root cause](Error::root_code) is `cancelled` or `deadline_exceeded`: the
    /// caller stopped the work, however the error was wrapped on its way out.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// assert!(Error::deadline_exceeded().is_cancellation());
    /// let wrapped = Error::new(ErrorCode::ToolFailed, "search stopped").with_source(Error::cancelled());
    /// assert!(wrapped.is_cancellation());
    /// ```
    pub fn is_cancellation(&self) -> bool {
        matches!(
            self.root_code(),
            ErrorCode::Cancelled | ErrorCode::DeadlineExceeded
        )
    }

    /// Iterates over this error and its causes, outermost first.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode};
    /// let err = Error::new(ErrorCode::ToolFailed, "outer")
    ///     .with_source(std::io::Error::other("inner"));
    /// let texts: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    /// assert_eq!(texts, ["[tool_failed] outer", "inner"]);
    /// ```
    pub fn chain(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        let mut next: Option<&(dyn StdError + 'static)> = Some(self);
        std::iter::from_fn(move || {
            let current = next?;
            next = current.source();
            Some(current)
        })
    }

    /// Compares two errors for [`PartialEq`]: the same code, operation, message and retry delay,
    /// and the same text for each cause.
    fn same_as(&self, other: &Error) -> bool {
        if Arc::ptr_eq(&self.inner, &other.inner) {
            return true;
        }
        if self.code() != other.code()
            || self.op() != other.op()
            || self.message() != other.message()
            || self.inner.retry_after != other.inner.retry_after
        {
            return false;
        }
        let mut a = self.chain().skip(1);
        let mut b = other.chain().skip(1);
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) => {
                    let same = match (x.downcast_ref::<Error>(), y.downcast_ref::<Error>()) {
                        (Some(x), Some(y)) => {
                            x.code() == y.code() && x.op() == y.op() && x.message() == y.message()
                        }
                        (None, None) => x.to_string() == y.to_string(),
                        _ => false,
                    };
                    if !same {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }
}

/// Two errors are equal when they have the same code, operation, message and
/// [retry delay](Error::retry_after), and their causes read the same, link by link.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other)
    }
}

impl fmt::Display for Error {
    /// `op [code]: message`, leaving out the parts that are empty. The cause is never repeated
    /// here; the alternate form `{:#}` appends each cause once, separated by `": "`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        if inner.op.is_empty() {
            write!(f, "[{}]", inner.code)?;
        } else {
            write!(f, "{} [{}]", inner.op, inner.code)?;
        }
        if !inner.message.is_empty() {
            if inner.op.is_empty() {
                write!(f, " {}", inner.message)?;
            } else {
                write!(f, ": {}", inner.message)?;
            }
        }
        if f.alternate() {
            for cause in self.chain().skip(1) {
                if let Some(ours) = cause.downcast_ref::<Error>() {
                    // Our own causes print without their chain: the loop already walks it.
                    write!(f, ": {ours}")?;
                } else {
                    write!(f, ": {cause}")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("code", &self.inner.code);
        if !self.inner.op.is_empty() {
            s.field("op", &self.inner.op);
        }
        s.field("message", &self.inner.message);
        if let Some(retry_after) = &self.inner.retry_after {
            s.field("retry_after", retry_after);
        }
        if let Some(source) = &self.inner.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
