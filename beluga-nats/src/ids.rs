//! [`ItemId`]: an item of a relayed stream named by its stream's id and its position, the SSE
//! event id of a stateless front end; and [`WithIds`], a [`RemoteStream`] whose items come
//! with theirs.

use std::fmt;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use beluga_core::{Error, ErrorCode, EventResult};
use futures_util::Stream;
use futures_util::stream::FusedStream;
use serde::de::DeserializeOwned;

use crate::subscribe::{Position, RemoteStream};
use crate::wire;

/// An item of a relayed stream, named by the stream's id and its [`Position`]: written
/// `<stream id>:<position>`, such as `req-1:812.3`.
///
/// It is the SSE event id of a stateless front end: serving [`RemoteStream::with_ids`] sends
/// it with each event, and a reconnecting client's `Last-Event-ID` parses back into the stream
/// to [subscribe](crate::Relay::subscribe) to and where to go on from
/// ([`Position::from_last_event_id`] also checks that it names the expected stream). Parsing
/// fails with `invalid_input` on anything else, which an HTTP handler answers with 400.
///
/// ```
/// use beluga_nats::{ItemId, Position};
///
/// let id: ItemId = "req-1:812.3".parse().unwrap();
/// assert_eq!(id.stream(), "req-1");
/// assert_eq!(id.position(), Position::After { sequence: 812, index: 3 });
/// assert_eq!(id.to_string(), "req-1:812.3");
/// assert_eq!(ItemId::new("req-1", Position::Start).to_string(), "req-1:0");
///
/// for bad in ["812.3", "req-1:", "req-1:x", ":5", "a.b:5"] {
///     let err = bad.parse::<ItemId>().unwrap_err();
///     assert_eq!(err.code(), beluga_core::ErrorCode::InvalidInput, "{bad}");
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ItemId {
    stream: Arc<str>,
    position: Position,
}

impl ItemId {
    /// The id of the item at `position` of stream `stream`.
    ///
    /// ```
    /// use beluga_nats::{ItemId, Position};
    /// let id = ItemId::new("req-1", Position::After { sequence: 9, index: 0 });
    /// assert_eq!(id.to_string(), "req-1:9");
    /// ```
    pub fn new(stream: impl Into<Arc<str>>, position: Position) -> Self {
        ItemId {
            stream: stream.into(),
            position,
        }
    }

    /// The stream's id.
    ///
    /// ```
    /// let id: beluga_nats::ItemId = "req-1:9".parse().unwrap();
    /// assert_eq!(id.stream(), "req-1");
    /// ```
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The item's position in its stream: what [`Relay::subscribe`](crate::Relay::subscribe)
    /// takes to go on with the next item.
    ///
    /// ```
    /// use beluga_nats::{ItemId, Position};
    /// let id: ItemId = "req-1:0".parse().unwrap();
    /// assert_eq!(id.position(), Position::Start);
    /// ```
    pub fn position(&self) -> Position {
        self.position
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.stream, self.position)
    }
}

impl FromStr for ItemId {
    type Err = Error;

    /// Reads `<stream id>:<position>`; anything else is an `invalid_input` error that quotes
    /// the text.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            let shown: String = s.chars().take(64).collect();
            let more = if shown.len() < s.len() { "…" } else { "" };
            Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "event id {shown:?}{more} is not `<stream id>:<position>` (such as \
                     `req-1:812.3`): {why}"
                ),
            )
            .with_op("nats.event_id")
        };
        let Some((stream, position)) = s.rsplit_once(':') else {
            return Err(bad("it has no `:`".to_owned()));
        };
        wire::check_id(stream).map_err(|e| bad(e.message().to_owned()))?;
        let position = position
            .parse::<Position>()
            .map_err(|e| bad(e.message().to_owned()))?;
        Ok(ItemId::new(stream, position))
    }
}

