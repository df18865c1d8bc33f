//! How items travel: one JetStream message per batch of items (a single item when only one was
//! ready), its body beluga-core's serde form of each event or of the terminal error, one per
//! line, and headers that carry what the body cannot.
//!
//! * `Beluga-Item`: the kind of the message's last item: `event` (an [`Event`]'s JSON), `error`
//!   (an [`Error`]'s JSON: the terminal `Err` item) or `end` (`{}`: the producer's stream ended
//!   without a terminal item, as a local stream may, and so does the remote one). Every item
//!   before the last is an event: only a terminal item can be something else, and it is last.
//!   Bodies and names are those of beluga-sse's JSON encoding (an unnamed frame, `error`,
//!   `end`), so an SSE server can forward each line as one frame.
//! * `Beluga-Index`: the position in its stream of the message's first item, from 0. The
//!   consumer checks that each message follows the one before, so an item lost to an age or
//!   count limit is reported, never skipped silently.
//! * `Beluga-Count`: how many items the message holds, when more than one; the body is then
//!   their JSON forms joined by `\n` (JSON text never holds a raw line break). A message
//!   without it holds one item, its body that item's JSON: the unbatched form.
//! * `Nats-Msg-Id`: `<stream id>:<publish id>:<index of the first item>`, so a publish retried
//!   after a lost acknowledgement is stored once (JetStream's duplicate window), and a second
//!   publisher of the same stream id is not mistaken for a retry. A retried message is resent
//!   whole, with the same items, so its id always names the same content.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use async_nats::HeaderMap;
use beluga_core::{Error, ErrorCode, Event};

pub(crate) const ITEM: &str = "Beluga-Item";
pub(crate) const INDEX: &str = "Beluga-Index";
pub(crate) const COUNT: &str = "Beluga-Count";

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

/// The headers of a message holding `count` items from `first` on, the last of kind `last`.
pub(crate) fn headers(msg_id_prefix: &str, first: u64, count: usize, last: ItemKind) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ITEM, last.as_str());
    headers.insert(INDEX, first.to_string().as_str());
    if count > 1 {
        headers.insert(COUNT, count.to_string().as_str());
    }
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("{msg_id_prefix}:{first}").as_str(),
    );
    headers
}

/// The body of a message holding these items' bodies: the one body itself, or the bodies
/// joined by `\n`.
pub(crate) fn body(items: &[Bytes]) -> Bytes {
    match items {
        [one] => one.clone(),
        many => {
            let len = many
                .iter()
                .map(|b| b.len() + 1)
                .sum::<usize>()
                .saturating_sub(1);
            let mut body = Vec::with_capacity(len);
            for (i, item) in many.iter().enumerate() {
                if i > 0 {
                    body.push(b'\n');
                }
                body.extend_from_slice(item);
            }
            body.into()
        }
    }
}

fn bad_message(what: &str) -> Error {
    Error::new(
        ErrorCode::Internal,
        format!("a message of this stream is not a beluga item: {what}"),
    )
    .with_op("nats.subscribe")
}

/// What a message's headers say about the items it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The stream index of its first item.
    pub(crate) first: u64,
    /// How many items it holds (at least 1).
    pub(crate) count: u32,
    /// The kind of its last item; the others are events.
    pub(crate) last: ItemKind,
}

impl Header {
    /// The kind of the item at `offset` in the message.
    pub(crate) fn kind_at(&self, offset: u32) -> ItemKind {
        if offset + 1 == self.count {
            self.last
        } else {
            ItemKind::Event
        }
    }
}

/// Reads a message's headers.
pub(crate) fn header(headers: Option<&HeaderMap>) -> Result<Header, Error> {
    let first = headers
        .and_then(|h| h.get(INDEX))
        .ok_or_else(|| bad_message("no `Beluga-Index` header"))?
        .as_str()
        .parse()
        .map_err(|_| bad_message("a `Beluga-Index` header that is not a number"))?;
    let value = headers
        .and_then(|h| h.get(ITEM))
        .ok_or_else(|| bad_message("no `Beluga-Item` header"))?;
    let last = ItemKind::parse(value.as_str())
        .ok_or_else(|| bad_message("a `Beluga-Item` header other than `event`, `error`, `end`"))?;
    let count = match headers.and_then(|h| h.get(COUNT)) {
        None => 1,
        Some(count) => count
            .as_str()
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| bad_message("a `Beluga-Count` header that is not a count from 1"))?,
    };
    Ok(Header { first, count, last })
}

