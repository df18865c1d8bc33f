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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use crate::Error;

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
    type Err = crate::error::UnknownEventType;

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
            .ok_or_else(|| crate::error::UnknownEventType(s.to_owned()))
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

/// What `emit!` accepts in a [`stream_producer`](crate::stream_producer) of `T` events: a
/// payload `T`, sent as [`Event::data`], or a whole `Event<T>`, sent as it is.
///
/// ```
/// use beluga_core::{Event, IntoEvent};
/// assert_eq!(IntoEvent::<u8>::into_event(7), Event::data(7));
/// assert_eq!(Event::tool_call(7).into_event(), Event::tool_call(7));
/// ```
#[diagnostic::on_unimplemented(
    message = "cannot emit `{Self}` from a producer of `{T}` events",
    label = "expected `{T}` or `Event<{T}>`",
    note = "`emit!(value)` sends `Event::data(value)`; `emit!(event)` sends an `Event<{T}>` as it is",
    note = "a value of type `!` is one whose type was left to inference, which cannot choose \
            between `{T}` and `Event<{T}>`: write the type, like `emit!(text.parse::<{T}>()?)`"
)]
pub trait IntoEvent<T> {
    /// The event this value stands for.
    fn into_event(self) -> Event<T>;

    /// How `emit!` hands the value to its stream: payloads travel without their event.
    #[doc(hidden)]
    fn __into_yielded(self) -> crate::__private::Yielded<T>
    where
        Self: Sized,
    {
        crate::__private::Yielded::Event(self.into_event())
    }
}

impl<T> IntoEvent<T> for T {
    #[inline]
    fn into_event(self) -> Event<T> {
        Event::data(self)
    }

    #[inline]
    fn __into_yielded(self) -> crate::__private::Yielded<T> {
        crate::__private::Yielded::Data(self)
    }
}

impl<T> IntoEvent<T> for Event<T> {
    #[inline]
    fn into_event(self) -> Event<T> {
        self
    }

    #[inline]
    fn __into_yielded(self) -> crate::__private::Yielded<T> {
        crate::__private::Yielded::Event(self)
    }
}

/// A metadata value: a string, a number or a flag.
///
/// ```
/// use beluga_core::MetaValue;
/// assert_eq!(MetaValue::from(3_u64).as_u64(), Some(3));
/// assert_eq!(MetaValue::from("x").as_str(), Some("x"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// A flag.
    Bool(bool),
    /// A negative integer. [`Meta::insert`] stores non-negative integers as [`MetaValue::U64`].
    I64(i64),
    /// An unsigned integer (token counts).
    U64(u64),
    /// A floating-point number (cost hints).
    F64(f64),
    /// A string (trace ids, provider names).
    Str(String),
}

impl MetaValue {
    /// The string, if this is one.
    ///
    /// ```
    /// use beluga_core::MetaValue;
    /// assert_eq!(MetaValue::Bool(true).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a `u64`, if it is a non-negative integer.
    ///
    /// ```
    /// use beluga_core::MetaValue;
    /// assert_eq!(MetaValue::I64(5).as_u64(), Some(5));
    /// assert_eq!(MetaValue::I64(-5).as_u64(), None);
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U64(n) => Some(n),
            MetaValue::I64(n) => u64::try_from(n).ok(),
            _ => None,
        }
    }

    /// The value as an `i64`, if it is an integer that fits.
    ///
    /// ```
    /// use beluga_core::MetaValue;
    /// assert_eq!(MetaValue::from(-3).as_i64(), Some(-3));
    /// assert_eq!(MetaValue::from(u64::MAX).as_i64(), None);
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::I64(n) => Some(n),
            MetaValue::U64(n) => i64::try_from(n).ok(),
            _ => None,
        }
    }

    /// The value as an `f64`, if it is a number.
    ///
    /// ```
    /// use beluga_core::MetaValue;
    /// assert_eq!(MetaValue::F64(0.5).as_f64(), Some(0.5));
    /// ```
    #[allow(
        clippy::cast_precision_loss,
        reason = "a metadata hint, not an exact amount"
    )]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F64(n) => Some(n),
            MetaValue::U64(n) => Some(n as f64),
            MetaValue::I64(n) => Some(n as f64),
            _ => None,
        }
    }

    /// The flag, if this is one.
    ///
    /// ```
    /// use beluga_core::MetaValue;
    /// assert_eq!(MetaValue::from(true).as_bool(), Some(true));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }
}

