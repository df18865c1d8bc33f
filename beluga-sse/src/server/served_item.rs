//! [`ServedItem`]: what a stream served with [`serve`](crate::serve) yields, with or without
//! its events' ids.

use std::fmt::Display;

use beluga_core::EventResult;

/// An item of a stream that [`serve`](crate::serve) sends: an [`EventResult`], whose events
/// the server numbers (`1`, `2`, …), or an `(id, EventResult)` pair, whose id the server sends
/// as the `id` of the item's event.
///
/// Ids that come from the source make a stateless, resumable server possible: when the source
/// can go on after any item it names (a position in a log, a message of a NATS stream: see
/// beluga-nats's `RemoteStream::with_ids`), any server instance can resume a `Last-Event-ID`
/// by handing it back to the source. The server does not interpret the ids; the
/// [client](crate::client) sends the last one it received back as it is.
///
/// How ids go on the wire:
///
/// * an item that the encoding writes as several frames sends its id on the last one only
///   (the others have no `id` field, so a client that loses the connection between them
///   resumes before the item, and gets the whole item again rather than lose part of it);
/// * frames that come from no item (the stream's end without a terminal item, a panic) have
///   no id once the source has given ids, and are numbered otherwise;
/// * an id that SSE cannot carry (a line break or a NUL in it) ends the stream with an
///   `invalid_input` error instead of being sent.
///
/// Implement it for an item type of your own to serve it with its id:
///
/// ```
/// use beluga_core::{Event, EventResult};
/// use beluga_sse::server::ServedItem;
///
/// /// A line of a log file, named by its offset.
/// struct Line {
///     offset: u64,
///     text: String,
/// }
///
/// impl ServedItem for Line {
///     type Payload = String;
///
///     fn into_parts(self) -> (Option<String>, EventResult<String>) {
///         (Some(self.offset.to_string()), Ok(Event::data(self.text)))
///     }
/// }
///
/// let (id, item) = Line { offset: 42, text: "hi".into() }.into_parts();
/// assert_eq!(id.as_deref(), Some("42"));
/// assert_eq!(item.unwrap(), Event::data("hi".to_owned()));
/// // Pairs and plain results need nothing:
/// assert_eq!(("a:7", Ok(Event::data(1))).into_parts().0.as_deref(), Some("a:7"));
/// assert_eq!(Ok::<_, beluga_core::Error>(Event::data(1)).into_parts().0, None);
/// ```
pub trait ServedItem {
    /// The payload of the item's events.
    type Payload;

    /// The item's event id, if it has one of its own, and the item.
    fn into_parts(self) -> (Option<String>, EventResult<Self::Payload>);
}

impl<T> ServedItem for EventResult<T> {
    type Payload = T;

    fn into_parts(self) -> (Option<String>, EventResult<T>) {
        (None, self)
    }
}

impl<I: Display, T> ServedItem for (I, EventResult<T>) {
    type Payload = T;

    fn into_parts(self) -> (Option<String>, EventResult<T>) {
        (Some(self.0.to_string()), self.1)
    }
}
