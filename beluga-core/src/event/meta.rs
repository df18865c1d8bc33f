//! Event metadata ([`Meta`]): trace ids, token counts, cost hints, one pointer wide and no
//! allocation while empty.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A metadata value: a string, a number or a flag.
///
/// ```
/// use beluga_core::MetaValue;
/// assert_eq!(MetaValue::from(3_u64).as_u64(), Some(3));
/// assert_eq!(MetaValue::from("x").as_str(), Some("x"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// A flag.
    Bool(bool),
    /// A negative integer. [`Meta::insert`] stores non-negative integers as [`MetaValue::U64`].
    I64(i64),
    /// An unsigned integer (token counts).
    U64(u64),
    /// A floating-point number (cost hints).
    F64(f64),
    /// A string (trace ids, provider names).
    Str(String),
}

impl MetaValue {
    /// The string, if this is one.
    ///
    /// ```
    /// use beluga_core::MetaValue;
    /// assert_eq!(MetaValue::Bool(true).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a `u64`, if it is a non-negative integer.
    ///
    /// ```
    /// use beluga_core::MetaValue;
    /// assert_eq!(MetaValue::I64(5).as_u64(), Some(5));
    /// assert_eq!(MetaValue::I64(-5).as_u64(), None);
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U64(n) => Some(n),
            MetaValue::I64(n) => u64::try_from(n).ok(),
            _ => None,
        }
    }

    /// The value as an `i64`, if it is an integer that fits.
    ///
    /// ```
    /// use beluga_core::MetaValue;
    /// assert_eq!(MetaValue::from(-3).as_i64(), Some(-3));
    /// assert_eq!(MetaValue::from(u64::MAX).as_i64(), None);
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::I64(n) => Some(n),
            MetaValue::U64(n) => i64::try_from(n).ok(),
            _ => None,
        }
    }

    /// The value as an `f64`, if it is a number.
    ///
    /// ```
    /// use beluga_core::MetaValue;
    /// assert_eq!(MetaValue::F64(0.5).as_f64(), Some(0.5));
    /// ```
    #[allow(
        clippy::cast_precision_loss,
        reason = "a metadata hint, not an exact amount"
    )]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F64(n) => Some(n),
            MetaValue::U64(n) => Some(n as f64),
            MetaValue::I64(n) => Some(n as f64),
            _ => None,
        }
    }

    /// The flag, if this is one.
    ///
    /// ```
    /// use beluga_core::MetaValue;
    /// assert_eq!(MetaValue::from(true).as_bool(), Some(true));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }
}

macro_rules! meta_from {
    ($($ty:ty => $variant:ident as $as:ty),* $(,)?) => {$(
        impl From<$ty> for MetaValue {
            fn from(v: $ty) -> Self {
                MetaValue::$variant(<$as>::from(v))
            }
        }
    )*};
}

meta_from! {
    bool => Bool as bool,
    i8 => I64 as i64,
    i16 => I64 as i64,
    i32 => I64 as i64,
    u8 => U64 as u64,
    u16 => U64 as u64,
    i64 => I64 as i64,
    u32 => U64 as u64,
    u64 => U64 as u64,
    f32 => F64 as f64,
    f64 => F64 as f64,
    String => Str as String,
    &str => Str as String,
}

impl From<usize> for MetaValue {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "usize is at most 64 bits on every target Rust supports"
    )]
    fn from(v: usize) -> Self {
        MetaValue::U64(v as u64)
    }
}

/// Event metadata: trace ids, token counts, cost hints, and any other observational key.
///
/// Empty metadata is a null pointer: no allocation until the first entry is inserted. Keys are
/// kept sorted.
///
/// ```
/// use beluga_core::Meta;
///
/// let mut meta = Meta::new();
/// assert!(meta.is_empty());
/// meta.insert(Meta::TRACE_ID, "t-1");
/// meta.insert("retries", 2_u64);
/// assert_eq!(meta.trace_id(), Some("t-1"));
/// assert_eq!(meta.get("retries").and_then(|v| v.as_u64()), Some(2));
/// assert_eq!(std::mem::size_of::<Meta>(), std::mem::size_of::<usize>());
/// ```
#[derive(Default, PartialEq)]
pub struct Meta {
    #[allow(
        clippy::box_collection,
        reason = "the box keeps `Meta` one pointer wide, so `Event<u64>` stays at 24 bytes"
    )]
    entries: Option<Box<BTreeMap<Cow<'static, str>, MetaValue>>>,
}

impl Meta {
    /// Key of the trace id.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::TRACE_ID, "trace_id");
    /// ```
    pub const TRACE_ID: &'static str = "trace_id";
    /// Key of the span id.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::SPAN_ID, "span_id");
    /// ```
    pub const SPAN_ID: &'static str = "span_id";
    /// Key of the prompt token count.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::INPUT_TOKENS, "input_tokens");
    /// ```
    pub const INPUT_TOKENS: &'static str = "input_tokens";
    /// Key of the completion token count.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::OUTPUT_TOKENS, "output_tokens");
    /// ```
    pub const OUTPUT_TOKENS: &'static str = "output_tokens";
    /// Key of the cost hint, in US dollars.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::COST_USD, "cost_usd");
    /// ```
    pub const COST_USD: &'static str = "cost_usd";

