//! `Error`: codes, retryability through wrapping, `Display`, conversions for `?`.

use std::error::Error as _;
use std::time::Duration;

use beluga_core::{Error, ErrorCode, ResultExt};

#[test]
fn error_is_one_pointer_clone_send_sync_static() {
    fn assert_traits<E: Clone + Send + Sync + 'static + std::error::Error>() {}
    assert_traits::<Error>();
    assert_eq!(size_of::<Error>(), size_of::<usize>());
    assert_eq!(size_of::<Option<Error>>(), size_of::<usize>());
}

#[test]
fn auth_wrapped_as_provider_unavailable_is_not_retryable() {
    let auth = Error::new(ErrorCode::Auth, "invalid api key").with_op("openai.chat");
    let wrapped = Error::new(ErrorCode::ProviderUnavailable, "model call failed")
        .with_op("agent.step")
        .with_source(auth);
    // On its own the outer code would be retryable: the root cause must win.
    assert!(ErrorCode::ProviderUnavailable.is_retryable());
    assert!(!wrapped.is_retryable());
    assert_eq!(wrapped.root_code(), ErrorCode::Auth);
}

#[test]
fn rate_limit_wrapped_as_tool_failed_is_retryable() {
    let rate = Error::new(ErrorCode::RateLimit, "429").with_op("search.api");
    let wrapped = Error::new(ErrorCode::ToolFailed, "web_search failed").with_source(rate);
    assert!(!ErrorCode::ToolFailed.is_retryable());
    assert!(wrapped.is_retryable());
}

#[derive(Debug)]
struct Foreign(Error);

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("foreign layer")
    }
}

impl std::error::Error for Foreign {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn root_cause_is_found_through_deep_and_foreign_wrapping() {
    // auth -> timeout -> (foreign) -> provider_unavailable -> tool_failed
    let mut err = Error::new(ErrorCode::Auth, "expired token");
    err = Error::new(ErrorCode::Timeout, "retry loop gave up").with_source(err);
    let foreign = Foreign(err);
    err = Error::new(ErrorCode::ProviderUnavailable, "upstream").with_source(foreign);
    err = Error::new(ErrorCode::ToolFailed, "tool").with_source(err);
    assert_eq!(err.root_code(), ErrorCode::Auth);
    assert!(!err.is_retryable());
    assert_eq!(err.chain().count(), 5);

    // A foreign root cause carries no code: the innermost beluga error decides.
    let err = Error::new(ErrorCode::ToolFailed, "outer").with_source(
        Error::new(ErrorCode::RateLimit, "inner")
            .with_source(Foreign(Error::new(ErrorCode::Timeout, "innermost"))),
    );
    assert_eq!(err.root_code(), ErrorCode::Timeout);
    let err = Error::new(ErrorCode::RateLimit, "x").with_source(std::io::Error::other("io"));
    assert_eq!(err.root_code(), ErrorCode::RateLimit);
    assert!(err.is_retryable());
}

#[test]
fn an_unclassified_cause_does_not_override_a_classification() {
    // `?` turned an unknown I/O failure into `internal`; the caller knows it is a connection
    // problem. The deliberate classification must win.
    let io: Error = std::io::Error::other("tls handshake").into();
    assert_eq!(io.code(), ErrorCode::Internal);
    let err = Error::new(ErrorCode::ProviderUnavailable, "connect failed").with_source(io);
    assert_eq!(err.root_code(), ErrorCode::ProviderUnavailable);
    assert!(err.is_retryable());
    // But a classified root below an `internal` layer still decides.
    let err = Error::new(ErrorCode::Internal, "wrapper")
        .with_source(Error::new(ErrorCode::Auth, "bad key"));
    assert_eq!(err.root_code(), ErrorCode::Auth);
}

#[test]
fn a_wrapped_cancellation_is_still_a_cancellation() {
    let err = Error::new(ErrorCode::ToolFailed, "search stopped").with_source(Error::cancelled());
    assert!(err.is_cancellation());
    assert!(!err.is_retryable());
    assert!(!Error::new(ErrorCode::Timeout, "slow").is_cancellation());
}

#[test]
fn retryable_codes_are_exactly_rate_limit_timeout_provider_unavailable() {
    let retryable: Vec<ErrorCode> = ErrorCode::ALL
        .iter()
        .copied()
        .filter(|c| c.is_retryable())
        .collect();
    assert_eq!(
        retryable,
        [
            ErrorCode::RateLimit,
            ErrorCode::Timeout,
            ErrorCode::ProviderUnavailable
        ]
    );
}

#[test]
fn display_never_repeats_the_cause() {
    let inner = Error::new(ErrorCode::RateLimit, "slow down, 429").with_op("openai.chat");
    let outer = Error::new(ErrorCode::ToolFailed, "search failed")
        .with_op("tool.search")
        .with_source(inner.clone());
    let shown = outer.to_string();
    assert_eq!(shown, "tool.search [tool_failed]: search failed");
    assert!(!shown.contains("slow down"), "{shown}");

    // The alternate form prints each link exactly once.
    let full = format!("{outer:#}");
    assert_eq!(
        full,
        "tool.search [tool_failed]: search failed: openai.chat [rate_limit]: slow down, 429"
    );
    assert_eq!(full.matches("slow down").count(), 1);
    assert_eq!(full.matches("search failed").count(), 1);

    // Three levels, with a foreign error in the middle.
    let three = Error::new(ErrorCode::Internal, "top").with_source(Foreign(inner));
    let full = format!("{three:#}");
    assert_eq!(
        full,
        "[internal] top: foreign layer: openai.chat [rate_limit]: slow down, 429"
    );
    assert_eq!(three.to_string(), "[internal] top");
}

#[test]
fn display_leaves_out_empty_parts() {
    assert_eq!(
        Error::new(ErrorCode::NotFound, "no tool").to_string(),
        "[not_found] no tool"
    );
    assert_eq!(
        Error::from_source(ErrorCode::ToolFailed, "fetch", std::io::Error::other("x")).to_string(),
        "fetch [tool_failed]"
    );
    assert_eq!(
        Error::cancelled().to_string(),
        "context [cancelled]: context cancelled"
    );
}

#[test]
fn io_errors_convert_with_question_mark_and_keep_their_source() {
    use std::io::{Error as IoError, ErrorKind};
    fn fails(kind: ErrorKind) -> Result<(), Error> {
        Err(IoError::new(kind, "boom"))?;
        Ok(())
    }
    let cases = [
        (ErrorKind::TimedOut, ErrorCode::Timeout),
        (ErrorKind::ConnectionRefused, ErrorCode::ProviderUnavailable),
        (ErrorKind::ConnectionReset, ErrorCode::ProviderUnavailable),
        (ErrorKind::NotFound, ErrorCode::NotFound),
        (ErrorKind::PermissionDenied, ErrorCode::Auth),
        (ErrorKind::InvalidData, ErrorCode::InvalidInput),
        (ErrorKind::Other, ErrorCode::Internal),
    ];
    for (kind, code) in cases {
        let err = fails(kind).unwrap_err();
        assert_eq!(err.code(), code, "{kind:?}");
        let io = err.source().and_then(|s| s.downcast_ref::<IoError>());
        assert_eq!(io.map(IoError::kind), Some(kind));
        assert!(!err.to_string().contains("boom"));
        assert!(format!("{err:#}").ends_with(": boom"));
    }
}

#[derive(Debug)]
struct ParseFailure;

impl std::fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unexpected token")
    }
}

