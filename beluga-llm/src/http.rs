//! What the HTTP providers share: how a failed response becomes an [`Error`], how
//! `Retry-After` is read, and the limits every answer stream is read under.
//!
//! The providers ([`OpenAiCompatible`](crate::openai::OpenAiCompatible),
//! [`Anthropic`](crate::anthropic::Anthropic)) send one `POST` per call with
//! [`reqwest`] and read the answer's server-sent events with `eventsource-stream`, inside the
//! stream the consumer polls: no task is spawned and nothing is read ahead of the consumer
//! beyond one network read, so a slow consumer holds the server back (TCP flow control) instead
//! of filling memory. Dropping the stream, or cancelling its [`Context`](beluga_core::Context),
//! drops the response and so closes the connection within that poll.
//!
//! # Errors
//!
//! Every failure is a [`beluga_core::Error`] whose `op` names the provider (`openai.chat`,
//! `anthropic.messages`):
//!
//! | what happened | code |
//! |---|---|
//! | HTTP 401, 403 | `auth_error` |
//! | HTTP 429 (with its `Retry-After`, see [`Error::retry_after`]) | `rate_limit` |
//! | HTTP 408, 504 | `timeout` |
//! | HTTP 400, 413, 422 and other 4xx | `invalid_input` |
//! | HTTP 404 | `not_found` |
//! | HTTP 5xx (and Anthropic's 529), a connection that fails or is refused, a body cut short, an event that is not valid JSON | `provider_unavailable` |
//! | an `error` event in the stream | by the provider's error type (`rate_limit_error` is `rate_limit`, `overloaded_error` is `provider_unavailable`, ...) |
//! | no byte from the provider for the idle timeout ([`DEFAULT_IDLE_TIMEOUT`]) | `deadline_exceeded` |
//! | the body ends without a finish reason | `provider_unavailable`, [truncated](crate::error::truncated) |
//!
//! The message carries the HTTP status and the provider's own explanation (its
//! `error.message`), and `rate_limit`, `timeout` and `provider_unavailable` are retryable, so
//! [`batch`](beluga_core::RunnableExt::batch) retries them, waiting out `Retry-After`. A
//! provider never retries by itself: a request is sent again only by a retry policy, and only
//! as a whole new call.

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, SystemTime};

use beluga_core::stream::Emitter;
use beluga_core::{Error, ErrorCode};
use bytes::Bytes;
use eventsource_stream::{EventStream, EventStreamError};
use futures_core::Stream;
use futures_util::{FutureExt as _, StreamExt as _};
use pin_project_lite::pin_project;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use tokio::time::{Instant, Sleep};

use crate::schema::ChatChunk;

/// How long a provider waits for the next byte of an answer (or for the response to start)
/// before it ends the stream with `deadline_exceeded`: two minutes, long enough for a model
/// that thinks before it speaks. Change it with the providers' `with_idle_timeout`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(beluga_llm::http::DEFAULT_IDLE_TIMEOUT, Duration::from_secs(120));
/// ```
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The most bytes one server-sent event may take: a stream that goes past it without
/// completing an event ends with `provider_unavailable` rather than buffering without end.
///
/// ```
/// assert_eq!(beluga_llm::http::MAX_EVENT_BYTES, 16 * 1024 * 1024);
/// ```
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// The most bytes of an error response's body that are read for its message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The most characters of a provider's text quoted in an error message.
const MAX_QUOTE_CHARS: usize = 300;

/// The error for a response with a failed HTTP `status`, for the operation `op`: the code by
/// status (see the [module docs](crate::http)), a message with the status and the provider's
/// explanation found in `body` (`{"error": {"message": ...}}`, `{"error": "..."}`, or the
/// text itself, shortened), and `retry_after` attached when given.
///
/// ```
/// use std::time::Duration;
/// use beluga_core::ErrorCode;
/// use beluga_llm::http::status_error;
/// use reqwest::StatusCode;
///
/// let body = br#"{"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests"}}"#;
/// let err = status_error("openai.chat", StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2)), body);
/// assert_eq!(err.code(), ErrorCode::RateLimit);
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
/// assert_eq!(
///     err.to_string(),
///     "openai.chat [rate_limit]: HTTP 429 Too Many Requests: Rate limit reached for gpt-4o-mini",
/// );
///
/// let err = status_error("openai.chat", StatusCode::NOT_FOUND, None, br#"{"error":"model 'llama9' not found"}"#);
/// assert_eq!(err.code(), ErrorCode::NotFound);
/// assert!(err.message().ends_with("model 'llama9' not found"));
/// ```
pub fn status_error(
    op: &'static str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Error {
    let code = match status.as_u16() {
        401 | 403 => ErrorCode::Auth,
        429 => ErrorCode::RateLimit,
        408 | 504 => ErrorCode::Timeout,
        404 => ErrorCode::NotFound,
        400..=499 => ErrorCode::InvalidInput,
        _ => ErrorCode::ProviderUnavailable,
    };
    let detail = explanation(body);
    let message = if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    };
    let err = Error::new(code, message).with_op(op);
    match retry_after {
        Some(delay) => err.with_retry_after(delay),
        None => err,
    }
}

