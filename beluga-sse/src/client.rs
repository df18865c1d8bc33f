//! Reading a beluga SSE endpoint (the [`BelugaJson`](crate::BelugaJson) encoding) back into an
//! event stream.
//!
//! The stream has the semantics of a local one: the events in order, then exactly one terminal
//! item (the `done` event or the `Err` the server's stream ended with, its code preserved) or,
//! when the server's stream ended without one, none; then `None`. Dropping the stream closes
//! the connection, which drops the producer on the server.
//!
//! How failures come out, as the terminal `Err`:
//!
//! * an error response: the error in its body when the server sent a beluga error
//!   ([`HttpError`](crate::server::HttpError)), else one for the status (401/403 `auth_error`,
//!   404/410 `not_found`, 408/504 `timeout`, 429 `rate_limit`, 5xx `provider_unavailable`,
//!   other 4xx `invalid_input`);
//! * a connection that cannot be made, or is lost before the stream's end:
//!   `provider_unavailable` (`timeout` when reqwest timed out), with reqwest's error as the
//!   cause;
//! * a response that is not `text/event-stream`: `invalid_input`; data that is not an event:
//!   `internal`;
//! * the [`Context`] cancelled or past its deadline: `cancelled` / `deadline_exceeded`, and
//!   the connection is closed.
//!
//! # Resuming
//!
//! The request that starts a stream is sent once and never retried: sending it again would
//! start a second generation. When the server can resume the stream (it serves it with
//! [`Replay`](crate::server::Replay), or with ids from a source that can go on after them, see
//! [`ServedItem`](crate::server::ServedItem)) and the reader is told how to reach it again
//! ([`Reader::resume`]), a connection lost before the stream's end is resumed instead: the
//! reader sends the resume request with `Last-Event-ID` set to the last id it received,
//! exactly as it received it (the reader does not interpret ids), and continues with the next
//! event, with no gap and no duplicate. Resume attempts that fail with
//! a retryable error (the server unreachable, `provider_unavailable`, `timeout`) are tried again
//! after a delay, up to [`Reader::max_resumes`] times in a row; any other error (the buffer no
//! longer holds the next event: `not_found`) ends the stream.
//!
//! A connection that dies silently (no close from the other side) is noticed by reqwest's
//! read timeout: set [`reqwest::ClientBuilder::read_timeout`] above the server's keep-alive
//! interval (15 seconds by default).

mod status;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use beluga_core::{Context, Error, ErrorCode, Event, EventResult, EventStreamExt};
use eventsource_stream::{EventStreamError, Eventsource};
use futures_core::Stream;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{RequestBuilder, Response};
use serde::de::DeserializeOwned;

use self::status::{error_for_response, transport_error};
use crate::frame::EventId;

/// The header that carries a resumable stream's id, as the server sends it.
const STREAM_ID_HEADER: &str = "x-beluga-stream-id";

/// The most consecutive failed resume attempts, by default.
const DEFAULT_MAX_RESUMES: u32 = 3;

/// Reads the beluga SSE endpoint that `request` reaches into an event stream; see the
/// [module docs](self). The request is sent once, when the stream is first polled, and a lost
/// connection ends the stream with `provider_unavailable`: use [`Reader`] to resume instead.
///
/// ```no_run
/// use beluga_core::{Context, EventStreamExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let http = reqwest::Client::new();
/// let request = http.post("http://127.0.0.1:3000/chat").body("Why is the sky blue?");
/// let answer = beluga_sse::client::read::<String>(&Context::new(), request).collect_events().await;
/// let text: String = answer.data().cloned().collect();
/// # drop(text);
/// # }
/// ```
pub fn read<T>(
    ctx: &Context,
    request: RequestBuilder,
) -> impl Stream<Item = EventResult<T>> + Send + 'static + use<T>
where
    T: DeserializeOwned + Send + 'static,
{
    Reader::new(request).read(ctx)
}

/// A function that builds the request which resumes a stream (the client adds `Last-Event-ID`).
type ResumeFn = Arc<dyn Fn() -> RequestBuilder + Send + Sync>;

/// Reads a beluga SSE endpoint, resuming after a lost connection when told how; see the
/// [module docs](self#resuming).
///
/// ```no_run
/// use std::time::Duration;
/// use beluga_core::{Context, EventStreamExt};
/// use beluga_sse::client::Reader;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let http = reqwest::Client::new();
/// let start = http.post("http://127.0.0.1:3000/chat").body("Why is the sky blue?");
/// let resume = move || http.get("http://127.0.0.1:3000/chat/resume");
/// let answer = Reader::new(start)
///     .resume(resume)
///     .max_resumes(5)
///     .resume_delay(Duration::from_millis(100))
///     .read::<String>(&Context::new())
///     .collect_events()
///     .await;
/// # drop(answer);
/// # }
/// ```
#[must_use = "a reader does nothing until `read` is called and the stream polled"]
pub struct Reader {
    request: RequestBuilder,
    resume: Option<ResumeFn>,
    max_resumes: u32,
    resume_delay: Duration,
}

