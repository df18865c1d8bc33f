//! [`Replay`]: streams a client can resume, each with a bounded buffer of its last frames.
//!
//! The API is here; the buffer and the readers are in `stream.rs`, the task that runs a
//! stream in `task.rs`.

mod options;
mod stream;
mod task;

use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use beluga_core::{Context, Error, ErrorCode, EventResult};
use futures_core::Stream;
use slab::Slab;
use tokio::sync::Notify;
use tokio::time::Instant;

use self::options::MAX_CAPACITY;
pub use self::options::ReplayOptions;
pub use self::stream::ReplayReader;
use self::stream::{ReaderSlot, Shared, State, lock};
use self::task::pump;
use crate::encoding::Encoding;
use crate::frame::EventId;
use crate::server::SseResponse;
use crate::source::Source;

/// Resumable event streams: a client that lost its connection reconnects with the
/// `Last-Event-ID` it saw last and continues with the next event, with no gap and no
/// duplicate, for as long as the stream's buffer holds that event.
///
/// [`start`](Replay::start) starts a stream and returns the response that reads it from the
/// beginning; [`resume`](Replay::resume) returns a response that continues after a given event
/// id. Every event's id is `stream:position` ([`EventId`]), so the `Last-Event-ID` alone finds
/// the stream again, on any URL. [`start_or_resume`](Replay::start_or_resume) does either,
/// by whether the request has the header: a browser's `EventSource` reconnects to the URL it
/// started with and sends the header, which must never start a new generation.
///
/// `Replay` is a handle: clone it into the axum state.
///
/// # Policy
///
/// * **Who owns the producer.** The replay does, not the response: each stream runs on a task
///   of its own that encodes its events into the stream's buffer. Clients read from the
///   buffer, so a client that goes away does not stop the producer, and one that comes back
///   finds the events it missed.
/// * **What is kept.** The last [`capacity`](ReplayOptions::capacity) frames of each stream (a
///   few more while one event's frames go in). The producer is never more than `capacity`
///   frames ahead of the slowest connected client, so a connected client never misses one.
///   With no client connected, it runs on until it is `capacity` frames past the last frame a
///   client was sent, then waits for a client.
/// * **How long.** A stream with no client connected lives for the
///   [`grace`](ReplayOptions::grace) period, whether it is still running or has ended (so a
///   reload after the end still reads the answer's tail). When the period passes with no
///   client back, a running producer is dropped and its context cancelled, and the stream and
///   its buffer are freed. With a zero grace, a running producer is dropped as soon as its last
///   client goes away.
/// * **How many.** At most [`max_streams`](ReplayOptions::max_streams) streams at once; one
///   more is refused. Memory is bounded by `max_streams × capacity` frames.
/// * **Resuming too late.** A `Last-Event-ID` whose next event is no longer in the buffer, or
///   whose stream has expired, is refused with a `not_found` error that says which; a
///   malformed one, or one from the future, with `invalid_input`. [`HttpError`](crate::server::HttpError)
///   turns these into 404 and 400 responses.
/// * **Stopping.** [`cancel`](Replay::cancel) cancels a stream's context: connected clients
///   receive the `cancelled` error as the stream's end.
///
/// # Example
///
/// ```
/// use axum::{Router, extract::State, routing::{get, post}};
/// use axum::response::IntoResponse;
/// use beluga_core::{Context, EventResult, stream_producer};
/// use beluga_sse::BelugaJson;
/// use beluga_sse::server::{HttpError, LastEventId, Replay, ReplayOptions};
/// use futures_util::Stream;
///
/// #[stream_producer]
/// fn answer(ctx: Context, question: String) -> impl Stream<Item = EventResult<String>> + Send + 'static {
///     for word in question.split(' ') {
///         emit!(word.to_uppercase());
///     }
/// }
///
/// // POST /chat starts a generation; GET /chat/resume continues one after `Last-Event-ID`.
/// async fn chat(State(replay): State<Replay>, question: String) -> Result<impl IntoResponse, HttpError> {
///     Ok(replay.start(&Context::new(), BelugaJson, |ctx| answer(ctx, question))?)
/// }
///
/// async fn resume(State(replay): State<Replay>, LastEventId(id): LastEventId) -> Result<impl IntoResponse, HttpError> {
///     Ok(replay.resume(id.as_deref().unwrap_or_default())?)
/// }
///
/// let app: Router = Router::new()
///     .route("/chat", post(chat))
///     .route("/chat/resume", get(resume))
///     .with_state(Replay::new(ReplayOptions::new()).unwrap());
/// # drop(app);
/// ```
#[derive(Clone)]
pub struct Replay {
    hub: Arc<Hub>,
}

