//! Beluga's JSON shape: `{"type":"data","payload":…,"meta":{…}}`. `done` carries `payload`
//! only with a final value, `error` carries `error` instead of `payload`, and `meta` is left
//! out when empty. The shape is a map with optional keys, so it needs a self-describing
//! format (JSON, CBOR, `MessagePack`, ...), not bincode or postcard.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, IntoDeserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;
use crate::event::Event;
use crate::event::kind::{EventKind, EventType};
use crate::event::meta::{Meta, MetaValue};

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

fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
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