macro_rules! meta_from {
    ($($ty:ty => $variant:ident as $as:ty),* $(,)?) => {$(
        impl From<$ty> for MetaValue {
            fn from(v: $ty) -> Self {
                MetaValue::$variant(<$as>::from(v))
            }
        }
    )*};
}

meta_from! {
    bool => Bool as bool,
    i8 => I64 as i64,
    i16 => I64 as i64,
    i32 => I64 as i64,
    u8 => U64 as u64,
    u16 => U64 as u64,
    i64 => I64 as i64,
    u32 => U64 as u64,
    u64 => U64 as u64,
    f32 => F64 as f64,
    f64 => F64 as f64,
    String => Str as String,
    &str => Str as String,
}

impl From<usize> for MetaValue {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "usize is at most 64 bits on every target Rust supports"
    )]
    fn from(v: usize) -> Self {
        MetaValue::U64(v as u64)
    }
}

/// Event metadata: trace ids, token counts, cost hints, and any other observational key.
///
/// Empty metadata is a null pointer: no allocation until the first entry is inserted. Keys are
/// kept sorted.
///
/// ```
/// use beluga_core::Meta;
///
/// let mut meta = Meta::new();
/// assert!(meta.is_empty());
/// meta.insert(Meta::TRACE_ID, "t-1");
/// meta.insert("retries", 2_u64);
/// assert_eq!(meta.trace_id(), Some("t-1"));
/// assert_eq!(meta.get("retries").and_then(|v| v.as_u64()), Some(2));
/// assert_eq!(std::mem::size_of::<Meta>(), std::mem::size_of::<usize>());
/// ```
#[derive(Default, PartialEq)]
pub struct Meta {
    #[allow(
        clippy::box_collection,
        reason = "the box keeps `Meta` one pointer wide, so `Event<u64>` stays at 24 bytes"
    )]
    entries: Option<Box<BTreeMap<Cow<'static, str>, MetaValue>>>,
}

impl Meta {
    /// Key of the trace id.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::TRACE_ID, "trace_id");
    /// ```
    pub const TRACE_ID: &'static str = "trace_id";
    /// Key of the span id.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::SPAN_ID, "span_id");
    /// ```
    pub const SPAN_ID: &'static str = "span_id";
    /// Key of the prompt token count.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::INPUT_TOKENS, "input_tokens");
    /// ```
    pub const INPUT_TOKENS: &'static str = "input_tokens";
    /// Key of the completion token count.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::OUTPUT_TOKENS, "output_tokens");
    /// ```
    pub const OUTPUT_TOKENS: &'static str = "output_tokens";
    /// Key of the cost hint, in US dollars.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::COST_USD, "cost_usd");
    /// ```
    pub const COST_USD: &'static str = "cost_usd";

    /// Empty metadata; allocates nothing.
    ///
    /// ```
    /// assert!(beluga_core::Meta::new().is_empty());
    /// ```
    #[inline]
    pub const fn new() -> Self {
        Meta { entries: None }
    }

