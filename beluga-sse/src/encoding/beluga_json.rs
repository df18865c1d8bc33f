//! [`BelugaJson`]: every event in beluga's own JSON shape.

use beluga_core::{Error, ErrorCode, Event};
use serde::Serialize;

use crate::encoding::Encoding;
use crate::frame::Frame;

/// Beluga's own JSON shape, what [`client::read`](crate::client) reads back.
///
/// * Each event is one unnamed frame whose data is the event's serde form (`beluga-core`'s
///   `serde` feature): `{"type":"data","payload":…}`, `{"type":"done",…}`, a reported error as
///   `{"type":"error","error":{"code":…}}`, metadata (token counts, trace ids) under `"meta"`.
///   A `done` event is the last frame.
/// * A terminal error is one frame named `error` whose data is the error's serde form,
///   `{"code":"rate_limit","op":…,"message":…}`, with its causes under `"source"`.
/// * A stream that ends without either ends with a frame named `end` whose data is `{}`.
///
/// In a browser, `onmessage` receives the events, and
/// `addEventListener("error", e => e.data && …)` the terminal error (the same listener also
/// fires on connection errors, with no `data`).
///
/// ```
/// use beluga_core::{Error, ErrorCode, Event};
/// use beluga_sse::{BelugaJson, Encoding, Frame};
///
/// let mut frames = Vec::new();
/// BelugaJson.event(&Event::data("Hel"), &mut frames).unwrap();
/// BelugaJson.event(&Event::<&str>::done(), &mut frames).unwrap();
/// assert_eq!(frames, [
///     Frame::message(r#"{"type":"data","payload":"Hel"}"#),
///     Frame::message(r#"{"type":"done"}"#),
/// ]);
///
/// frames.clear();
/// let err = Error::new(ErrorCode::RateLimit, "slow down").with_op("llm");
/// Encoding::<&str>::error(&mut BelugaJson, &err, &mut frames);
/// assert_eq!(
///     frames,
///     [Frame::named("error", r#"{"code":"rate_limit","op":"llm","message":"slow down"}"#)],
/// );
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct BelugaJson;

impl<T: Serialize> Encoding<T> for BelugaJson {
    fn event(&mut self, event: &Event<T>, out: &mut Vec<Frame>) -> Result<(), Error> {
        let data = serde_json::to_string(event).map_err(|err| {
            Error::new(
                ErrorCode::Internal,
                "the event's payload does not serialize to JSON",
            )
            .with_op("sse.encode")
            .with_source(err)
        })?;
        out.push(Frame::message(data));
        Ok(())
    }

    fn error(&mut self, error: &Error, out: &mut Vec<Frame>) {
        out.push(Frame::named("error", error_json(error)));
    }

    fn cut(&mut self, out: &mut Vec<Frame>) {
        out.push(Frame::named("end", "{}"));
    }
}

/// The serde form of `error`. Serializing an `Error` cannot fail (its shape is strings and
/// nested maps); the fallback keeps the code should that ever change.
pub(crate) fn error_json(error: &Error) -> String {
    serde_json::to_string(error).unwrap_or_else(|_| {
        format!(
            r#"{{"code":"{}","message":"the error does not serialize"}}"#,
            error.code()
        )
    })
}
