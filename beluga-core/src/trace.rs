//! Tracing for event streams (the `tracing` feature): one [`tracing`] span per stream, from
//! its first poll to its terminal item.
//!
//! [`traced`](crate::EventStreamExt::traced) wraps any event stream; on the first poll it opens
//! an `INFO` span, every poll of the stream runs inside it (so what the producer logs nests
//! under it), and at the terminal item (a `done` event, an `Err`, or the end of a stream that
//! had neither) it records how the stream went and closes. A stream dropped before its end
//! closes its span too, recording that the consumer went away.
//!
//! The span's parent is the span that was current where `traced` was called (as with
//! `tracing`'s `Instrument`), or, when there was none, the one current at the first poll.
//! That is where the stream was built, which may not be where it is consumed: build it inside
//! the span it belongs to. The parent is entered for a moment at the first poll, to open the
//! span inside it, which a subscriber that times spans (`tracing-opentelemetry`'s `busy_ns`)
//! counts as one more entry of the parent.
//!
//! The span's level is `INFO`, always; filter on its target (`beluga_core::trace` for
//! [`traced`](crate::EventStreamExt::traced), the opening module for a
//! [`StreamSpan`] of your own). Durations are float milliseconds, not OpenTelemetry's seconds.
//!
//! # Fields
//!
//! Every traced stream's span has these fields:
//!
//! | field | value | recorded |
//! |---|---|---|
//! | `beluga.request_id` | the context's [request id](crate::Context::request_id) | at the start, when there is one |
//! | `beluga.session_id` | the context's [session id](crate::Context::session_id) | at the start, when there is one |
//! | `beluga.time_to_first_item_ms` | milliseconds (a float) from the first poll to the first content item, a `data` or `tool_call` event, on Tokio's clock; not recorded when none came (a stream that fails at once, or holds only `error` events and `done`) | at that item |
//! | `beluga.items` | the items the stream yielded, its terminal one included (an integer, `i64`) | at the end |
//! | `beluga.error_events` | the `error` events among them (reported errors; each is also logged, see below) | at the end |
//! | `beluga.outcome` | how it ended: [`Outcome`] (`done`, `error`, `cancelled`, `ended`, `dropped`) | at the end |
//! | `error.type` | the failure's code (`rate_limit`, `deadline_exceeded`, ...): the terminal error's, or, for a stream that ends without a terminal item or is dropped after an `error` event, the last such event's | at the failure |
//! | `otel.status_code`, `otel.status_description` | `error` and the same error's text | at the failure |
//!
//! Every field is recorded once (an OpenTelemetry exporter keeps each value a field is given,
//! so a field recorded twice would be exported twice).
//!
//! Each `error` event is also logged inside the span, as a `WARN` event with the target
//! `beluga_core::trace` (to filter on), its code in `error.type` and its text as the message.
//!
//! The names follow OpenTelemetry's conventions: with `tracing-opentelemetry` installed, the
//! `otel.*` fields set the exported span's name, kind and status, `error.type` is the standard
//! attribute, and every other field becomes an attribute. Nothing here depends on
//! OpenTelemetry.
//!
//! A stream whose span no subscriber wants (none installed, or filtered out) is polled as it
//! is: no clock read, no count, nothing recorded. Without the feature none of this exists.
//!
//! # Spans of your own
//!
//! [`traced_with`](crate::EventStreamExt::traced_with) takes a [`StreamSpan`], which opens the
//! span (declaring the fields above with [`stream_span!`](crate::stream_span), plus its own)
//! and sees every event go by. `beluga-llm` traces chat streams this way, with OpenTelemetry's
//! GenAI attribute names.

use std::borrow::Cow;
use std::fmt;

use tracing::Span;

use crate::context::Context;
use crate::event::Event;