    /// Whether there are no entries.
    ///
    /// ```
    /// assert!(beluga_core::Meta::new().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.as_ref().is_none_or(|m| m.is_empty())
    }

    /// How many entries there are.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |m| m.len())
    }

    /// The value for `key`.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// let mut meta = Meta::new();
    /// meta.insert("k", 1_u64);
    /// assert!(meta.get("k").is_some());
    /// assert!(meta.get("other").is_none());
    /// ```
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.entries.as_ref()?.get(key)
    }

    /// Sets `key` to `value`, returning the previous value.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// let mut meta = Meta::new();
    /// assert!(meta.insert("k", 1_u64).is_none());
    /// assert_eq!(meta.insert("k", 2_u64).and_then(|v| v.as_u64()), Some(1));
    /// ```
    pub fn insert(
        &mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<MetaValue>,
    ) -> Option<MetaValue> {
        let value = match value.into() {
            // One spelling per number, so that equal values compare equal (and survive JSON).
            MetaValue::I64(n) if n >= 0 => MetaValue::U64(n.unsigned_abs()),
            other => other,
        };
        self.entries
            .get_or_insert_with(Box::default)
            .insert(key.into(), value)
    }

    /// Removes `key`, returning its value.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// let mut meta = Meta::new();
    /// meta.insert("k", true);
    /// assert_eq!(meta.remove("k"), Some(true.into()));
    /// assert!(meta.is_empty());
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<MetaValue> {
        let entries = self.entries.as_mut()?;
        let removed = entries.remove(key);
        if entries.is_empty() {
            self.entries = None;
        }
        removed
    }

    /// Iterates over the entries in key order.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// let mut meta = Meta::new();
    /// meta.insert("b", 2_u64);
    /// meta.insert("a", 1_u64);
    /// let keys: Vec<&str> = meta.iter().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.entries
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| (k.as_ref(), v))
    }

    /// The trace id, if set.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// assert_eq!(Meta::new().trace_id(), None);
    /// ```
    pub fn trace_id(&self) -> Option<&str> {
        self.get(Self::TRACE_ID)?.as_str()
    }

    /// The span id, if set.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// let mut meta = Meta::new();
    /// meta.insert(Meta::SPAN_ID, "s-1");
    /// assert_eq!(meta.span_id(), Some("s-1"));
    /// ```
    pub fn span_id(&self) -> Option<&str> {
        self.get(Self::SPAN_ID)?.as_str()
    }

    /// The prompt token count, if set.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert_eq!(Event::data(()).with_tokens(5, 1).meta().input_tokens(), Some(5));
    /// ```
    pub fn input_tokens(&self) -> Option<u64> {
        self.get(Self::INPUT_TOKENS)?.as_u64()
    }

    /// The completion token count, if set.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert_eq!(Event::data(()).with_tokens(5, 1).meta().output_tokens(), Some(1));
    /// ```
    pub fn output_tokens(&self) -> Option<u64> {
        self.get(Self::OUTPUT_TOKENS)?.as_u64()
    }

    /// The cost hint in US dollars, if set.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert_eq!(Event::data(()).with_cost_usd(0.5).meta().cost_usd(), Some(0.5));
    /// ```
    pub fn cost_usd(&self) -> Option<f64> {
        self.get(Self::COST_USD)?.as_f64()
    }
}

impl Drop for Meta {
    /// Empty metadata is the common case: keep its drop a null check the caller can inline,
    /// and the map's teardown out of line.
    #[inline]
    fn drop(&mut self) {
        #[cold]
        #[inline(never)]
        #[allow(clippy::box_collection, reason = "the box is what `Meta` holds")]
        fn drop_entries(entries: Box<BTreeMap<Cow<'static, str>, MetaValue>>) {
            drop(entries);
        }
        if let Some(entries) = self.entries.take() {
            drop_entries(entries);
        }
    }
}