pub(crate) struct Hub {
    options: ReplayOptions,
    pub(crate) streams: Mutex<HashMap<String, Arc<Shared>>>,
}

impl Replay {
    /// A replay with these bounds; a capacity of 0 or over 2^20 frames, or a `max_streams` of
    /// 0, is refused with `invalid_input`.
    ///
    /// ```
    /// use beluga_core::ErrorCode;
    /// use beluga_sse::server::{Replay, ReplayOptions};
    /// assert!(Replay::new(ReplayOptions::new()).is_ok());
    /// let err = Replay::new(ReplayOptions::new().capacity(0)).unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::InvalidInput);
    /// ```
    pub fn new(options: ReplayOptions) -> Result<Self, Error> {
        if options.capacity == 0 || options.capacity > MAX_CAPACITY {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "a replay buffer keeps from 1 to {MAX_CAPACITY} frames, not {}",
                    options.capacity
                ),
            )
            .with_op("sse.replay"));
        }
        if options.max_streams == 0 {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "a replay holds at least 1 stream, not 0",
            )
            .with_op("sse.replay"));
        }
        Ok(Replay {
            hub: Arc::new(Hub {
                options,
                streams: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Starts the stream that `start` returns, on a task of its own, and returns the response
    /// that reads it from the beginning. The stream's id is in the response
    /// ([`SseResponse::stream_id`], and the `x-beluga-stream-id` header) and in every event id.
    ///
    /// `start` is handed a child of `ctx`, cancelled when the stream is dropped (see the
    /// [policy](Replay#policy)) or [`cancel`](Replay::cancel)led. Refused with
    /// `provider_unavailable` when the replay already holds
    /// [`max_streams`](ReplayOptions::max_streams) streams, and with `internal` outside a
    /// Tokio runtime.
    ///
    /// ```
    /// use beluga_core::{Context, stream};
    /// use beluga_sse::BelugaJson;
    /// use beluga_sse::server::{Replay, ReplayOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let replay = Replay::new(ReplayOptions::new()).unwrap();
    /// let response = replay.start(&Context::new(), BelugaJson, |_ctx| stream::iter(["hi"])).unwrap();
    /// assert_eq!(response.stream_id().map(str::len), Some(32));
    /// assert_eq!(replay.len(), 1);
    /// # }
    /// ```
    pub fn start<T, S, E>(
        &self,
        ctx: &Context,
        encoding: E,
        start: impl FnOnce(Context) -> S,
    ) -> Result<SseResponse<ReplayReader>, Error>
    where
        S: Stream<Item = EventResult<T>> + Send + 'static,
        E: Encoding<T>,
        T: 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|err| {
            Error::new(ErrorCode::Internal, "starting a resumable stream")
                .with_op("sse.replay")
                .with_source(err)
        })?;
        let id = random_id()?;
        let ctx = ctx.child();
        let headers = encoding.headers();
        let options = &self.hub.options;
        let mut readers = Slab::new();
        let key = readers.insert(ReaderSlot {
            position: 1,
            waker: None,
        });
        let shared = Arc::new(Shared {
            id: id.clone(),
            ctx: ctx.clone(),
            headers,
            capacity: options.capacity,
            changed: Notify::new(),
            state: Mutex::new(State {
                frames: VecDeque::new(),
                first: 1,
                finished: false,
                readers,
                handed: 1,
                idle_since: Instant::now(),
            }),
        });
        {
            let mut streams = lock(&self.hub.streams);
            if streams.len() >= options.max_streams {
                return Err(Error::new(
                    ErrorCode::ProviderUnavailable,
                    format!(
                        "the server holds its maximum of {} resumable streams",
                        options.max_streams
                    ),
                )
                .with_op("sse.replay"));
            }
            streams.insert(id.clone(), Arc::clone(&shared));
        }
        let source = Source::new(start(ctx), encoding);
        runtime.spawn(pump(
            Arc::clone(&shared),
            Arc::downgrade(&self.hub),
            source,
            options.grace,
        ));
        let reader = ReplayReader {
            shared,
            key,
            position: 1,
        };
        Ok(SseResponse::new(&options.sse, reader, headers, Some(id)))
    }

    /// A response that continues a stream after the event whose id is `last_event_id` (the
    /// `Last-Event-ID` header of the reconnecting client).
    ///
    /// Refused with `not_found` when the stream is unknown or has expired, or when its buffer
    /// no longer holds the next event; with `invalid_input` when the id is malformed, names no
    /// stream, or names an event not yet sent. The message says which, with the positions the
    /// buffer holds.
    ///
    /// ```
    /// use beluga_core::{Context, ErrorCode, stream};
    /// use beluga_sse::BelugaJson;
    /// use beluga_sse::server::{Replay, ReplayOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let replay = Replay::new(ReplayOptions::new()).unwrap();
    /// let first = replay.start(&Context::new(), BelugaJson, |_| stream::iter(["a", "b"])).unwrap();
    /// let id = first.stream_id().unwrap().to_owned();
    /// tokio::task::yield_now().await; // the stream's task runs
    /// let again = replay.resume(&format!("{id}:1")).unwrap(); // continues with event 2
    /// let all = replay.resume(&format!("{id}:0")).unwrap(); // from the first event
    /// assert_eq!(again.stream_id(), Some(id.as_str()));
    ///
    /// let err = replay.resume("0123456789abcdef:3").unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::NotFound);
    /// # }
    /// ```
    pub fn resume(&self, last_event_id: &str) -> Result<SseResponse<ReplayReader>, Error> {
        let last: EventId = last_event_id.parse()?;
        let invalid = |message: String| {
            Error::new(ErrorCode::InvalidInput, message).with_op("sse.replay.resume")
        };
        let Some(stream) = last.stream() else {
            return Err(invalid(format!(
                "`Last-Event-ID: {last_event_id}` names no stream; a resumable stream's ids are `stream:position`"
            )));
        };
        let Some(from) = last.position().checked_add(1) else {
            return Err(invalid(format!(
                "event {} of stream `{stream}` has not been sent",
                last.position()
            )));
        };
        let streams = lock(&self.hub.streams);
        let Some(shared) = streams.get(stream) else {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!("stream `{stream}` is unknown or has expired"),
            )
            .with_op("sse.replay.resume"));
        };
        let key = {
            let mut state = lock(&shared.state);
            let next = state.next();
            if from < state.first {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    format!(
                        "event {from} of stream `{stream}` is no longer in the replay buffer, \
                         which holds events {} to {}",
                        state.first,
                        next.saturating_sub(1),
                    ),
                )
                .with_op("sse.replay.resume"));
            }
            if from > next {
                return Err(invalid(format!(
                    "event {} of stream `{stream}` has not been sent: the stream is at event {}",
                    last.position(),
                    next - 1,
                )));
            }
            state.readers.insert(ReaderSlot {
                position: from,
                waker: None,
            })
        };
        let shared = Arc::clone(shared);
        drop(streams);
        // A reader came back: the task stops counting down the grace period.
        shared.changed.notify_one();
        let (headers, id) = (shared.headers, shared.id.clone());
        let reader = ReplayReader {
            shared,
            key,
            position: from,
        };
        Ok(SseResponse::new(
            &self.hub.options.sse,
            reader,
            headers,
            Some(id),
        ))
    }

    /// [`resume`](Replay::resume) when the request carried a `Last-Event-ID`, else
    /// [`start`](Replay::start). A request with the header never starts a new stream, even
    /// when resuming fails.
    ///
    /// ```
    /// use axum::{Router, extract::State, routing::get};
    /// use axum::response::IntoResponse;
    /// use beluga_core::{Context, stream};
    /// use beluga_sse::BelugaJson;
    /// use beluga_sse::server::{HttpError, LastEventId, Replay, ReplayOptions};
    ///
    /// // One URL for a browser's `EventSource`, which reconnects to it with the header.
    /// async fn events(State(replay): State<Replay>, LastEventId(id): LastEventId) -> Result<impl IntoResponse, HttpError> {
    ///     Ok(replay.start_or_resume(id.as_deref(), &Context::new(), BelugaJson, |_| {
    ///         stream::iter(["tick", "tock"])
    ///     })?)
    /// }
    ///
    /// let app: Router = Router::new()
    ///     .route("/events", get(events))
    ///     .with_state(Replay::new(ReplayOptions::new()).unwrap());
    /// # drop(app);
    /// ```
    pub fn start_or_resume<T, S, E>(
        &self,
        last_event_id: Option<&str>,
        ctx: &Context,
        encoding: E,
        start: impl FnOnce(Context) -> S,
    ) -> Result<SseResponse<ReplayReader>, Error>
    where
        S: Stream<Item = EventResult<T>> + Send + 'static,
        E: Encoding<T>,
        T: 'static,
    {
        match last_event_id {
            Some(id) => self.resume(id),
            None => self.start(ctx, encoding, start),
        }
    }

    /// Cancels the stream `stream_id`: its context is cancelled and its producer dropped, and
    /// connected clients receive the `cancelled` error as the stream's end. Returns whether the
    /// stream was found.
    ///
    /// ```
    /// use beluga_core::Context;
    /// use beluga_sse::server::{Replay, ReplayOptions};
    /// let replay = Replay::new(ReplayOptions::new()).unwrap();
    /// assert!(!replay.cancel("no-such-stream"));
    /// ```
    pub fn cancel(&self, stream_id: &str) -> bool {
        let shared = lock(&self.hub.streams).get(stream_id).map(Arc::clone);
        shared.is_some_and(|shared| {
            shared.ctx.cancel();
            true
        })
    }

    /// How many streams the replay holds: running, or waiting out their grace period.
    ///
    /// ```
    /// use beluga_sse::server::{Replay, ReplayOptions};
    /// assert_eq!(Replay::new(ReplayOptions::new()).unwrap().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.hub.streams).len()
    }

    /// Whether the replay holds no stream.
    ///
    /// ```
    /// use beluga_sse::server::{Replay, ReplayOptions};
    /// assert!(Replay::new(ReplayOptions::new()).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("options", &self.hub.options)
            .field("streams", &self.len())
            .finish()
    }
}

/// A random stream id: 128 bits from the operating system, in hex. It is what a client needs
/// to read a stream, so it must not be guessable.
fn random_id() -> Result<String, Error> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes).map_err(|err| {
        Error::new(ErrorCode::Internal, "no randomness for a stream id")
            .with_op("sse.replay")
            .with_source(std::io::Error::other(err.to_string()))
    })?;
    Ok(bytes.iter().fold(String::with_capacity(32), |mut id, b| {
        let _ = write!(id, "{b:02x}");
        id
    }))
}