/// How long the server asked the client to wait, from the response's headers: `retry-after-ms`
/// (milliseconds, sent by OpenAI and Azure) if present, else `Retry-After` as seconds or as an
/// HTTP date (counted from now; a date in the past is zero). `None` when neither is there or
/// readable.
///
/// ```
/// use std::time::Duration;
/// use beluga_llm::http::retry_after;
/// use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(retry_after(&headers), None);
/// headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
/// assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
/// headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
/// assert_eq!(retry_after(&headers), Some(Duration::ZERO)); // long past
/// headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
/// assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
/// ```
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let value = text(RETRY_AFTER.as_str())?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The provider's explanation in an error body: `error.message`, a string `error`, a top-level
/// `message`, or the body's text; shortened.
fn explanation(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let found = value
            .pointer("/error/message")
            .or_else(|| value.get("error").filter(|e| e.is_string()))
            .or_else(|| value.get("message"))
            .and_then(serde_json::Value::as_str);
        if let Some(message) = found {
            return quote(message);
        }
    }
    quote(text)
}

/// `text`, cut to [`MAX_QUOTE_CHARS`] characters (with `…` when cut).
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// An error raised by the provider inside the stream (an `error` event), by its `type`
/// (OpenAI's and Anthropic's names) or `code`.
pub(crate) fn provider_error(op: &'static str, kind: &str, message: &str) -> Error {
    let kind = kind.to_ascii_lowercase();
    let code = if kind.contains("rate_limit") || kind.contains("quota") {
        ErrorCode::RateLimit
    } else if kind.contains("auth") || kind.contains("permission") || kind.contains("api_key") {
        ErrorCode::Auth
    } else if kind.contains("invalid_request") || kind.contains("too_large") {
        ErrorCode::InvalidInput
    } else if kind.contains("not_found") {
        ErrorCode::NotFound
    } else if kind.contains("timeout") {
        ErrorCode::Timeout
    } else {
        ErrorCode::ProviderUnavailable
    };
    let message = match (kind.is_empty(), message.is_empty()) {
        (true, true) => "the provider sent an error event".to_owned(),
        (true, false) => format!("the provider sent an error: {}", quote(message)),
        (false, true) => format!("the provider sent an error: {kind}"),
        (false, false) => format!("the provider sent an error: {kind}: {}", quote(message)),
    };
    Error::new(code, message).with_op(op)
}

/// The error for an event whose data is not what the provider's format says.
pub(crate) fn malformed(op: &'static str, data: &str, err: &serde_json::Error) -> Error {
    Error::new(
        ErrorCode::ProviderUnavailable,
        format!(
            "the provider sent an event that cannot be read ({err}): {}",
            quote(data)
        ),
    )
    .with_op(op)
}

