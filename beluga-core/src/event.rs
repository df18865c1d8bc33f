//! [`Event<T>`]: the one unit that flows through every beluga stream.
//!
//! An event has a kind ([`EventKind`]) that carries the typed payload, and [`Meta`]data (trace
//! ids, token counts, cost hints) that costs no allocation when empty.
//!
//! ```
//! use beluga_core::{Event, EventKind};
//!
//! fn describe(event: &Event<String>) -> String {
//!     match event.kind() {
//!         EventKind::Data(text) => format!("chunk {text:?}"),
//!         EventKind::ToolCall(call) => format!("calls {call}"),
//!         EventKind::ToolResult(result) => format!("tool said {result}"),
//!         EventKind::Handoff(agent) => format!("hands off to {agent}"),
//!         EventKind::Done(Some(answer)) => format!("done: {answer}"),
//!         EventKind::Done(None) => "done".to_owned(),
//!         EventKind::Error(err) => format!("reported {err}"),
//!     }
//! }
//!
//! assert_eq!(describe(&Event::data("Hel".to_owned())), "chunk \"Hel\"");
//! assert_eq!(describe(&Event::done()), "done");
//! ```

mod into_event;
mod kind;
mod meta;
#[cfg(feature = "serde")]
mod serde_impl;

use std::borrow::Cow;
use std::fmt;

pub use self::into_event::{IntoEvent, Yielded};
pub use self::kind::{EventKind, EventType, UnknownEventType};
pub use self::meta::{Meta, MetaValue};
use crate::error::Error;

/// One item of an event stream: an event, or the terminal error.
///
/// ```
/// use beluga_core::{Event, EventResult};
/// let item: EventResult<&str> = Ok(Event::data("hi"));
/// # drop(item);
/// ```
pub type EventResult<T> = Result<Event<T>, Error>;

/// One event of a stream: a kind with its typed payload, and metadata.
///
/// Construct it with the function named after its kind, read it with [`Event::kind`] (or
/// [`Event::into_kind`]) and an exhaustive `match` (see the [module docs](crate::event)).
/// `size_of::<Event<u64>>()` is 24 bytes: events move once per item, so they stay small.
///
/// ```
/// use beluga_core::{Event, EventType};
///
/// let ev = Event::data("token").with_trace_id("trace-7").with_tokens(12, 1);
/// assert_eq!(ev.event_type(), EventType::Data);
/// assert_eq!(ev.payload(), Some(&"token"));
/// assert_eq!(ev.meta().trace_id(), Some("trace-7"));
/// assert_eq!(ev.meta().output_tokens(), Some(1));
/// ```
#[derive(PartialEq)]
pub struct Event<T> {
    kind: EventKind<T>,
    meta: Meta,
}

// Not derived: a derived `clone` clones the kind first and keeps it on the stack across the
// (out-of-line, rarely taken) call that copies a metadata map, three dead stores per clone;
// cloning the metadata first lets the kind stay in registers. `fan_out` clones every event
// once per extra consumer.
impl<T: Clone> Clone for Event<T> {
    #[inline]
    fn clone(&self) -> Self {
        let meta = self.meta.clone();
        Event {
            kind: self.kind.clone(),
            meta,
        }
    }
}

impl<T> Event<T> {
    /// A `data` event: a payload chunk.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert!(Event::data("Hello").is_data());
    /// ```
    #[inline]
    pub fn data(payload: T) -> Self {
        EventKind::Data(payload).into()
    }

    /// A `tool_call` event: the model asks for a tool.
    ///
    /// ```
    /// use beluga_core::{Event, EventType};
    /// assert_eq!(Event::tool_call("lookup").event_type(), EventType::ToolCall);
    /// ```
    #[inline]
    pub fn tool_call(payload: T) -> Self {
        EventKind::ToolCall(payload).into()
    }

    /// A `tool_result` event: a tool's answer.
    ///
    /// ```
    /// use beluga_core::{Event, EventType};
    /// assert_eq!(Event::tool_result("42").event_type(), EventType::ToolResult);
    /// ```
    #[inline]
    pub fn tool_result(payload: T) -> Self {
        EventKind::ToolResult(payload).into()
    }

    /// A `handoff` event: a transfer to another agent.
    ///
    /// ```
    /// use beluga_core::{Event, EventType};
    /// assert_eq!(Event::handoff("billing-agent").event_type(), EventType::Handoff);
    /// ```
    #[inline]
    pub fn handoff(payload: T) -> Self {
        EventKind::Handoff(payload).into()
    }

