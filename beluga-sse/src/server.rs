//! Serving event streams as server-sent events with axum.
//!
//! * [`serve`] (or [`SseOptions::serve`]) turns one event stream into a response: keep-alive
//!   comments, an `id` on every event, the chosen [`Encoding`]. The producer runs inside the
//!   response body, so when the client goes away the body is dropped, the producer with it,
//!   and its [`Context`] is cancelled at once.
//! * [`Replay`] serves streams that a client can resume after a lost connection, with the
//!   `Last-Event-ID` it saw last, from a bounded buffer per stream. Its [policy](Replay#policy)
//!   says who owns the producer while no client is connected, and for how long.
//!
//! Errors of the handlers ([`Replay`]'s, or an application's own) become responses through
//! [`HttpError`]: an HTTP status for the code and the error's JSON as the body, which
//! [`client`](crate::client) reads back with its code.

mod frames;
mod http_error;
mod last_event_id;
mod replay;
mod served_item;

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{self, KeepAlive, KeepAliveStream, Sse};
use axum::response::{IntoResponse, Response};
use beluga_core::Context;
use futures_core::Stream;

pub use self::frames::EventFrames;
pub use self::http_error::HttpError;
pub use self::last_event_id::LastEventId;
pub use self::replay::{Replay, ReplayOptions, ReplayReader};
pub use self::served_item::ServedItem;
use crate::encoding::Encoding;
use crate::frame::Frame;

/// The header that carries a resumable stream's id on the response that starts it.
///
/// ```
/// assert_eq!(beluga_sse::server::STREAM_ID_HEADER, "x-beluga-stream-id");
/// ```
pub const STREAM_ID_HEADER: &str = "x-beluga-stream-id";

/// How event streams are served: the keep-alive interval, for now.
///
/// ```
/// use std::time::Duration;
/// use beluga_sse::server::SseOptions;
///
/// let options = SseOptions::new().keep_alive(Duration::from_secs(5));
/// assert_eq!(options.keep_alive_interval(), Duration::from_secs(5));
/// ```
#[derive(Clone, Debug)]
pub struct SseOptions {
    keep_alive: Duration,
}

impl Default for SseOptions {
    fn default() -> Self {
        SseOptions {
            keep_alive: Duration::from_secs(15),
        }
    }
}

impl SseOptions {
    /// The defaults: a keep-alive comment after 15 seconds without an event.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = beluga_sse::server::SseOptions::new();
    /// assert_eq!(options.keep_alive_interval(), Duration::from_secs(15));
    /// ```
    pub fn new() -> Self {
        SseOptions::default()
    }

    /// Sends a keep-alive comment (`:` and a blank line) after `interval` without an event, so
    /// that proxies and clients with an idle timeout keep the connection open.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = beluga_sse::server::SseOptions::new().keep_alive(Duration::from_secs(1));
    /// assert_eq!(options.keep_alive_interval(), Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// The keep-alive interval.
    ///
    /// ```
    /// let options = beluga_sse::server::SseOptions::new();
    /// assert_eq!(options.keep_alive_interval().as_secs(), 15);
    /// ```
    pub fn keep_alive_interval(&self) -> Duration {
        self.keep_alive
    }

    /// Serves the stream that `start` returns as an SSE response; see [`serve`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use beluga_core::{Context, stream};
    /// use beluga_sse::BelugaJson;
    /// use beluga_sse::server::SseOptions;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let options = SseOptions::new().keep_alive(Duration::from_secs(5));
    /// let response = options.serve(&Context::new(), BelugaJson, |_ctx| stream::iter(["hi"]));
    /// # drop(response);
    /// # }
    /// ```
    pub fn serve<T, S, E>(
        &self,
        ctx: &Context,
        encoding: E,
        start: impl FnOnce(Context) -> S,
    ) -> SseResponse<EventFrames<S, E, T>>
    where
        S: Stream + Send + 'static,
        S::Item: ServedItem<Payload = T>,
        E: Encoding<T>,
        T: 'static,
    {
        let ctx = ctx.child();
        let headers = encoding.headers();
        let stream = start(ctx.clone());
        SseResponse::new(self, EventFrames::new(stream, encoding, ctx), headers, None)
    }
}

