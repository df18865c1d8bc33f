//! What a producer emits ([`IntoEvent`]) and how a value travels to the producer's slot.

use crate::event::Event;

/// What a producer of `T` events emits, with `emit!` in a
/// [`stream_producer`](crate::stream_producer) or [`Emitter::emit`](crate::stream::Emitter::emit)
/// in [`stream::produce`](crate::stream::produce): a payload `T`, sent as [`Event::data`], or a
/// whole `Event<T>`, sent as it is.
///
/// ```
/// use beluga_core::{Event, IntoEvent};
/// assert_eq!(IntoEvent::<u8>::into_event(7), Event::data(7));
/// assert_eq!(Event::tool_call(7).into_event(), Event::tool_call(7));
/// ```
#[diagnostic::on_unimplemented(
    message = "cannot emit `{Self}` from a producer of `{T}` events",
    label = "expected `{T}` or `Event<{T}>`",
    note = "a payload `{T}` is sent as `Event::data(payload)`; an `Event<{T}>` is sent as it is",
    note = "for a `Result`, emit its value and end the stream with its error: `emit!(result?)`",
    note = "a value of type `!` is one whose type was left to inference, which cannot choose \
            between `{T}` and `Event<{T}>`: write the type, like `emit!(text.parse::<{T}>()?)`"
)]
pub trait IntoEvent<T> {
    /// The event this value stands for.
    fn into_event(self) -> Event<T>;

    /// How `emit!` hands the value to its stream: payloads travel without their event.
    #[doc(hidden)]
    fn __into_yielded(self) -> Yielded<T>
    where
        Self: Sized,
    {
        Yielded::Event(self.into_event())
    }
}

#[diagnostic::do_not_recommend]
impl<T> IntoEvent<T> for T {
    #[inline]
    fn into_event(self) -> Event<T> {
        Event::data(self)
    }

    #[inline]
    #[doc(hidden)]
    fn __into_yielded(self) -> Yielded<T> {
        Yielded::Data(self)
    }
}

#[diagnostic::do_not_recommend]
impl<T> IntoEvent<T> for Event<T> {
    #[inline]
    fn into_event(self) -> Event<T> {
        self
    }

    #[inline]
    #[doc(hidden)]
    fn __into_yielded(self) -> Yielded<T> {
        Yielded::Event(self)
    }
}

/// A value on its way to a producer's slot: `emit!` moves a payload without its event, which
/// the stream builds around it when it hands the item out.
#[doc(hidden)]
#[derive(Debug)]
pub enum Yielded<T> {
    /// A payload, sent as a `data` event.
    Data(T),
    /// An event, sent as it is.
    Event(Event<T>),
}
