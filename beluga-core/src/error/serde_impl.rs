//! Beluga's JSON shape: `{"code":"rate_limit","op":"llm.generate","message":"…","source":{…}}`,
//! plus `"retry_after_ms"` when the error carries a retry delay.
//! A foreign cause is written as `{"message":"…"}` (no code) and read back as an opaque cause
//! that displays the same text.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, ErrorCode, Inner};

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Serialize, Deserialize)]
struct Repr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    op: String,
    #[serde(default)]
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<Box<Repr>>,
}

fn to_repr(err: &(dyn StdError + 'static)) -> Repr {
    let source = err.source().map(|s| Box::new(to_repr(s)));
    if let Some(ours) = err.downcast_ref::<Error>() {
        Repr {
            code: Some(ours.code()),
            op: ours.op().to_owned(),
            message: ours.message().to_owned(),
            // Whole milliseconds, rounded up so that a delay is never shortened on the way.
            retry_after_ms: ours
                .inner
                .retry_after
                .map(|d| u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)),
            source,
        }
    } else {
        Repr {
            code: None,
            op: String::new(),
            message: err.to_string(),
            retry_after_ms: None,
            source,
        }
    }
}

/// A cause that crossed the wire: its text and its own cause, nothing more.
#[derive(Debug)]
struct RemoteCause {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl fmt::Display for RemoteCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for RemoteCause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

fn from_repr(repr: Repr) -> Box<dyn StdError + Send + Sync> {
    let source = repr.source.map(|s| from_repr(*s));
    match repr.code {
        Some(code) => Box::new(Error {
            inner: Arc::new(Inner {
                code,
                op: Cow::Owned(repr.op),
                message: Cow::Owned(repr.message),
                source: source.map(Arc::from),
                retry_after: repr.retry_after_ms.map(Duration::from_millis),
            }),
        }),
        None => Box::new(RemoteCause {
            message: repr.message,
            source,
        }),
    }
}

impl Serialize for Error {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        to_repr(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Error {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = Repr::deserialize(d)?;
        if repr.code.is_none() {
            return Err(serde::de::Error::missing_field("code"));
        }
        Ok(Error::from(from_repr(repr)))
    }
}