/// Serves the event stream that `start` returns as an SSE response, with the default
/// [`SseOptions`].
///
/// `start` is handed a child of `ctx`; the response owns the stream. When the client goes away
/// (or the stream has ended and been sent), the response body is dropped: the stream is dropped
/// with it, and the child context is cancelled first, so work the producer spawned with it ends
/// too. `ctx` itself is never cancelled.
///
/// Every event gets an `id` (its position, from 1), a comment keeps the connection alive every
/// 15 seconds without an event, and the stream's end is written in the encoding's form: a
/// terminal `Err` becomes the encoding's error, never a silently closed connection. A panic in
/// the producer ends the response with an `internal` error in the same way.
///
/// A client that loses the connection cannot resume this stream; serve it with [`Replay`]
/// for that, or give each item the id the source can resume after, as below.
///
/// # Ids from the source
///
/// A stream of `(id, EventResult)` pairs (any [`ServedItem`]) is served with those ids
/// instead of numbers. When the source can go on after any item it names, as a NATS
/// relay can (beluga-nats's `RemoteStream::with_ids`), the server keeps no state: a
/// reconnecting client's `Last-Event-ID` is handed back to the source, by any instance.
///
/// ```
/// use axum::{Router, routing::get};
/// use axum::http::StatusCode;
/// use beluga_core::{Context, Event, Error, ErrorCode, stream};
/// use beluga_sse::BelugaJson;
/// use beluga_sse::server::{HttpError, LastEventId};
/// use futures_util::StreamExt;
///
/// /// A log that any request can read from any line: ids are line numbers.
/// const LOG: [&str; 3] = ["boot", "ready", "stop"];
///
/// async fn log(LastEventId(last): LastEventId) -> Result<impl axum::response::IntoResponse, HttpError> {
///     let from = match last {
///         Some(id) => id.parse::<usize>().map_err(|_| {
///             Error::new(ErrorCode::InvalidInput, format!("bad Last-Event-ID `{id}`"))
///         })? + 1,
///         None => 0,
///     };
///     let lines = stream::iter(LOG).skip(from).enumerate().map(move |(i, item)| (from + i, item));
///     Ok(beluga_sse::serve(&Context::new(), BelugaJson, |_| lines))
/// }
///
/// let app: Router = Router::new().route("/log", get(log));
/// # drop(app);
/// ```
///
/// (`stream::iter` ends with `done`, which has no line of its own: it takes the number after
/// the last line.)
///
/// ```
/// use axum::{Router, routing::get};
/// use beluga_core::{Context, EventResult, stream_producer};
/// use beluga_sse::BelugaJson;
/// use futures_util::Stream;
///
/// #[stream_producer]
/// fn answer(ctx: Context) -> impl Stream<Item = EventResult<String>> + Send + 'static {
///     for word in ["Hello", " world"] {
///         emit!(word.to_owned());
///     }
/// }
///
/// let app: Router = Router::new().route(
///     "/answer",
///     get(async || beluga_sse::serve(&Context::new(), BelugaJson, answer)),
/// );
/// # drop(app);
/// ```
pub fn serve<T, S, E>(
    ctx: &Context,
    encoding: E,
    start: impl FnOnce(Context) -> S,
) -> SseResponse<EventFrames<S, E, T>>
where
    S: Stream + Send + 'static,
    S::Item: ServedItem<Payload = T>,
    E: Encoding<T>,
    T: 'static,
{
    SseOptions::default().serve(ctx, encoding, start)
}

/// An SSE response: `text/event-stream` with keep-alive comments, the encoding's headers,
/// and for a resumable stream its id in [`STREAM_ID_HEADER`]. Return it from an axum handler.
///
/// ```
/// use axum::response::IntoResponse;
/// use beluga_core::{Context, stream};
/// use beluga_sse::BelugaJson;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let response = beluga_sse::serve(&Context::new(), BelugaJson, |_| stream::iter([1, 2]));
/// assert_eq!(response.stream_id(), None);
/// let response = response.into_response();
/// assert_eq!(response.headers()["content-type"], "text/event-stream");
/// # }
/// ```
#[must_use = "a response does nothing unless it is returned to the server"]
pub struct SseResponse<S> {
    sse: Sse<KeepAliveStream<S>>,
    headers: &'static [(&'static str, &'static str)],
    stream_id: Option<String>,
}

impl<S> SseResponse<S>
where
    S: Stream<Item = Result<sse::Event, Infallible>> + Send + 'static,
{
    fn new(
        options: &SseOptions,
        stream: S,
        headers: &'static [(&'static str, &'static str)],
        stream_id: Option<String>,
    ) -> Self {
        SseResponse {
            sse: Sse::new(stream).keep_alive(KeepAlive::new().interval(options.keep_alive)),
            headers,
            stream_id,
        }
    }
}

impl<S> SseResponse<S> {
    /// The id of a resumable stream ([`Replay`]), `None` for a stream served with [`serve`].
    ///
    /// ```
    /// use beluga_core::{Context, stream};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let response = beluga_sse::serve(&Context::new(), beluga_sse::BelugaJson, |_| stream::iter([1]));
    /// assert!(response.stream_id().is_none());
    /// # }
    /// ```
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }
}

impl<S> std::fmt::Debug for SseResponse<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseResponse")
            .field("headers", &self.headers)
            .field("stream_id", &self.stream_id)
            .finish_non_exhaustive()
    }
}

impl<S> IntoResponse for SseResponse<S>
where
    S: Stream<Item = Result<sse::Event, Infallible>> + Send + 'static,
{
    fn into_response(self) -> Response {
        let mut response = self.sse.into_response();
        let headers = response.headers_mut();
        // Proxies that buffer responses (nginx) pass each event on at once.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        if let Some(value) = self
            .stream_id
            .and_then(|id| HeaderValue::from_str(&id).ok())
        {
            headers.insert(STREAM_ID_HEADER, value);
        }
        response
    }
}

/// The axum event for `frame` with `id`, if any (checked for line breaks and NULs by the
/// caller). An event name with a line break, which SSE cannot carry, is left out rather than
/// break the stream.
fn sse_event(frame: &Frame, id: Option<&str>) -> sse::Event {
    let mut event = sse::Event::default();
    if let Some(id) = id {
        event = event.id(id);
    }
    if let Some(name) = frame.event().filter(|name| !name.contains(['\r', '\n'])) {
        event = event.event(name);
    }
    event.data(frame.data())
}