impl Clone for Meta {
    /// As for drop: cloning empty metadata is a null check the caller can inline, and copying a
    /// map is out of line. (`fan_out` clones every event once per extra consumer.)
    #[inline]
    fn clone(&self) -> Self {
        #[inline(never)]
        #[allow(
            clippy::box_collection,
            clippy::unnecessary_box_returns,
            reason = "the box is what `Meta` holds"
        )]
        fn clone_entries(
            entries: &BTreeMap<Cow<'static, str>, MetaValue>,
        ) -> Box<BTreeMap<Cow<'static, str>, MetaValue>> {
            Box::new(entries.clone())
        }
        Meta {
            entries: self.entries.as_deref().map(clone_entries),
        }
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    //! Beluga's JSON shape: `{"type":"data","payload":…,"meta":{…}}`. `done` carries `payload`
    //! only with a final value, `error` carries `error` instead of `payload`, and `meta` is left
    //! out when empty. The shape is a map with optional keys, so it needs a self-describing
    //! format (JSON, CBOR, `MessagePack`, ...), not bincode or postcard.

    use super::{Cow, Event, EventKind, EventType, Meta, MetaValue};
    use crate::Error;
    use serde::de::{self, IntoDeserializer};
    use serde::ser::{SerializeMap, Serializer};
    use serde::{Deserialize, Deserializer, Serialize};
    use std::collections::BTreeMap;
    use std::fmt;

    impl Serialize for EventType {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(self.as_str())
        }
    }

    impl<'de> Deserialize<'de> for EventType {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            const NAMES: &[&str] = &[
                "data",
                "tool_call",
                "tool_result",
                "handoff",
                "done",
                "error",
            ];
            let s = Cow::<'de, str>::deserialize(d)?;
            s.parse().map_err(|_| de::Error::unknown_variant(&s, NAMES))
        }
    }

    impl Serialize for MetaValue {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                MetaValue::Bool(b) => s.serialize_bool(*b),
                MetaValue::I64(n) => s.serialize_i64(*n),
                MetaValue::U64(n) => s.serialize_u64(*n),
                MetaValue::F64(n) => s.serialize_f64(*n),
                MetaValue::Str(v) => s.serialize_str(v),
            }
        }
    }

    impl<'de> Deserialize<'de> for MetaValue {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl de::Visitor<'_> for V {
                type Value = MetaValue;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a metadata value: a boolean, a number or a string")
                }
                fn visit_bool<E>(self, v: bool) -> Result<MetaValue, E> {
                    Ok(MetaValue::Bool(v))
                }
                fn visit_i64<E>(self, v: i64) -> Result<MetaValue, E> {
                    Ok(if v >= 0 {
                        MetaValue::U64(v.unsigned_abs())
                    } else {
                        MetaValue::I64(v)
                    })
                }
                fn visit_u64<E>(self, v: u64) -> Result<MetaValue, E> {
                    Ok(MetaValue::U64(v))
                }
                fn visit_f64<E>(self, v: f64) -> Result<MetaValue, E> {
                    Ok(MetaValue::F64(v))
                }
                fn visit_str<E>(self, v: &str) -> Result<MetaValue, E> {
                    Ok(MetaValue::Str(v.to_owned()))
                }
                fn visit_string<E>(self, v: String) -> Result<MetaValue, E> {
                    Ok(MetaValue::Str(v))
                }
            }
            d.deserialize_any(V)
        }
    }

    impl Serialize for Meta {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.iter())
        }
    }

    impl<'de> Deserialize<'de> for Meta {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            // `null` values are skipped: it is how JSON writes a NaN or infinite cost hint.
            let map = BTreeMap::<String, Option<MetaValue>>::deserialize(d)?;
            let mut meta = Meta::new();
            for (k, v) in map {
                if let Some(v) = v {
                    meta.insert(k, v);
                }
            }
            Ok(meta)
        }
    }

    impl<T: Serialize> Serialize for Event<T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(None)?;
            map.serialize_entry("type", &self.event_type())?;
            match &self.kind {
                EventKind::Error(err) => map.serialize_entry("error", err)?,
                _ => {
                    if let Some(payload) = self.payload() {
                        map.serialize_entry("payload", payload)?;
                    }
                }
            }
            if !self.meta.is_empty() {
                map.serialize_entry("meta", &self.meta)?;
            }
            map.end()
        }
    }

    #[derive(Deserialize)]
    #[serde(bound(deserialize = "T: Deserialize<'de>"))]
    struct Repr<T> {
        #[serde(rename = "type")]
        ty: EventType,
        // `Some` whenever the key is present, even as `null`: `done_with(())` must not come back
        // as `done()`.
        #[serde(default = "Option::default", deserialize_with = "present")]
        payload: Option<T>,
        #[serde(default)]
        error: Option<Error>,
        #[serde(default)]
        meta: Meta,
    }

    fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }

    /// A payload that was absent: only a payload type that accepts "nothing"
    /// (`()`, `Option<_>`) can stand for it.
    fn unit_payload<'de, T: Deserialize<'de>, E: de::Error>(ty: EventType) -> Result<T, E> {
        T::deserialize(().into_deserializer())
            .map_err(|_: de::value::Error| E::custom(format!("`{ty}` event without a `payload`")))
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Event<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let repr = Repr::<T>::deserialize(d)?;
            let payload = |p: Option<T>| match p {
                Some(p) => Ok(p),
                None => unit_payload::<T, D::Error>(repr.ty),
            };
            let kind = match repr.ty {
                EventType::Data => EventKind::Data(payload(repr.payload)?),
                EventType::ToolCall => EventKind::ToolCall(payload(repr.payload)?),
                EventType::ToolResult => EventKind::ToolResult(payload(repr.payload)?),
                EventType::Handoff => EventKind::Handoff(payload(repr.payload)?),
                EventType::Done => EventKind::Done(repr.payload),
                EventType::Error => EventKind::Error(
                    repr.error
                        .ok_or_else(|| de::Error::custom("`error` event without an `error`"))?,
                ),
            };
            Ok(Event::from_parts(kind, repr.meta))
        }
    }
}