    /// A `done` event without a final value.
    ///
    /// ```
    /// use beluga_core::Event;
    /// let ev = Event::<String>::done();
    /// assert!(ev.is_done());
    /// assert_eq!(ev.payload(), None);
    /// ```
    #[inline]
    pub fn done() -> Self {
        EventKind::Done(None).into()
    }

    /// A `done` event carrying the final value, which `invoke` returns.
    ///
    /// ```
    /// use beluga_core::Event;
    /// let ev = Event::done_with("the answer");
    /// assert!(ev.is_done());
    /// assert_eq!(ev.into_payload(), Some("the answer"));
    /// ```
    #[inline]
    pub fn done_with(value: T) -> Self {
        EventKind::Done(Some(value)).into()
    }

    /// An `error` event: a reported, non-terminal error. The stream goes on after it; to end a
    /// stream with an error, yield `Err(error)` instead.
    ///
    /// ```
    /// use beluga_core::{Error, ErrorCode, Event};
    /// let ev = Event::<String>::error(Error::new(ErrorCode::ToolFailed, "lookup failed"));
    /// assert_eq!(ev.as_error().map(Error::code), Some(ErrorCode::ToolFailed));
    /// ```
    #[inline]
    pub fn error(error: Error) -> Self {
        EventKind::Error(error).into()
    }

    /// An event from its parts.
    ///
    /// ```
    /// use beluga_core::{Event, EventKind, Meta};
    /// let ev = Event::from_parts(EventKind::Data(1), Meta::new());
    /// assert_eq!(ev, Event::data(1));
    /// ```
    #[inline]
    pub fn from_parts(kind: EventKind<T>, meta: Meta) -> Self {
        Event { kind, meta }
    }

    /// The kind and payload, for matching.
    ///
    /// ```
    /// use beluga_core::{Event, EventKind};
    /// match Event::data(3).kind() {
    ///     EventKind::Data(n) => assert_eq!(*n, 3),
    ///     _ => unreachable!(),
    /// }
    /// ```
    #[inline]
    pub fn kind(&self) -> &EventKind<T> {
        &self.kind
    }

    /// The kind and payload, mutably.
    ///
    /// ```
    /// use beluga_core::{Event, EventKind};
    /// let mut ev = Event::data(3);
    /// if let EventKind::Data(n) = ev.kind_mut() {
    ///     *n += 1;
    /// }
    /// assert_eq!(ev.payload(), Some(&4));
    /// ```
    #[inline]
    pub fn kind_mut(&mut self) -> &mut EventKind<T> {
        &mut self.kind
    }

    /// The kind and payload by value, dropping the metadata.
    ///
    /// ```
    /// use beluga_core::{Event, EventKind};
    /// assert_eq!(Event::handoff("b").into_kind(), EventKind::Handoff("b"));
    /// ```
    #[inline]
    pub fn into_kind(self) -> EventKind<T> {
        self.kind
    }

    /// The kind and the metadata.
    ///
    /// ```
    /// use beluga_core::{Event, EventKind};
    /// let (kind, meta) = Event::data(1).with_trace_id("t").into_parts();
    /// assert_eq!(kind, EventKind::Data(1));
    /// assert_eq!(meta.trace_id(), Some("t"));
    /// ```
    #[inline]
    pub fn into_parts(self) -> (EventKind<T>, Meta) {
        (self.kind, self.meta)
    }

    /// The kind without the payload.
    ///
    /// ```
    /// use beluga_core::{Event, EventType};
    /// assert_eq!(Event::<u8>::done().event_type(), EventType::Done);
    /// ```
    #[inline]
    pub fn event_type(&self) -> EventType {
        self.kind.event_type()
    }

    /// Whether this is a `data` event.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert!(Event::data(0).is_data());
    /// ```
    #[inline]
    pub fn is_data(&self) -> bool {
        matches!(self.kind, EventKind::Data(_))
    }

    /// Whether this is a `done` event (with or without a final value).
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert!(Event::done_with(1).is_done());
    /// ```
    #[inline]
    pub fn is_done(&self) -> bool {
        matches!(self.kind, EventKind::Done(_))
    }

