//! How events become server-sent events: the [`Encoding`] trait and the encodings that
//! implement it.
//!
//! An encoding turns each item of an event stream into [`Frame`]s (an optional event name and
//! the data); the server gives them their SSE `id` (a number, or the item's own id: see
//! [`ServedItem`](crate::server::ServedItem)), sends them, and adds keep-alive comments. It sees every item in order and is told how the stream ended, exactly once:
//!
//! * [`event`](Encoding::event) for each event, the `done` that ends the stream included;
//! * [`error`](Encoding::error) for the terminal `Err`, which the encoding writes in its error
//!   form (a connection is never closed silently on an error);
//! * [`cut`](Encoding::cut) when the stream ended with neither, so that a reader can tell a
//!   stream that ended early from a connection that was lost.
//!
//! After a `done` event or an error no more calls come.
//!
//! | encoding | for | ends with | terminal error |
//! |---|---|---|---|
//! | [`BelugaJson`] | any `Event<T>` with `T: Serialize` | the `done` event | a frame named `error` |
//! | `OpenAiChunks` (feature `llm`) | `Event<ChatChunk>` | `data: [DONE]` | `data: {"error":{…}}` |
//! | `VercelUiStream` (feature `llm`) | `Event<ChatChunk>` | `finish`, `data: [DONE]` | an `error` part, `data: [DONE]` |
//!
//! `ChatChunk` is `beluga_llm::schema::ChatChunk`.

pub(crate) mod beluga_json;
#[cfg(feature = "llm")]
mod openai;
#[cfg(feature = "llm")]
mod vercel;

use beluga_core::{Error, Event};

pub use self::beluga_json::BelugaJson;
#[cfg(feature = "llm")]
pub use self::openai::OpenAiChunks;
#[cfg(feature = "llm")]
pub use self::vercel::VercelUiStream;
use crate::frame::Frame;

/// Turns the items of an event stream into [`Frame`]s; see the [module docs](self).
///
/// An encoding may keep state (an open text part, the chunk id of an answer); one value
/// encodes one stream.
///
/// ```
/// use beluga_core::{Error, Event, EventKind};
/// use beluga_sse::{Encoding, Frame};
///
/// /// Plain text: one frame per data event, `[END]` at the end.
/// struct Text;
///
/// impl Encoding<String> for Text {
///     fn event(&mut self, event: &Event<String>, out: &mut Vec<Frame>) -> Result<(), Error> {
///         match event.kind() {
///             EventKind::Data(text) => out.push(Frame::message(text.clone())),
///             EventKind::Done(_) => out.push(Frame::message("[END]")),
///             _ => {}
///         }
///         Ok(())
///     }
///
///     fn error(&mut self, error: &Error, out: &mut Vec<Frame>) {
///         out.push(Frame::named("error", error.to_string()));
///     }
///
///     fn cut(&mut self, out: &mut Vec<Frame>) {
///         out.push(Frame::message("[END]"));
///     }
/// }
///
/// let mut frames = Vec::new();
/// Text.event(&Event::data("hi".to_owned()), &mut frames).unwrap();
/// assert_eq!(frames, [Frame::message("hi")]);
/// ```
pub trait Encoding<T>: Send + 'static {
    /// Response headers the encoding needs besides `content-type: text/event-stream` (the
    /// Vercel AI SDK, for one, looks for its protocol's version header).
    ///
    /// ```
    /// use beluga_sse::{BelugaJson, Encoding};
    /// assert!(Encoding::<String>::headers(&BelugaJson).is_empty());
    /// ```
    fn headers(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Appends the frames for one event. A `done` event is the last call but one at most: only
    /// nothing follows it.
    ///
    /// An `Err` (a payload that does not serialize, say) ends the stream: the server passes it
    /// to [`error`](Encoding::error) as if the stream had ended with it.
    fn event(&mut self, event: &Event<T>, out: &mut Vec<Frame>) -> Result<(), Error>;

    /// Appends the frames for the stream's terminal error. Nothing follows.
    fn error(&mut self, error: &Error, out: &mut Vec<Frame>);

    /// Appends the frames that say the stream ended without a terminal item (no `done`, no
    /// error). Nothing follows.
    fn cut(&mut self, out: &mut Vec<Frame>);
}

/// 64 random-looking bits in hex, for ids that only need to differ (a chunk id, a message id),
/// not to be unguessable.
#[cfg_attr(not(feature = "llm"), allow(dead_code))]
pub(crate) fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // `RandomState` is seeded from the operating system's randomness, once per process and
    // then per instance; the counter keeps two ids of one instant apart.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}
