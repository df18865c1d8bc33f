//! [`LastEventId`]: the `Last-Event-ID` request header, as an axum extractor.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The `Last-Event-ID` request header: the id of the last event a reconnecting client saw.
///
/// `None` when the request has no such header: a new request. A header that is present but
/// not valid UTF-8 is kept (lossily decoded), so that [`Replay::resume`](crate::server::Replay::resume)
/// refuses it with a clear error instead of starting a new stream.
///
/// ```
/// use axum::extract::FromRequestParts;
/// use axum::http::Request;
/// use beluga_sse::server::LastEventId;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (mut parts, ()) = Request::builder()
///     .header("last-event-id", "abc:4")
///     .body(())
///     .unwrap()
///     .into_parts();
/// let LastEventId(id) = LastEventId::from_request_parts(&mut parts, &()).await.unwrap();
/// assert_eq!(id.as_deref(), Some("abc:4"));
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastEventId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(LastEventId(parts.headers.get("last-event-id").map(
            |value| String::from_utf8_lossy(value.as_bytes()).into_owned(),
        )))
    }
}