    /// Whether this is an `error` event (a reported, non-terminal error).
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert!(Event::<u8>::error(beluga_core::Error::cancelled()).is_error());
    /// ```
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(self.kind, EventKind::Error(_))
    }

    /// The payload of any kind that has one: `data`, `tool_call`, `tool_result`, `handoff`, and
    /// `done` with a final value.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert_eq!(Event::tool_result(7).payload(), Some(&7));
    /// assert_eq!(Event::<u8>::done().payload(), None);
    /// ```
    #[inline]
    pub fn payload(&self) -> Option<&T> {
        match &self.kind {
            EventKind::Data(t)
            | EventKind::ToolCall(t)
            | EventKind::ToolResult(t)
            | EventKind::Handoff(t)
            | EventKind::Done(Some(t)) => Some(t),
            EventKind::Done(None) | EventKind::Error(_) => None,
        }
    }

    /// The payload by value, if the kind has one.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert_eq!(Event::data(String::from("x")).into_payload().as_deref(), Some("x"));
    /// ```
    #[inline]
    pub fn into_payload(self) -> Option<T> {
        match self.kind {
            EventKind::Data(t)
            | EventKind::ToolCall(t)
            | EventKind::ToolResult(t)
            | EventKind::Handoff(t)
            | EventKind::Done(Some(t)) => Some(t),
            EventKind::Done(None) | EventKind::Error(_) => None,
        }
    }

    /// The reported error of an `error` event.
    ///
    /// ```
    /// use beluga_core::{Error, Event};
    /// assert!(Event::<u8>::error(Error::cancelled()).as_error().is_some());
    /// assert!(Event::data(1).as_error().is_none());
    /// ```
    #[inline]
    pub fn as_error(&self) -> Option<&Error> {
        match &self.kind {
            EventKind::Error(e) => Some(e),
            _ => None,
        }
    }

    /// Maps the payload, keeping the kind and the metadata.
    ///
    /// ```
    /// use beluga_core::Event;
    /// let ev = Event::data(21).with_trace_id("t").map(|n| n * 2);
    /// assert_eq!(ev.payload(), Some(&42));
    /// assert_eq!(ev.meta().trace_id(), Some("t"));
    /// ```
    #[inline]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Event<U> {
        Event {
            kind: self.kind.map(f),
            meta: self.meta,
        }
    }

    /// The metadata.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert!(Event::data(1).meta().is_empty());
    /// ```
    #[inline]
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The metadata, mutably.
    ///
    /// ```
    /// use beluga_core::Event;
    /// let mut ev = Event::data(1);
    /// ev.meta_mut().insert("provider", "local");
    /// assert_eq!(ev.meta().get("provider").and_then(|v| v.as_str()), Some("local"));
    /// ```
    #[inline]
    pub fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    /// Adds one metadata entry.
    ///
    /// ```
    /// use beluga_core::Event;
    /// let ev = Event::data(1).with_meta("model", "tiny-1");
    /// assert_eq!(ev.meta().len(), 1);
    /// ```
    #[must_use]
    pub fn with_meta(
        mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<MetaValue>,
    ) -> Self {
        self.meta.insert(key, value);
        self
    }

    /// Sets the trace id (metadata key `trace_id`).
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert_eq!(Event::data(1).with_trace_id("abc").meta().trace_id(), Some("abc"));
    /// ```
    #[must_use]
    pub fn with_trace_id(self, trace_id: impl Into<String>) -> Self {
        self.with_meta(Meta::TRACE_ID, MetaValue::Str(trace_id.into()))
    }

    /// Sets token counts (metadata keys `input_tokens` and `output_tokens`).
    ///
    /// ```
    /// use beluga_core::Event;
    /// let ev = Event::data(1).with_tokens(100, 3);
    /// assert_eq!(ev.meta().input_tokens(), Some(100));
    /// assert_eq!(ev.meta().output_tokens(), Some(3));
    /// ```
    #[must_use]
    pub fn with_tokens(self, input: u64, output: u64) -> Self {
        self.with_meta(Meta::INPUT_TOKENS, input)
            .with_meta(Meta::OUTPUT_TOKENS, output)
    }

    /// Sets a cost hint in US dollars (metadata key `cost_usd`).
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert_eq!(Event::data(1).with_cost_usd(0.002).meta().cost_usd(), Some(0.002));
    /// ```
    #[must_use]
    pub fn with_cost_usd(self, cost: f64) -> Self {
        self.with_meta(Meta::COST_USD, cost)
    }
}

impl<T> From<EventKind<T>> for Event<T> {
    #[inline]
    fn from(kind: EventKind<T>) -> Self {
        Event {
            kind,
            meta: Meta::new(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Event<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.meta.is_empty() {
            // The common case reads like the constructor call: `Data(1)`.
            fmt::Debug::fmt(&self.kind, f)
        } else {
            f.debug_struct("Event")
                .field("kind", &self.kind)
                .field("meta", &self.meta)
                .finish()
        }
    }
}