impl std::error::Error for ParseFailure {}

impl From<ParseFailure> for Error {
    fn from(e: ParseFailure) -> Self {
        Error::from_source(ErrorCode::InvalidInput, "parser", e)
    }
}

#[test]
fn user_errors_convert_by_from_impl_or_err_code() {
    fn via_from() -> Result<(), Error> {
        Err(ParseFailure)?
    }
    fn via_err_code() -> Result<(), Error> {
        Err::<(), _>(ParseFailure).err_code(ErrorCode::ToolFailed, "tool.parse")?;
        Ok(())
    }
    let a = via_from().unwrap_err();
    assert_eq!((a.code(), a.op()), (ErrorCode::InvalidInput, "parser"));
    assert!(a.source().unwrap().is::<ParseFailure>());
    let b = via_err_code().unwrap_err();
    assert_eq!((b.code(), b.op()), (ErrorCode::ToolFailed, "tool.parse"));
    assert_eq!(
        format!("{b:#}"),
        "tool.parse [tool_failed]: unexpected token"
    );
}

#[test]
fn boxed_errors_unbox_ours_and_wrap_others() {
    let ours: Box<dyn std::error::Error + Send + Sync> =
        Box::new(Error::new(ErrorCode::GuardBlocked, "blocked"));
    let back = Error::from(ours);
    assert_eq!(back.code(), ErrorCode::GuardBlocked);
    assert!(back.source().is_none());

    let other: Box<dyn std::error::Error + Send + Sync> = "plain text".into();
    let wrapped = Error::from(other);
    assert_eq!(wrapped.code(), ErrorCode::Internal);
    assert_eq!(format!("{wrapped:#}"), "[internal]: plain text");
}

#[tokio::test(start_paused = true)]
async fn tokio_timeout_converts_to_timeout() {
    async fn slow() -> Result<(), Error> {
        tokio::time::timeout(
            std::time::Duration::from_millis(5),
            std::future::pending::<()>(),
        )
        .await?;
        Ok(())
    }
    let err = slow().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);
    assert!(err.is_retryable());
}

#[test]
fn codes_round_trip_through_their_names() {
    for &code in ErrorCode::ALL {
        assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
        assert_eq!(code.to_string(), code.as_str());
    }
    let err = "auth".parse::<ErrorCode>().unwrap_err().to_string();
    assert!(
        err.starts_with("unknown error code `auth`, expected one of: `rate_limit`"),
        "{err}"
    );
}

#[test]
fn clones_share_and_builders_do_not_disturb_clones() {
    let a = Error::new(ErrorCode::Timeout, "slow");
    let b = a.clone().with_op("changed");
    assert_eq!(a.op(), "");
    assert_eq!(b.op(), "changed");
    assert_ne!(a, b);
    assert_eq!(a, a.clone());
}

#[test]
fn a_retry_delay_is_found_through_wrapping_and_kept_out_of_the_text() {
    let limit = Error::new(ErrorCode::RateLimit, "429")
        .with_op("openai.chat")
        .with_retry_after(Duration::from_secs(7));
    let wrapped =
        Error::new(ErrorCode::ToolFailed, "search failed").with_source(Foreign(limit.clone()));
    assert_eq!(limit.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(
        wrapped.retry_after(),
        Some(Duration::from_secs(7)),
        "through a foreign cause"
    );
    assert_eq!(
        format!("{wrapped:#}"),
        "[tool_failed] search failed: foreign layer: openai.chat [rate_limit]: 429"
    );
    // The outermost delay wins, and it is part of equality.
    let outer = wrapped.clone().with_retry_after(Duration::from_secs(1));
    assert_eq!(outer.retry_after(), Some(Duration::from_secs(1)));
    assert_ne!(outer, wrapped);
    assert_eq!(Error::new(ErrorCode::RateLimit, "429").retry_after(), None);
}
