//! The errors of chat streams: a truncated answer, and tool calls that cannot be assembled.
//!
//! Every failure is a [`beluga_core::Error`] with one of its codes, so retries, wrapping and
//! `?` work as everywhere else in beluga:
//!
//! * **Truncated answer**: the stream ended (with `done`, or not at all) without a
//!   [`FinishReason`](crate::schema::FinishReason). The connection dropped or the provider
//!   stopped mid-answer, so the text and tool calls are incomplete. It is a
//!   `provider_unavailable` error, which is retryable, with a [`StreamTruncated`] cause that
//!   [`is_truncated`] recognises however the error is wrapped.
//!   [`generate`](crate::ChatModelExt::generate) returns it, and a
//!   [`with_hooks`](crate::ChatModelExt::with_hooks) stream ends with it instead of `done`.
//! * **Invalid tool call**: its arguments are not valid JSON, or it has no tool name. It is
//!   an `invalid_input` error naming the tool and the call id, reported as an `error` event by
//!   [`accumulate_tool_calls`](crate::ChatStreamExt::accumulate_tool_calls) (the stream goes
//!   on) and returned by `generate`.
//!
//! ```
//! use beluga_core::{Error, ErrorCode};
//! use beluga_llm::error::{is_truncated, truncated};
//!
//! let err = truncated("openai.chat");
//! assert_eq!(err.code(), ErrorCode::ProviderUnavailable);
//! assert!(err.is_retryable());
//! assert!(is_truncated(&err));
//!
//! // Still recognised when wrapped by a caller.
//! let wrapped = Error::new(ErrorCode::ToolFailed, "summary step failed").with_source(err);
//! assert!(is_truncated(&wrapped));
//! assert!(!is_truncated(&Error::cancelled()));
//! ```

use std::fmt;

use beluga_core::{Error, ErrorCode};

/// The cause of a truncated-answer error: the stream ended without a finish reason.
///
/// See the [module docs](crate::error); [`is_truncated`] finds it in an error's chain.
///
/// ```
/// use beluga_llm::error::StreamTruncated;
/// assert_eq!(StreamTruncated.to_string(), "the stream ended without a finish reason");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamTruncated;

impl fmt::Display for StreamTruncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the stream ended without a finish reason")
    }
}

impl std::error::Error for StreamTruncated {}

/// The error of a truncated answer, for the operation `op` (`"llm.generate"`,
/// `"openai.chat"`): `provider_unavailable` (retryable), caused by [`StreamTruncated`].
///
/// ```
/// use beluga_llm::error::truncated;
/// let err = truncated("llm.generate");
/// assert_eq!(
///     format!("{err:#}"),
///     "llm.generate [provider_unavailable]: the answer is truncated: \
///      the stream ended without a finish reason",
/// );
/// ```
pub fn truncated(op: &'static str) -> Error {
    Error::new(ErrorCode::ProviderUnavailable, "the answer is truncated")
        .with_op(op)
        .with_source(StreamTruncated)
}

/// Whether `err`, or any error in its chain of causes, is a truncated answer.
///
/// ```
/// use beluga_llm::error::{is_truncated, truncated};
/// assert!(is_truncated(&truncated("llm.generate")));
/// ```
pub fn is_truncated(err: &Error) -> bool {
    err.chain()
        .any(<dyn std::error::Error>::is::<StreamTruncated>)
}

/// The operation named by tool-call errors.
pub(crate) const TOOL_CALL_OP: &str = "llm.tool_call";

/// A call whose arguments are not valid JSON.
pub(crate) fn invalid_arguments(
    name: &str,
    id: &str,
    arguments: &str,
    err: &serde_json::Error,
) -> Error {
    const SHOWN: usize = 200;
    let shown = match arguments.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}...", &arguments[..end]),
        None => arguments.to_owned(),
    };
    Error::new(
        ErrorCode::InvalidInput,
        format!(
            "the arguments of tool call `{name}` (id `{id}`) are not valid JSON ({err}): {shown}"
        ),
    )
    .with_op(TOOL_CALL_OP)
}

/// A call that never received a tool name.
pub(crate) fn missing_name(index: u32, id: &str) -> Error {
    Error::new(
        ErrorCode::InvalidInput,
        format!("tool call {index} (id `{id}`) has no tool name"),
    )
    .with_op(TOOL_CALL_OP)
}
