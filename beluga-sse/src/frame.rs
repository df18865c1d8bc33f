//! [`Frame`]: one server-sent event as an [`Encoding`](crate::encoding::Encoding) writes it,
//! and [`EventId`]: the `id` the server gives it.

use std::fmt;
use std::str::FromStr;

use beluga_core::{Error, ErrorCode};

/// One server-sent event before it is sent: an optional event name and the data. The server
/// adds the `id`; the encoding decides the rest.
///
/// ```
/// use beluga_sse::Frame;
///
/// let frame = Frame::named("error", r#"{"code":"timeout"}"#);
/// assert_eq!(frame.event(), Some("error"));
/// assert_eq!(frame.data(), r#"{"code":"timeout"}"#);
/// assert_eq!(Frame::message("[DONE]").event(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    event: Option<&'static str>,
    data: String,
}

impl Frame {
    /// A frame without an event name: what a browser's `EventSource` hands to `onmessage`.
    ///
    /// ```
    /// assert_eq!(beluga_sse::Frame::message("hi").data(), "hi");
    /// ```
    pub fn message(data: impl Into<String>) -> Self {
        Frame {
            event: None,
            data: data.into(),
        }
    }

    /// A frame with an event name (the SSE `event:` field).
    ///
    /// The name must not contain a line break; the encodings of this crate use fixed names.
    ///
    /// ```
    /// assert_eq!(beluga_sse::Frame::named("end", "{}").event(), Some("end"));
    /// ```
    pub fn named(event: &'static str, data: impl Into<String>) -> Self {
        Frame {
            event: Some(event),
            data: data.into(),
        }
    }

    /// The event name, if the frame has one.
    ///
    /// ```
    /// assert_eq!(beluga_sse::Frame::message("x").event(), None);
    /// ```
    pub fn event(&self) -> Option<&'static str> {
        self.event
    }

    /// The data. A line break in it becomes a second `data:` line on the wire, which SSE
    /// readers join back with `\n`.
    ///
    /// ```
    /// assert_eq!(beluga_sse::Frame::message("x").data(), "x");
    /// ```
    pub fn data(&self) -> &str {
        &self.data
    }
}

/// The `id` that [`serve`](crate::serve) and [`Replay`](crate::server::Replay) give a served
/// event: its position in the stream, counted from 1, and for a resumable stream the stream's
/// id, written `stream:position`. (A stream served with ids of its own,
/// `ServedItem`, sends those instead, whatever their form; the client treats every id as
/// opaque.)
///
/// A client that lost its connection sends the last id it received back as the
/// `Last-Event-ID` header, and a resumable server continues with the event after it. The
/// stream id in it is what lets the server find the stream again, on any URL. Position 0
/// stands for "before the first event": `stream:0` resumes a stream from its beginning.
///
/// ```
/// use beluga_sse::EventId;
///
/// let id: EventId = "4f2a:17".parse().unwrap();
/// assert_eq!(id.stream(), Some("4f2a"));
/// assert_eq!(id.position(), 17);
/// assert_eq!(id.to_string(), "4f2a:17");
/// assert_eq!(EventId::new(3).to_string(), "3");
/// assert!("4f2a:x".parse::<EventId>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventId {
    stream: Option<String>,
    position: u64,
}

impl EventId {
    /// The id of the event at `position` of a stream that cannot be resumed.
    ///
    /// ```
    /// assert_eq!(beluga_sse::EventId::new(0).stream(), None);
    /// ```
    pub fn new(position: u64) -> Self {
        EventId {
            stream: None,
            position,
        }
    }

    /// The id of the event at `position` of the resumable stream `stream`.
    ///
    /// ```
    /// let id = beluga_sse::EventId::in_stream("abc", 2);
    /// assert_eq!(id.to_string(), "abc:2");
    /// ```
    pub fn in_stream(stream: impl Into<String>, position: u64) -> Self {
        EventId {
            stream: Some(stream.into()),
            position,
        }
    }

    /// The stream's id, for an event of a resumable stream.
    ///
    /// ```
    /// assert_eq!(beluga_sse::EventId::in_stream("s", 0).stream(), Some("s"));
    /// ```
    pub fn stream(&self) -> Option<&str> {
        self.stream.as_deref()
    }

    /// The event's position in its stream, counted from 1 (0 is "before the first event").
    ///
    /// ```
    /// assert_eq!(beluga_sse::EventId::new(9).position(), 9);
    /// ```
    pub fn position(&self) -> u64 {
        self.position
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.stream {
            Some(stream) => write!(f, "{stream}:{}", self.position),
            None => write!(f, "{}", self.position),
        }
    }
}

impl FromStr for EventId {
    type Err = Error;

    /// Reads `position` or `stream:position`; anything else is an `invalid_input` error that
    /// quotes the text.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::new(
                ErrorCode::InvalidInput,
                format!("event id `{s}` is not `position` or `stream:position`"),
            )
            .with_op("sse.event_id")
        };
        let (stream, position) = match s.rsplit_once(':') {
            Some((stream, position)) => {
                if !valid_stream_id(stream) {
                    return Err(bad());
                }
                (Some(stream.to_owned()), position)
            }
            None => (None, s),
        };
        let position = position.parse::<u64>().map_err(|_| bad())?;
        Ok(EventId { stream, position })
    }
}

/// Whether `s` may name a stream: 1 to 128 ASCII letters, digits, `-` or `_`.
pub(crate) fn valid_stream_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