/// Opens the span of a traced stream: an `INFO` span named `$name` with the
/// [fields every traced stream records](crate::trace#fields) (the request and session ids of
/// the [`Context`](crate::Context) `$ctx`, the others empty until recorded), followed by the
/// fields given after the context, in `tracing`'s syntax. For
/// [`StreamSpan::open`](crate::trace::StreamSpan::open).
///
/// The name must be a string literal (a `tracing` span's name is static); put a name made at
/// run time in `otel.name`.
///
/// ```
/// use beluga_core::{stream_span, Context};
///
/// let ctx = Context::new().with_request_id("req-1");
/// let model = "small";
/// let span = stream_span!("generate", &ctx, otel.name = %format_args!("generate {model}"), tokens = tracing::field::Empty);
/// # drop(span);
/// ```
#[macro_export]
macro_rules! stream_span {
    ($name:literal, $ctx:expr $(, $($fields:tt)*)?) => {{
        let ctx: &$crate::Context = $ctx;
        $crate::__private::tracing::info_span!(
            $name,
            beluga.request_id = ctx.request_id(),
            beluga.session_id = ctx.session_id(),
            beluga.time_to_first_item_ms = $crate::__private::tracing::field::Empty,
            beluga.items = $crate::__private::tracing::field::Empty,
            beluga.error_events = $crate::__private::tracing::field::Empty,
            beluga.outcome = $crate::__private::tracing::field::Empty,
            error.type = $crate::__private::tracing::field::Empty,
            otel.status_code = $crate::__private::tracing::field::Empty,
            otel.status_description = $crate::__private::tracing::field::Empty
            $(, $($fields)*)?
        )
    }};
}

/// What a traced stream's span records beyond the [fields](self#fields) every traced stream
/// records: implement it to trace a kind of stream with fields of its own, and pass it to
/// [`traced_with`](crate::EventStreamExt::traced_with).
///
/// ```
/// use beluga_core::trace::{Outcome, StreamSpan};
/// use beluga_core::{Context, Event, EventStreamExt, stream, stream_span};
/// use tracing::Span;
///
/// /// Traces a search: the query, and how many hits came back.
/// struct SearchSpan {
///     query: String,
///     hits: i64,
/// }
///
/// impl StreamSpan<String> for SearchSpan {
///     fn open(&mut self, ctx: &Context) -> Span {
///         stream_span!("search", ctx, search.query = %self.query, search.hits = tracing::field::Empty)
///     }
///
///     // Count as the events go by...
///     fn on_event(&mut self, _span: &Span, event: &Event<String>) {
///         if event.is_data() {
///             self.hits += 1;
///         }
///     }
///
///     // ...and record once, at the end: an OpenTelemetry exporter keeps every value a field
///     // is given, so a field recorded per event would be exported once per event.
///     fn on_end(&mut self, span: &Span, _outcome: Outcome) {
///         span.record("search.hits", self.hits);
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = Context::new().with_request_id("req-7");
/// let hits = stream::iter(["a".to_owned(), "b".to_owned()])
///     .traced_with(SearchSpan { query: "rust".into(), hits: 0 }, &ctx)
///     .collect_events()
///     .await;
/// assert_eq!(hits.data().count(), 2);
/// # }
/// ```
pub trait StreamSpan<T> {
    /// Opens the span, at the stream's first poll (inside the parent span, so a contextual
    /// parent is the right one). The span must declare the fields every traced stream records,
    /// which [`stream_span!`](crate::stream_span) does; fields it does not declare are not
    /// recorded.
    ///
    /// ```
    /// use beluga_core::trace::StreamSpan;
    /// use beluga_core::{Context, stream_span};
    /// use tracing::Span;
    ///
    /// struct Step;
    /// impl StreamSpan<u32> for Step {
    ///     fn open(&mut self, ctx: &Context) -> Span {
    ///         stream_span!("step", ctx, otel.name = "summarize")
    ///     }
    /// }
    /// assert!(Step.open(&Context::new()).is_disabled()); // no subscriber here
    /// ```
    fn open(&mut self, ctx: &Context) -> Span;

    /// Sees each event as it comes out, before the consumer does; `span` is the one
    /// [`open`](StreamSpan::open) returned. Not called when no subscriber wants the span.
    ///
    /// ```
    /// use beluga_core::trace::StreamSpan;
    /// use beluga_core::{Context, Event, stream_span};
    /// use tracing::Span;
    ///
    /// struct LastToken;
    /// impl StreamSpan<String> for LastToken {
    ///     fn open(&mut self, ctx: &Context) -> Span {
    ///         stream_span!("tokens", ctx, last_token = tracing::field::Empty)
    ///     }
    ///     fn on_event(&mut self, span: &Span, event: &Event<String>) {
    ///         if let Some(token) = event.payload() {
    ///             span.record("last_token", token.as_str());
    ///         }
    ///     }
    /// }
    /// LastToken.on_event(&Span::none(), &Event::data("hi".to_owned()));
    /// ```
    fn on_event(&mut self, span: &Span, event: &Event<T>) {
        let _ = (span, event);
    }