    /// Empty metadata; allocates nothing.
    ///
    /// ```
    /// assert!(beluga_core::Meta::new().is_empty());
    /// ```
    #[inline]
    pub const fn new() -> Self {
        Meta { entries: None }
    }

    /// Whether there are no entries.
    ///
    /// ```
    /// assert!(beluga_core::Meta::new().is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.as_ref().is_none_or(|m| m.is_empty())
    }

    /// How many entries there are.
    ///
    /// ```
    /// assert_eq!(beluga_core::Meta::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |m| m.len())
    }

    /// The value for `key`.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// let mut meta = Meta::new();
    /// meta.insert("k", 1_u64);
    /// assert!(meta.get("k").is_some());
    /// assert!(meta.get("other").is_none());
    /// ```
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.entries.as_ref()?.get(key)
    }

    /// Sets `key` to `value`, returning the previous value.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// let mut meta = Meta::new();
    /// assert!(meta.insert("k", 1_u64).is_none());
    /// assert_eq!(meta.insert("k", 2_u64).and_then(|v| v.as_u64()), Some(1));
    /// ```
    pub fn insert(
        &mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<MetaValue>,
    ) -> Option<MetaValue> {
        let value = match value.into() {
            // One spelling per number, so that equal values compare equal (and survive JSON).
            MetaValue::I64(n) if n >= 0 => MetaValue::U64(n.unsigned_abs()),
            other => other,
        };
        self.entries
            .get_or_insert_with(Box::default)
            .insert(key.into(), value)
    }

    /// Removes `key`, returning its value.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// let mut meta = Meta::new();
    /// meta.insert("k", true);
    /// assert_eq!(meta.remove("k"), Some(true.into()));
    /// assert!(meta.is_empty());
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<MetaValue> {
        let entries = self.entries.as_mut()?;
        let removed = entries.remove(key);
        if entries.is_empty() {
            self.entries = None;
        }
        removed
    }

    /// Iterates over the entries in key order.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// let mut meta = Meta::new();
    /// meta.insert("b", 2_u64);
    /// meta.insert("a", 1_u64);
    /// let keys: Vec<&str> = meta.iter().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.entries
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| (k.as_ref(), v))
    }

    /// The trace id, if set.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// assert_eq!(Meta::new().trace_id(), None);
    /// ```
    pub fn trace_id(&self) -> Option<&str> {
        self.get(Self::TRACE_ID)?.as_str()
    }

    /// The span id, if set.
    ///
    /// ```
    /// use beluga_core::Meta;
    /// let mut meta = Meta::new();
    /// meta.insert(Meta::SPAN_ID, "s-1");
    /// assert_eq!(meta.span_id(), Some("s-1"));
    /// ```
    pub fn span_id(&self) -> Option<&str> {
        self.get(Self::SPAN_ID)?.as_str()
    }

    /// The prompt token count, if set.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert_eq!(Event::data(()).with_tokens(5, 1).meta().input_tokens(), Some(5));
    /// ```
    pub fn input_tokens(&self) -> Option<u64> {
        self.get(Self::INPUT_TOKENS)?.as_u64()
    }

    /// The completion token count, if set.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert_eq!(Event::data(()).with_tokens(5, 1).meta().output_tokens(), Some(1));
    /// ```
    pub fn output_tokens(&self) -> Option<u64> {
        self.get(Self::OUTPUT_TOKENS)?.as_u64()
    }

    /// The cost hint in US dollars, if set.
    ///
    /// ```
    /// use beluga_core::Event;
    /// assert_eq!(Event::data(()).with_cost_usd(0.5).meta().cost_usd(), Some(0.5));
    /// ```
    pub fn cost_usd(&self) -> Option<f64> {
        self.get(Self::COST_USD)?.as_f64()
    }
}

impl Drop for Meta {
    /// Empty metadata is the common case: keep its drop a null check the caller can inline,
    /// and the map's teardown out of line.
    #[inline]
    fn drop(&mut self) {
        #[cold]
        #[inline(never)]
        #[allow(clippy::box_collection, reason = "the box is what `Meta` holds")]
        fn drop_entries(entries: Box<BTreeMap<Cow<'static, str>, MetaValue>>) {
            drop(entries);
        }
        if let Some(entries) = self.entries.take() {
            drop_entries(entries);
        }
    }
}

impl Clone for Meta {
    /// As for drop: cloning empty metadata is a null check the caller can inline, and copying a
    /// map is out of line. (`fan_out` clones every event once per extra consumer.)
    #[inline]
    fn clone(&self) -> Self {
        #[inline(never)]
        #[allow(
            clippy::box_collection,
            clippy::unnecessary_box_returns,
            reason = "the box is what `Meta` holds"
        )]
        fn clone_entries(
            entries: &BTreeMap<Cow<'static, str>, MetaValue>,
        ) -> Box<BTreeMap<Cow<'static, str>, MetaValue>> {
            Box::new(entries.clone())
        }
        Meta {
            entries: self.entries.as_deref().map(clone_entries),
        }
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
