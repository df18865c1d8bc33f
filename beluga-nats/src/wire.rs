//! How items travel: one JetStream message per item, its body beluga-core's serde form of the
//! event or of the terminal error, and three headers that carry what the body cannot.
//!
//! * `Beluga-Item`: `event` (the body is an [`Event`]'s JSON), `error` (the body is an
//!   [`Error`]'s JSON: the terminal `Err` item) or `end` (the body is `{}`: the producer's
//!   stream ended without a terminal item, as a local stream may, and so does the remote one).
//!   Bodies and names are those of beluga-sse's JSON encoding (an unnamed frame, `error`,
//!   `end`), so an SSE server can forward a message as one frame.
//! * `Beluga-Index`: the item's position in its stream, from 0. The consumer checks that each
//!   item follows the one before, so an item lost to an age or count limit is reported, never
//!   skipped silently.
//! * `Nats-Msg-Id`: `<stream id>:<publish id>:<index>`, so a publish retried after a lost
//!   acknowledgement is stored once (JetStream's duplicate window), and a second publisher of
//!   the same stream id is not mistaken for a retry.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use async_nats::HeaderMap;
use beluga_core::{Error, ErrorCode, Event};

pub(crate) const ITEM: &str = "Beluga-Item";
pub(crate) const INDEX: &str = "Beluga-Index";

/// What a message carries, from its `Beluga-Item` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemKind {
    Event,
    Error,
    End,
}

impl ItemKind {
    fn as_str(self) -> &'static str {
        match self {
            ItemKind::Event => "event",
            ItemKind::Error => "error",
            ItemKind::End => "end",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "event" => Some(ItemKind::Event),
            "error" => Some(ItemKind::Error),
            "end" => Some(ItemKind::End),
            _ => None,
        }
    }
}

/// One item ready to publish: its body, its kind, and whether it ends the stream.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub(crate) kind: ItemKind,
    pub(crate) body: Bytes,
    pub(crate) terminal: bool,
    /// The error stored in place of an event that could not be serialized.
    pub(crate) unsendable: Option<Error>,
}

/// Encodes a producer's item. An event whose payload cannot be serialized becomes a terminal
/// error: the consumer must not see a stream that silently lost an item.
pub(crate) fn encode<T: Serialize>(item: Option<&Result<Event<T>, Error>>) -> Encoded {
    match item {
        None => Encoded {
            kind: ItemKind::End,
            body: Bytes::from_static(b"{}"),
            terminal: true,
            unsendable: None,
        },
        Some(Ok(event)) => match serde_json::to_vec(event) {
            Ok(body) => Encoded {
                kind: ItemKind::Event,
                body: body.into(),
                terminal: event.is_done(),
                unsendable: None,
            },
            Err(err) => {
                let err = Error::new(
                    ErrorCode::Internal,
                    "the event's payload does not serialize to JSON",
                )
                .with_op("nats.publish")
                .with_source(err);
                let mut encoded = encode_error(&err);
                encoded.unsendable = Some(err);
                encoded
            }
        },
        Some(Err(err)) => encode_error(err),
    }
}

pub(crate) fn encode_error(err: &Error) -> Encoded {
    // An `Error` always serializes: its representation is strings and codes.
    let body = serde_json::to_vec(err).unwrap_or_default();
    Encoded {
        kind: ItemKind::Error,
        body: body.into(),
        terminal: true,
        unsendable: None,
    }
}

pub(crate) fn headers(msg_id_prefix: &str, index: u64, kind: ItemKind) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ITEM, kind.as_str());
    headers.insert(INDEX, index.to_string().as_str());
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("{msg_id_prefix}:{index}").as_str(),
    );
    headers
}

fn bad_message(what: &str) -> Error {
    Error::new(
        ErrorCode::Internal,
        format!("a message of this stream is not a beluga item: {what}"),
    )
    .with_op("nats.subscribe")
}

/// Reads a message's index from its headers.
pub(crate) fn index(headers: Option<&HeaderMap>) -> Result<u64, Error> {
    headers
        .and_then(|h| h.get(INDEX))
        .ok_or_else(|| bad_message("no `Beluga-Index` header"))?
        .as_str()
        .parse()
        .map_err(|_| bad_message("a `Beluga-Index` header that is not a number"))
}

/// Reads a message's kind from its headers.
pub(crate) fn kind(headers: Option<&HeaderMap>) -> Result<ItemKind, Error> {
    let value = headers
        .and_then(|h| h.get(ITEM))
        .ok_or_else(|| bad_message("no `Beluga-Item` header"))?;
    ItemKind::parse(value.as_str())
        .ok_or_else(|| bad_message("a `Beluga-Item` header other than `event`, `error`, `end`"))
}

