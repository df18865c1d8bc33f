//! Reading a caught panic's message, for the errors that report a panic in user code.

use std::any::Any;

/// The message a panic was raised with: the `&str` or `String` that `panic!` carries, or `None`
/// for any other payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}
