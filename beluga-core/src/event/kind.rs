//! What an event is: its kind with the payload ([`EventKind`]), and the kind alone
//! ([`EventType`]) with Beluga's names.

use std::error::Error as StdError;
use std::fmt;

use crate::error::Error;
#[cfg(doc)]
use crate::event::Event;

/// The kind of an event, with its payload. Match on it exhaustively through [`Event::kind`] or
/// [`Event::into_kind`].
///
/// ```
/// use beluga_core::{Event, EventKind};
/// let ev = Event::tool_call("search(\"rust\")");
/// assert!(matches!(ev.kind(), EventKind::ToolCall(call) if call.starts_with("search")));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind<T> {
    /// `data`: a payload chunk (a text token, an audio frame, a document).
    Data(T),
    /// `tool_call`: the model asks for a tool invocation.
    ToolCall(T),
    /// `tool_result`: a tool returned its result.
    ToolResult(T),
    /// `handoff`: a transfer from one agent to another.
    Handoff(T),
    /// `done`: the stream finished normally, optionally with a final value
    /// ([`Event::done_with`]), which is what `invoke` returns.
    Done(Option<T>),
    /// `error`: a reported, non-terminal error; the stream goes on. A terminal error is an
    /// `Err(Error)` item instead (see [`crate::error`]).
    Error(Error),
}

/// The kind of an event without its payload, with Beluga's names.
///
/// ```
/// use beluga_core::{Event, EventType};
/// assert_eq!(Event::data(1).event_type(), EventType::Data);
/// assert_eq!(EventType::ToolResult.as_str(), "tool_result");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `data`
    Data,
    /// `tool_call`
    ToolCall,
    /// `tool_result`
    ToolResult,
    /// `handoff`
    Handoff,
    /// `done`
    Done,
    /// `error`
    Error,
}

impl EventType {
    /// Every kind, in declaration order.
    ///
    /// ```
    /// assert_eq!(beluga_core::EventType::ALL.len(), 6);
    /// ```
    pub const ALL: &'static [EventType] = &[
        EventType::Data,
        EventType::ToolCall,
        EventType::ToolResult,
        EventType::Handoff,
        EventType::Done,
        EventType::Error,
    ];

    /// The wire name: `"data"`, `"tool_call"`, `"tool_result"`, `"handoff"`, `"done"`, `"error"`.
    ///
    /// ```
    /// use beluga_core::EventType;
    /// assert_eq!(EventType::Handoff.as_str(), "handoff");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Data => "data",
            EventType::ToolCall => "tool_call",
            EventType::ToolResult => "tool_result",
            EventType::Handoff => "handoff",
            EventType::Done => "done",
            EventType::Error => "error",
        }
    }
}

impl std::str::FromStr for EventType {
    type Err = UnknownEventType;

    /// Parses a wire name.
    ///
    /// ```
    /// use beluga_core::EventType;
    /// assert_eq!("tool_call".parse::<EventType>(), Ok(EventType::ToolCall));
    /// assert!("chunk".parse::<EventType>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<T> EventKind<T> {
    /// The kind without its payload.
    ///
    /// ```
    /// use beluga_core::{EventKind, EventType};
    /// assert_eq!(EventKind::<u8>::Done(None).event_type(), EventType::Done);
    /// ```
    #[inline]
    pub fn event_type(&self) -> EventType {
        match self {
            EventKind::Data(_) => EventType::Data,
            EventKind::ToolCall(_) => EventType::ToolCall,
            EventKind::ToolResult(_) => EventType::ToolResult,
            EventKind::Handoff(_) => EventType::Handoff,
            EventKind::Done(_) => EventType::Done,
            EventKind::Error(_) => EventType::Error,
        }
    }

    /// Maps the payload, keeping the kind.
    ///
    /// ```
    /// use beluga_core::EventKind;
    /// assert_eq!(EventKind::Data(2).map(|n| n * 10), EventKind::Data(20));
    /// ```
    #[inline]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> EventKind<U> {
        match self {
            EventKind::Data(t) => EventKind::Data(f(t)),
            EventKind::ToolCall(t) => EventKind::ToolCall(f(t)),
            EventKind::ToolResult(t) => EventKind::ToolResult(f(t)),
            EventKind::Handoff(t) => EventKind::Handoff(f(t)),
            EventKind::Done(t) => EventKind::Done(t.map(f)),
            EventKind::Error(e) => EventKind::Error(e),
        }
    }
}

/// The error returned when parsing an unknown [`EventType`] name.
///
/// ```
/// use beluga_core::EventType;
/// let err = "chunk".parse::<EventType>().unwrap_err();
/// assert_eq!(err.to_string(), "unknown event type `chunk`, expected one of: `data`, `tool_call`, `tool_result`, `handoff`, `done`, `error`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEventType(pub(crate) String);

impl fmt::Display for UnknownEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown event type `{}`, expected one of: ", self.0)?;
        for (i, ty) in EventType::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{ty}`")?;
        }
        Ok(())
    }
}

impl StdError for UnknownEventType {}