/// Where and how a provider sends its requests: the base URL, the model, the credentials, extra
/// headers, the idle timeout, and the HTTP client.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) base_url: String,
    pub(crate) model: String,
    pub(crate) api_key: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) idle_timeout: Duration,
    /// The HTTP client: the user's, or one built on the first request and kept (its
    /// connection pool with it).
    pub(crate) client: OnceLock<reqwest::Client>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// The host and port of the base URL, for a span's `server.address` and `server.port`.
    #[cfg(feature = "tracing")]
    pub(crate) fn server(&self) -> Option<(String, u16)> {
        let url = reqwest::Url::parse(&self.base_url).ok()?;
        Some((url.host_str()?.to_owned(), url.port_or_known_default()?))
    }

    /// `model` (a provider behind this endpoint) traced, with the provider's name, the
    /// endpoint's server and its model on the spans.
    #[cfg(feature = "tracing")]
    pub(crate) fn traced<M>(
        &self,
        provider: Option<&'static str>,
    ) -> impl FnOnce(M) -> crate::trace::TracedModel<M> + use<M> {
        let (server, default_model) = (self.server(), self.model.clone());
        move |model| {
            let mut traced =
                crate::trace::TracedModel::new(model).with_default_model(default_model);
            if let Some(provider) = provider {
                traced = traced.with_provider(provider);
            }
            if let Some((address, port)) = server {
                traced = traced.with_server(address, port);
            }
            traced
        }
    }

    pub(crate) fn new(base_url: &str) -> Self {
        Endpoint {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: String::new(),
            api_key: None,
            headers: HeaderMap::new(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            client: OnceLock::new(),
        }
    }

    /// Adds a header sent with every request; an invalid name or value is an `invalid_input`
    /// error.
    pub(crate) fn add_header(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|err| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("`{name}` is not a header name"),
            )
            .with_source(err)
        })?;
        let value = HeaderValue::from_str(value).map_err(|err| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("the value of header `{name}` is not a valid header value"),
            )
            .with_source(err)
        })?;
        self.headers.append(name, value);
        Ok(())
    }

    /// The model of a request: its own, else the configured one.
    pub(crate) fn model<'a>(&'a self, requested: &'a str) -> &'a str {
        if requested.is_empty() {
            &self.model
        } else {
            requested
        }
    }

    /// Sends `body` as JSON to `{base_url}{path}` with these auth headers, waiting at most the
    /// idle timeout for the response to start; a failed status becomes its error.
    pub(crate) async fn post(
        &self,
        op: &'static str,
        path: &str,
        auth: HeaderMap,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, Error> {
        let client = if let Some(client) = self.client.get() {
            client
        } else {
            let built = reqwest::Client::builder()
                .build()
                .map_err(|err| transport_error(op, err))?;
            self.client.get_or_init(|| built)
        };
        let url = format!("{}{path}", self.base_url);
        let request = client
            .post(&url)
            .headers(self.headers.clone())
            .headers(auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .body(body);
        let response = within(op, self.idle_timeout, request.send())
            .await?
            .map_err(|err| transport_error(op, err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let delay = retry_after(response.headers());
        let body = within(
            op,
            self.idle_timeout,
            read_prefix(response, MAX_ERROR_BODY_BYTES),
        )
        .await
        .unwrap_or_default();
        Err(status_error(op, status, delay, &body))
    }
}

/// Up to `limit` bytes of a response's body; what could be read when reading fails.
async fn read_prefix(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// `future`'s output, or `deadline_exceeded` when it takes longer than `idle`.
async fn within<F: Future>(
    op: &'static str,
    idle: Duration,
    future: F,
) -> Result<F::Output, Error> {
    match Instant::now().checked_add(idle) {
        Some(deadline) => tokio::time::timeout_at(deadline, future)
            .await
            .map_err(|_| stalled(op, idle)),
        None => Ok(future.await),
    }
}

fn stalled(op: &'static str, idle: Duration) -> Error {
    Error::new(
        ErrorCode::DeadlineExceeded,
        format!("the provider sent nothing for {idle:?} (the idle timeout): the stream stalled"),
    )
    .with_op(op)
}

/// A failure of the HTTP exchange itself.
fn transport_error(op: &'static str, err: reqwest::Error) -> Error {
    let (code, message) = if err.is_builder() {
        (ErrorCode::InvalidInput, "the request cannot be built")
    } else if err.is_timeout() {
        (ErrorCode::Timeout, "the HTTP request timed out")
    } else if err.is_connect() {
        (
            ErrorCode::ProviderUnavailable,
            "cannot connect to the provider",
        )
    } else {
        (ErrorCode::ProviderUnavailable, "the HTTP exchange failed")
    };
    Error::new(code, message).with_op(op).with_source(err)
}

/// What a decoder makes of one server-sent event.
#[allow(
    clippy::large_enum_variant,
    reason = "moved once per event; boxing the chunk would allocate once per event"
)]
pub(crate) enum Step {
    /// A chunk for the consumer.
    Chunk(ChatChunk),
    /// Nothing for the consumer (a ping, a role announcement, an empty delta).
    Skip,
    /// The provider's end-of-answer marker.
    Done,
}

/// Turns one provider's server-sent events into chunks.
pub(crate) trait Decoder {
    /// The operation its errors name.
    const OP: &'static str;

    /// One event.
    fn event(&mut self, event: &eventsource_stream::Event) -> Result<Step, Error>;

    /// Whether the answer is complete (a finish reason was seen) when the body ends without
    /// the end marker.
    fn finished(&self) -> bool;
}

/// Reads `body` as server-sent events, decodes each, and emits the chunks, until the end
/// marker, the end of the body, or an error. The idle timeout runs while the body has nothing
/// to give; an event larger than [`MAX_EVENT_BYTES`] ends the stream.
pub(crate) async fn pump<D, S, E>(
    e: &mut Emitter<'_, ChatChunk>,
    mut decoder: D,
    body: S,
    idle: Duration,
) -> Result<(), Error>
where
    D: Decoder,
    S: Stream<Item = Result<Bytes, E>>,
    E: StdError + Send + Sync + 'static,
{
    let unfinished = AtomicUsize::new(0);
    let watched = Watched {
        body,
        idle: Instant::now()
            .checked_add(idle)
            .map(tokio::time::sleep_until),
        idle_timeout: idle,
        unfinished: &unfinished,
        progressed: false,
    };
    let mut events = std::pin::pin!(EventStream::new(watched));
    loop {
        match events.next().await {
            Some(Ok(event)) => {
                unfinished.store(0, Ordering::Relaxed);
                match decoder.event(&event)? {
                    Step::Chunk(chunk) => e.emit(chunk).await,
                    Step::Skip => {}
                    Step::Done => {
                        // Read the end of the body if it is already here, so that the
                        // connection can be reused; never wait for it.
                        let _ = events.next().now_or_never();
                        return Ok(());
                    }
                }
            }
            Some(Err(err)) => return Err(read_error::<D, E>(err, idle)),
            None if decoder.finished() => return Ok(()),
            None => return Err(crate::error::truncated(D::OP)),
        }
    }
}

/// Why the body could not be read as events.
fn read_error<D: Decoder, E>(err: EventStreamError<WatchError<E>>, idle: Duration) -> Error
where
    E: StdError + Send + Sync + 'static,
{
    match err {
        EventStreamError::Transport(WatchError::Stalled) => stalled(D::OP, idle),
        EventStreamError::Transport(WatchError::TooLarge) => Error::new(
            ErrorCode::ProviderUnavailable,
            format!("the provider sent an event larger than {MAX_EVENT_BYTES} bytes"),
        )
        .with_op(D::OP),
        EventStreamError::Transport(WatchError::Body(err)) => Error::new(
            ErrorCode::ProviderUnavailable,
            "the connection failed in the middle of the answer",
        )
        .with_op(D::OP)
        .with_source(err),
        EventStreamError::Utf8(err) => Error::new(
            ErrorCode::ProviderUnavailable,
            "the provider sent an event stream that is not UTF-8",
        )
        .with_op(D::OP)
        .with_source(err),
        EventStreamError::Parser(err) => Error::new(
            ErrorCode::ProviderUnavailable,
            format!("the provider sent a malformed event stream: {err:?}"),
        )
        .with_op(D::OP),
    }
}

/// The body stream's failures, as the event parser passes them on.
#[derive(Debug)]
enum WatchError<E> {
    Body(E),
    Stalled,
    TooLarge,
}

impl<E: std::fmt::Display> std::fmt::Display for WatchError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::Body(err) => err.fmt(f),
            WatchError::Stalled => f.write_str("stalled"),
            WatchError::TooLarge => f.write_str("event too large"),
        }
    }
}