impl Reader {
    /// A reader of the stream that `request` starts; it does not resume.
    ///
    /// ```
    /// let http = reqwest::Client::new();
    /// let reader = beluga_sse::client::Reader::new(http.get("http://127.0.0.1:3000/events"));
    /// # drop(reader);
    /// ```
    pub fn new(request: RequestBuilder) -> Self {
        Reader {
            request,
            resume: None,
            max_resumes: DEFAULT_MAX_RESUMES,
            resume_delay: Duration::from_millis(250),
        }
    }

    /// Resumes a lost connection with the request that `resume` builds (a `GET` to the
    /// server's resume route, with whatever authentication it needs); the reader adds
    /// `Last-Event-ID`.
    ///
    /// ```
    /// let http = reqwest::Client::new();
    /// let reader = beluga_sse::client::Reader::new(http.post("http://127.0.0.1:3000/chat"))
    ///     .resume(move || http.get("http://127.0.0.1:3000/chat/resume"));
    /// # drop(reader);
    /// ```
    pub fn resume(mut self, resume: impl Fn() -> RequestBuilder + Send + Sync + 'static) -> Self {
        self.resume = Some(Arc::new(resume));
        self
    }

    /// How many resume attempts in a row may fail with a retryable error before the stream
    /// ends with it (default 3). An attempt that delivers an event starts the count again.
    ///
    /// ```
    /// let http = reqwest::Client::new();
    /// let reader = beluga_sse::client::Reader::new(http.get("http://127.0.0.1:3000/events")).max_resumes(10);
    /// # drop(reader);
    /// ```
    pub fn max_resumes(mut self, attempts: u32) -> Self {
        self.max_resumes = attempts;
        self
    }

    /// How long to wait before each resume attempt (default 250 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// let http = reqwest::Client::new();
    /// let reader = beluga_sse::client::Reader::new(http.get("http://127.0.0.1:3000/events"))
    ///     .resume_delay(Duration::from_secs(1));
    /// # drop(reader);
    /// ```
    pub fn resume_delay(mut self, delay: Duration) -> Self {
        self.resume_delay = delay;
        self
    }

    /// The event stream. The request is sent when the stream is first polled; dropping the
    /// stream, or cancelling `ctx`, closes the connection.
    ///
    /// ```no_run
    /// use beluga_core::{Context, EventStreamExt};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let http = reqwest::Client::new();
    /// let reader = beluga_sse::client::Reader::new(http.get("http://127.0.0.1:3000/events"));
    /// let events = reader.read::<u32>(&Context::new()).collect_events().await;
    /// # drop(events);
    /// # }
    /// ```
    pub fn read<T>(
        self,
        ctx: &Context,
    ) -> impl Stream<Item = EventResult<T>> + Send + 'static + use<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let state = ReadState {
            start: Some(self.request),
            resume: self.resume,
            max_resumes: self.max_resumes,
            resume_delay: self.resume_delay,
            events: None,
            stream_id: None,
            last_id: None,
            failures: 0,
            ended: false,
        };
        futures_util::stream::unfold(state, |mut state| async move {
            let item = state.next::<T>().await?;
            Some((item, state))
        })
        .cancellable(ctx)
    }
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("request", &self.request)
            .field("resumes", &self.resume.is_some())
            .field("max_resumes", &self.max_resumes)
            .field("resume_delay", &self.resume_delay)
            .finish()
    }
}

/// The SSE events of one connection.
type SseEvents = Pin<
    Box<
        dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<reqwest::Error>>>
            + Send,
    >,
>;

struct ReadState {
    /// The request that starts the stream, until it is sent.
    start: Option<RequestBuilder>,
    resume: Option<ResumeFn>,
    max_resumes: u32,
    resume_delay: Duration,
    /// The open connection's events.
    events: Option<SseEvents>,
    /// The stream's id, from the response that started it.
    stream_id: Option<String>,
    /// The id of the last event received.
    last_id: Option<String>,
    /// Resume attempts in a row that delivered no event.
    failures: u32,
    ended: bool,
}