/// Decodes a message into the item it carries (`None` for an `end` marker).
pub(crate) fn decode<T: DeserializeOwned>(
    headers: Option<&HeaderMap>,
    body: &[u8],
) -> Result<Option<Result<Event<T>, Error>>, Error> {
    let index = index(headers)?;
    let item = match kind(headers)? {
        ItemKind::End => None,
        ItemKind::Event => Some(Ok(serde_json::from_slice::<Event<T>>(body).map_err(
            |e| {
                Error::new(
                    ErrorCode::InvalidInput,
                    format!("event {index} does not decode as this stream's event type"),
                )
                .with_op("nats.subscribe")
                .with_source(e)
            },
        )?)),
        ItemKind::Error => Some(Err(serde_json::from_slice::<Error>(body).map_err(|e| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("the terminal error (item {index}) does not decode"),
            )
            .with_op("nats.subscribe")
            .with_source(e)
        })?)),
    };
    Ok(item)
}

/// Checks a stream id: one NATS subject token (no `.`, `*`, `>` or whitespace), at most 200
/// bytes.
pub(crate) fn check_id(id: &str) -> Result<(), Error> {
    let bad = id.is_empty()
        || id.len() > 200
        || id
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "stream id {id:?} is not one NATS subject token: use 1 to 200 bytes without \
                 `.`, `*`, `>` or whitespace"
            ),
        )
        .with_op("nats"));
    }
    Ok(())
}

/// Checks a subject prefix: tokens separated by `.`, no wildcards or whitespace.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), Error> {
    let bad = prefix.is_empty()
        || prefix.split('.').any(|t| {
            t.is_empty()
                || t.chars()
                    .any(|c| c == '*' || c == '>' || c.is_whitespace() || c.is_control())
        });
    if bad {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("subject prefix {prefix:?} must be dot-separated tokens without wildcards"),
        )
        .with_op("nats"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_headers_and_body() {
        let items: Vec<Option<Result<Event<String>, Error>>> = vec![
            Some(Ok(Event::data("hi".to_owned()).with_trace_id("t"))),
            Some(Ok(Event::done_with("x".to_owned()))),
            Some(Err(
                Error::new(ErrorCode::RateLimit, "slow down").with_op("llm")
            )),
            None,
        ];
        for (i, item) in items.iter().enumerate() {
            let enc = encode(item.as_ref());
            let h = headers("req-1", i as u64, enc.kind);
            assert_eq!(index(Some(&h)).unwrap(), i as u64);
            assert_eq!(decode::<String>(Some(&h), &enc.body).unwrap(), *item);
        }
        assert!(!encode(items[0].as_ref()).terminal);
        assert!(items[1..].iter().all(|i| encode(i.as_ref()).terminal));
    }

    #[test]
    fn the_body_is_beluga_cores_serde_form() {
        let ev = Event::data(7_u32);
        let enc = encode(Some(&Ok(ev.clone())));
        assert_eq!(enc.body, serde_json::to_vec(&ev).unwrap());
        let err = Error::new(ErrorCode::Auth, "no key");
        let enc = encode::<u32>(Some(&Err(err.clone())));
        assert_eq!(enc.body, serde_json::to_vec(&err).unwrap());
        // beluga-sse's `end` frame carries `{}`.
        assert_eq!(&encode::<u32>(None).body[..], b"{}");
    }

    #[test]
    fn ids_and_prefixes_are_checked() {
        assert!(check_id("req-42_a").is_ok());
        for bad in ["", "a.b", "a*", ">", "a b", &"x".repeat(201)] {
            assert_eq!(check_id(bad).unwrap_err().code(), ErrorCode::InvalidInput);
        }
        assert!(check_prefix("beluga.prod").is_ok());
        for bad in ["", "a..b", "a.*", "a.>", ".a"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn foreign_messages_get_clear_errors() {
        let err = decode::<u32>(None, b"{}").err().unwrap();
        assert!(err.message().contains("Beluga-Index"), "{err}");
        let mut h = HeaderMap::new();
        h.insert(INDEX, "0");
        h.insert(ITEM, "event");
        let err = decode::<u32>(Some(&h), b"{\"type\":\"data\",\"payload\":\"x\"}")
            .err()
            .unwrap();
        assert_eq!(err.code(), ErrorCode::InvalidInput);
    }
}