pin_project! {
    /// The response body, with the idle timeout and the event size limit. The timer is reset
    /// only when the body goes from giving bytes to having none: a body that keeps bytes ready
    /// never reads the clock.
    struct Watched<'a, S> {
        #[pin]
        body: S,
        #[pin]
        idle: Option<Sleep>,
        idle_timeout: Duration,
        // Bytes read since the last complete event; `pump` resets it.
        unfinished: &'a AtomicUsize,
        progressed: bool,
    }
}

impl<S, E> Stream for Watched<'_, S>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    type Item = Result<Bytes, WatchError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        match this.body.poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                *this.progressed = true;
                let unfinished = this.unfinished.load(Ordering::Relaxed) + bytes.len();
                this.unfinished.store(unfinished, Ordering::Relaxed);
                if unfinished > MAX_EVENT_BYTES {
                    return Poll::Ready(Some(Err(WatchError::TooLarge)));
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(WatchError::Body(err)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let Some(mut idle) = this.idle.as_mut().as_pin_mut() else {
                    return Poll::Pending;
                };
                if std::mem::take(this.progressed) {
                    let Some(deadline) = Instant::now().checked_add(*this.idle_timeout) else {
                        this.idle.set(None);
                        return Poll::Pending;
                    };
                    idle.as_mut().reset(deadline);
                }
                match idle.poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(WatchError::Stalled))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}