impl ReadState {
    async fn next<T: DeserializeOwned>(&mut self) -> Option<EventResult<T>> {
        loop {
            if self.ended {
                return None;
            }
            let Some(events) = self.events.as_mut() else {
                if let Err(err) = self.connect().await {
                    return Some(self.end(Err(err)));
                }
                continue;
            };
            let cause = match events.next().await {
                Some(Ok(event)) => {
                    if !event.id.is_empty() {
                        self.last_id = Some(event.id);
                    }
                    self.failures = 0;
                    match event.event.as_str() {
                        "message" => {
                            return match serde_json::from_str::<Event<T>>(&event.data) {
                                Ok(event) if event.is_done() => Some(self.end(Ok(event))),
                                Ok(event) => Some(Ok(event)),
                                Err(err) => {
                                    Some(self.end(Err(bad_data("an event", &event.data, err))))
                                }
                            };
                        }
                        "error" => {
                            return match serde_json::from_str::<Error>(&event.data) {
                                Ok(err) => Some(self.end(Err(err))),
                                Err(err) => {
                                    Some(self.end(Err(bad_data("an error", &event.data, err))))
                                }
                            };
                        }
                        "end" => {
                            // The server's stream ended without a terminal item: so does this.
                            self.ended = true;
                            self.events = None;
                            return None;
                        }
                        // A name a newer server may send: not for this reader.
                        _ => continue,
                    }
                }
                Some(Err(EventStreamError::Transport(err))) => Some(err),
                Some(Err(err)) => {
                    return Some(
                        self.end(Err(Error::new(
                            ErrorCode::Internal,
                            format!("the server sent malformed server-sent events: {err}"),
                        )
                        .with_op("sse.read"))),
                    );
                }
                None => None,
            };
            // The connection is lost before the stream's end: resume, or end with the loss.
            self.events = None;
            if !self.can_resume() {
                return Some(self.end(Err(self.lost(cause))));
            }
        }
    }

    /// Ends the stream with its terminal item, closing the connection.
    fn end<T>(&mut self, item: EventResult<T>) -> EventResult<T> {
        self.ended = true;
        self.events = None;
        item
    }

    /// Whether a lost connection can be resumed: the reader knows how, and which stream.
    fn can_resume(&self) -> bool {
        self.resume.is_some() && (self.last_id.is_some() || self.stream_id.is_some())
    }

    /// The error for a connection lost before the stream's end, that cannot be resumed.
    fn lost(&self, cause: Option<reqwest::Error>) -> Error {
        let message = match &self.last_id {
            None => "the connection closed before the stream's first event".to_owned(),
            Some(id) => {
                format!("the connection closed after event `{id}`, before the stream's end")
            }
        };
        let err = Error::new(ErrorCode::ProviderUnavailable, message).with_op("sse.read");
        match cause {
            Some(cause) => err.with_source(cause),
            None => err,
        }
    }

    /// Opens a connection: the starting request the first time (sent once, never again),
    /// then resume requests, tried again while they fail with a retryable error, up to
    /// `max_resumes` in a row.
    async fn connect(&mut self) -> Result<(), Error> {
        if let Some(request) = self.start.take() {
            return self.open(request, "sse.read").await;
        }
        let Some(resume) = self.resume.clone() else {
            return Err(self.lost(None));
        };
        loop {
            let last = match (&self.last_id, &self.stream_id) {
                (Some(id), _) => id.clone(),
                (None, Some(stream)) => EventId::in_stream(stream.clone(), 0).to_string(),
                (None, None) => return Err(self.lost(None)),
            };
            self.failures += 1;
            tokio::time::sleep(self.resume_delay).await;
            match self
                .open(resume().header("last-event-id", last), "sse.resume")
                .await
            {
                Ok(()) => return Ok(()),
                Err(err) if err.is_retryable() && self.failures < self.max_resumes => {}
                Err(err) => return Err(err),
            }
        }
    }

    async fn open(&mut self, request: RequestBuilder, op: &'static str) -> Result<(), Error> {
        let response = request
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|err| transport_error(err, op))?;
        let (events, stream_id) = open(response).await?;
        if stream_id.is_some() {
            self.stream_id = stream_id;
        }
        self.events = Some(events);
        Ok(())
    }
}

/// Checks the response and opens its event stream; returns the stream's id when the server
/// sent one.
async fn open(response: Response) -> Result<(SseEvents, Option<String>), Error> {
    if !response.status().is_success() {
        return Err(error_for_response(response).await);
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("text/event-stream") {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "expected a `text/event-stream` response from {}, got `{content_type}`",
                response.url()
            ),
        )
        .with_op("sse.read"));
    }
    let stream_id = response
        .headers()
        .get(STREAM_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((Box::pin(response.bytes_stream().eventsource()), stream_id))
}

/// The error for SSE data that is not what the encoding writes.
fn bad_data(what: &str, data: &str, err: serde_json::Error) -> Error {
    const SHOWN: usize = 200;
    let shown = match data.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &data[..end]),
        None => data.to_owned(),
    };
    Error::new(
        ErrorCode::Internal,
        format!("the server sent data that is not {what}: `{shown}`"),
    )
    .with_op("sse.read")
    .with_source(err)
}