    /// Sees the end of the stream, once, before the span closes: at its terminal item, at its
    /// end without one, or when it is dropped before its end (`outcome` says which). The place
    /// to record what [`on_event`](StreamSpan::on_event) kept: each `record` of a field is a
    /// value of its own to an OpenTelemetry exporter, so a field recorded per event would be
    /// exported as many times. Not called when no subscriber wants the span.
    ///
    /// ```
    /// use beluga_core::trace::{Outcome, StreamSpan};
    /// use beluga_core::{Context, Event, stream_span};
    /// use tracing::Span;
    ///
    /// #[derive(Default)]
    /// struct Tokens(i64);
    /// impl StreamSpan<String> for Tokens {
    ///     fn open(&mut self, ctx: &Context) -> Span {
    ///         stream_span!("tokens", ctx, tokens = tracing::field::Empty)
    ///     }
    ///     fn on_event(&mut self, _span: &Span, event: &Event<String>) {
    ///         self.0 += i64::from(event.is_data());
    ///     }
    ///     fn on_end(&mut self, span: &Span, _outcome: Outcome) {
    ///         span.record("tokens", self.0);
    ///     }
    /// }
    /// let mut tokens = Tokens::default();
    /// tokens.on_event(&Span::none(), &Event::data("hi".to_owned()));
    /// tokens.on_end(&Span::none(), Outcome::Done);
    /// assert_eq!(tokens.0, 1);
    /// ```
    fn on_end(&mut self, span: &Span, outcome: Outcome) {
        let _ = (span, outcome);
    }
}

/// The span of [`traced`](crate::EventStreamExt::traced): named `stream`, with the given name
/// in `otel.name` (the name an OpenTelemetry exporter shows) and the [fields](self#fields)
/// every traced stream records.
///
/// ```
/// use beluga_core::trace::{NamedSpan, StreamSpan};
/// use beluga_core::Context;
///
/// let mut span = NamedSpan::new("answer");
/// assert_eq!(span.name(), "answer");
/// let _span = StreamSpan::<u32>::open(&mut span, &Context::new());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedSpan {
    name: Cow<'static, str>,
}

impl NamedSpan {
    /// A span for a stream called `name`.
    ///
    /// ```
    /// use beluga_core::trace::NamedSpan;
    /// let step = 3;
    /// let span = NamedSpan::new(format!("agent step {step}"));
    /// assert_eq!(span.name(), "agent step 3");
    /// ```
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        NamedSpan { name: name.into() }
    }

    /// The stream's name.
    ///
    /// ```
    /// assert_eq!(beluga_core::trace::NamedSpan::new("answer").name(), "answer");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<T> StreamSpan<T> for NamedSpan {
    fn open(&mut self, ctx: &Context) -> Span {
        // The macro by its textual scope (above): `crate::` paths name modules only.
        stream_span!("stream", ctx, otel.name = self.name())
    }
}

/// How a traced stream ended: the value of its `beluga.outcome` field.
///
/// ```
/// use beluga_core::trace::Outcome;
/// assert_eq!(Outcome::Dropped.as_str(), "dropped");
/// assert_eq!(Outcome::Error.to_string(), "error");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// `done`: it ended with a `done` event.
    Done,
    /// `error`: it ended with an `Err` item (other than a cancellation).
    Error,
    /// `cancelled`: it ended with a [cancelled](crate::ErrorCode::Cancelled) `Err` item: the
    /// context was cancelled on purpose (a user's Stop), which is no failure, so the span
    /// records no `error.type` and no error status. A
    /// [deadline](crate::ErrorCode::DeadlineExceeded) is an [`Error`](Outcome::Error).
    Cancelled,
    /// `ended`: it ended without a terminal item (it was cut short).
    Ended,
    /// `dropped`: the consumer dropped it before its end.
    Dropped,
}

impl Outcome {
    /// `done`, `error`, `cancelled`, `ended` or `dropped`.
    ///
    /// ```
    /// assert_eq!(beluga_core::trace::Outcome::Ended.as_str(), "ended");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Error => "error",
            Outcome::Cancelled => "cancelled",
            Outcome::Ended => "ended",
            Outcome::Dropped => "dropped",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