/// The body of the item at `offset` in a message of `count` items, and where the next one
/// starts: items are separated by `\n`, and the last one runs to the end of the body.
pub(crate) fn item_at(
    payload: &[u8],
    start: usize,
    offset: u32,
    count: u32,
) -> Result<(&[u8], usize), Error> {
    let rest = payload.get(start..).unwrap_or_default();
    let newline = rest.iter().position(|&b| b == b'\n');
    match (newline, offset + 1 == count) {
        (None, true) => Ok((rest, payload.len())),
        (Some(at), false) => Ok((&rest[..at], start + at + 1)),
        (None, false) => Err(bad_message(
            "fewer items in the body than its `Beluga-Count` header says",
        )),
        (Some(_), true) => Err(bad_message(
            "more items in the body than its `Beluga-Count` header says",
        )),
    }
}

/// Decodes the body of the item at `index` of the stream, of kind `kind` (`None` for an `end`
/// marker).
pub(crate) fn decode<T: DeserializeOwned>(
    kind: ItemKind,
    index: u64,
    body: &[u8],
) -> Result<Option<Result<Event<T>, Error>>, Error> {
    let item = match kind {
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

    type Item<T> = Option<Result<Event<T>, Error>>;

    /// The items of a message, read back as the consumer does.
    fn read_back<T: DeserializeOwned>(
        h: &HeaderMap,
        payload: &[u8],
    ) -> Result<Vec<Item<T>>, Error> {
        let header = header(Some(h))?;
        let mut start = 0;
        let mut items = Vec::new();
        for offset in 0..header.count {
            let (body, next) = item_at(payload, start, offset, header.count)?;
            start = next;
            let index = header.first + u64::from(offset);
            items.push(decode(header.kind_at(offset), index, body)?);
        }
        Ok(items)
    }

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
            let h = headers("req-1", i as u64, 1, enc.kind);
            assert!(h.get(COUNT).is_none(), "one item: the unbatched form");
            assert_eq!(header(Some(&h)).unwrap().first, i as u64);
            assert_eq!(
                read_back::<String>(&h, &enc.body).unwrap(),
                std::slice::from_ref(item)
            );
        }
        assert!(!encode(items[0].as_ref()).terminal);
        assert!(items[1..].iter().all(|i| encode(i.as_ref()).terminal));
    }

    #[test]
    fn a_batch_is_its_items_one_per_line_the_last_of_any_kind() {
        let text = "line\nbreak \"quoted\"".to_owned();
        for last in [
            Some(Ok(Event::done())),
            Some(Err(Error::new(ErrorCode::Auth, "no key"))),
            None,
            Some(Ok(Event::data("more".to_owned()))),
        ] {
            let mut items: Vec<Option<Result<Event<String>, Error>>> = (0..5)
                .map(|i| Some(Ok(Event::data(format!("{text}{i}")))))
                .collect();
            items.push(last);
            let encoded: Vec<Encoded> = items.iter().map(|i| encode(i.as_ref())).collect();
            let bodies: Vec<Bytes> = encoded.iter().map(|e| e.body.clone()).collect();
            let payload = body(&bodies);
            assert_eq!(payload.split(|&b| b == b'\n').count(), 6);
            let h = headers("req-1", 7, items.len(), encoded.last().unwrap().kind);
            assert_eq!(h.get(COUNT).unwrap().as_str(), "6");
            assert_eq!(h.get(INDEX).unwrap().as_str(), "7");
            assert_eq!(
                h.get(async_nats::header::NATS_MESSAGE_ID).unwrap().as_str(),
                "req-1:7"
            );
            assert_eq!(read_back::<String>(&h, &payload).unwrap(), items);
        }
    }

    #[test]
    fn a_batch_whose_body_and_count_disagree_is_refused() {
        let bodies = vec![Bytes::from_static(b"{\"type\":\"data\",\"payload\":1}"); 3];
        let payload = body(&bodies);
        for count in ["2", "4", "0", "x"] {
            let mut h = headers("req-1", 0, 3, ItemKind::Event);
            h.insert(COUNT, count);
            let err = read_back::<u32>(&h, &payload).unwrap_err();
            assert_eq!(err.code(), ErrorCode::Internal, "{count}: {err}");
            assert!(err.message().contains("Beluga-Count"), "{err}");
        }
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
        let err = header(None).unwrap_err();
        assert!(err.message().contains("Beluga-Index"), "{err}");
        let mut h = HeaderMap::new();
        h.insert(INDEX, "0");
        h.insert(ITEM, "event");
        let err = read_back::<u32>(&h, b"{\"type\":\"data\",\"payload\":\"x\"}").unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        h.insert(ITEM, "batch");
        assert!(
            header(Some(&h))
                .unwrap_err()
                .message()
                .contains("Beluga-Item")
        );
    }
}