impl Position {
    /// Where a stateless SSE front end resumes stream `stream` for a request whose
    /// `Last-Event-ID` is `last_event_id`: [`Start`](Position::Start) without one, else the
    /// position of the [`ItemId`] it holds.
    ///
    /// Fails with `invalid_input` (an HTTP handler's 400) when the header is not an
    /// [`ItemId`], or names another stream.
    ///
    /// ```
    /// use beluga_nats::Position;
    ///
    /// assert_eq!(Position::from_last_event_id("req-1", None).unwrap(), Position::Start);
    /// assert_eq!(
    ///     Position::from_last_event_id("req-1", Some("req-1:812.3")).unwrap(),
    ///     Position::After { sequence: 812, index: 3 },
    /// );
    /// let err = Position::from_last_event_id("req-1", Some("req-2:812")).unwrap_err();
    /// assert_eq!(err.code(), beluga_core::ErrorCode::InvalidInput);
    /// let err = Position::from_last_event_id("req-1", Some("812")).unwrap_err();
    /// assert_eq!(err.code(), beluga_core::ErrorCode::InvalidInput);
    /// ```
    pub fn from_last_event_id(stream: &str, last_event_id: Option<&str>) -> Result<Self, Error> {
        let Some(last) = last_event_id else {
            return Ok(Position::Start);
        };
        let id: ItemId = last.parse()?;
        if id.stream() != stream {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "Last-Event-ID `{last}` names stream `{}`, not `{stream}`",
                    id.stream()
                ),
            )
            .with_op("nats.event_id"));
        }
        Ok(id.position())
    }
}

impl<T> RemoteStream<T> {
    /// This stream with each item's [`ItemId`]: `(id, item)` pairs, the id being
    /// `<stream id>:<position>` of the item (for an error of the stream itself, the position
    /// of the last item read). Served with beluga-sse's `serve`, the ids become the events'
    /// ids, and any front-end instance can resume a `Last-Event-ID` with
    /// [`Position::from_last_event_id`]: the front end keeps no state.
    ///
    /// ```no_run
    /// use axum::extract::{Path, State};
    /// use axum::response::IntoResponse;
    /// use beluga_core::Context;
    /// use beluga_nats::{Position, Relay};
    /// use beluga_sse::BelugaJson;
    /// use beluga_sse::server::{HttpError, LastEventId};
    ///
    /// // `GET /events/{id}`: a new reader, or one reconnecting with its `Last-Event-ID`.
    /// async fn events(
    ///     State(relay): State<Relay>,
    ///     Path(id): Path<String>,
    ///     LastEventId(last): LastEventId,
    /// ) -> Result<impl IntoResponse, HttpError> {
    ///     let from = Position::from_last_event_id(&id, last.as_deref())?; // 400 if malformed
    ///     let answer = relay.subscribe::<String>(&id, from).await?;
    ///     Ok(beluga_sse::serve(&Context::new(), BelugaJson, |_| answer.with_ids()))
    /// }
    /// ```
    pub fn with_ids(self) -> WithIds<T> {
        WithIds {
            stream: Arc::from(self.id()),
            inner: self,
        }
    }
}

/// A [`RemoteStream`] whose items come with their [`ItemId`]s: the stream of
/// [`RemoteStream::with_ids`].
///
/// ```no_run
/// use beluga_nats::Position;
/// use futures_util::StreamExt;
/// # async fn demo(relay: beluga_nats::Relay) -> Result<(), beluga_core::Error> {
/// let mut answer = relay.subscribe::<String>("req-7", Position::Start).await?.with_ids();
/// while let Some((id, item)) = answer.next().await {
///     println!("{id} {:?}", item?); // `req-7:7`, `req-7:8`, `req-7:8.1`, …
/// }
/// # Ok(())
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct WithIds<T> {
    inner: RemoteStream<T>,
    stream: Arc<str>,
}

impl<T> WithIds<T> {
    /// The stream without the ids.
    ///
    /// ```no_run
    /// # async fn demo(relay: beluga_nats::Relay) -> Result<(), beluga_core::Error> {
    /// let s = relay.subscribe::<String>("req-7", beluga_nats::Position::Start).await?.with_ids();
    /// assert_eq!(s.get_ref().id(), "req-7");
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_ref(&self) -> &RemoteStream<T> {
        &self.inner
    }

    /// The stream without the ids, taken back.
    ///
    /// ```no_run
    /// # async fn demo(relay: beluga_nats::Relay) -> Result<(), beluga_core::Error> {
    /// let s = relay.subscribe::<String>("req-7", beluga_nats::Position::Start).await?.with_ids();
    /// let s = s.into_inner();
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_inner(self) -> RemoteStream<T> {
        self.inner
    }
}

impl<T> fmt::Debug for WithIds<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WithIds").field(&self.inner).finish()
    }
}

impl<T: DeserializeOwned> Stream for WithIds<T> {
    type Item = (ItemId, EventResult<T>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        Pin::new(&mut this.inner).poll_next(cx).map(|item| {
            item.map(|item| {
                let id = ItemId::new(Arc::clone(&this.stream), this.inner.position());
                (id, item)
            })
        })
    }
}

impl<T: DeserializeOwned> FusedStream for WithIds<T> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}
