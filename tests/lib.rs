//! Shared helpers for beluga's integration tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts how many times it has been dropped: put one inside a producer to prove the producer
/// was dropped, and when.
#[derive(Debug)]
pub struct DropGuard(Arc<AtomicUsize>);

impl DropGuard {
    /// A guard and the counter it bumps when dropped.
    pub fn new() -> (DropGuard, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        (DropGuard(Arc::clone(&count)), count)
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// How many times the guards sharing `count` were dropped.
pub fn drops(count: &AtomicUsize) -> usize {
    count.load(Ordering::SeqCst)
}

/// How many tasks are alive on the current Tokio runtime.
///
/// # Panics
///
/// Outside a Tokio runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Yields to the runtime until `done()` holds; fails the test after five seconds of real time
/// instead of hanging (also under the paused clock, which does not move `std` time).
///
/// # Panics
///
/// When `done()` still does not hold after five seconds, naming `what` it waited for.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting until {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// Lets every other task on the runtime run until it parks.
pub async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

/// A `tracing` subscriber for tests: records every span (its name, target, parent, declared
/// fields, recorded values, enters and close) and every event, for a test to assert on.
pub mod capture {
    use std::collections::BTreeMap;
    use std::fmt;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::subscriber::DefaultGuard;
    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    /// A recorded field value, in the type `tracing` handed it over.
    #[derive(Clone, Debug, PartialEq)]
    pub enum Value {
        /// A string (`record_str`), or a `Display` / `Debug` value as it formats.
        Str(String),
        /// An unsigned integer.
        U64(u64),
        /// A signed integer.
        I64(i64),
        /// A float.
        F64(f64),
        /// A boolean.
        Bool(bool),
    }

    impl From<&str> for Value {
        fn from(s: &str) -> Self {
            Value::Str(s.to_owned())
        }
    }

    impl From<u64> for Value {
        fn from(n: u64) -> Self {
            Value::U64(n)
        }
    }

    impl From<i64> for Value {
        fn from(n: i64) -> Self {
            Value::I64(n)
        }
    }

    impl From<f64> for Value {
        fn from(x: f64) -> Self {
            Value::F64(x)
        }
    }

    /// One span as the subscriber saw it.
    #[derive(Clone, Debug)]
    pub struct SpanRecord {
        /// Its id, unique while the capture lives.
        pub id: u64,
        /// The span's (static) name.
        pub name: &'static str,
        /// Its target (the module that opened it).
        pub target: String,
        /// Its level.
        pub level: Level,
        /// The parent span's id, if any.
        pub parent: Option<u64>,
        /// Every field the span declares, in order.
        pub declared: Vec<&'static str>,
        /// The fields with a value, at creation or recorded since (the last value of each).
        pub fields: BTreeMap<String, Value>,
        /// Every value given, at creation and by each `record`, in order: a field recorded
        /// twice is here twice (an OpenTelemetry exporter keeps both).
        pub history: Vec<(String, Value)>,
        /// How many times it was entered.
        pub enters: usize,
        /// Whether it is closed.
        pub closed: bool,
    }

    impl SpanRecord {
        /// Every value `field` was given, in order.
        pub fn recorded(&self, field: &str) -> Vec<Value> {
            self.history
                .iter()
                .filter(|(name, _)| name == field)
                .map(|(_, value)| value.clone())
                .collect()
        }

        /// The fields given a value more than once.
        pub fn recorded_twice(&self) -> Vec<String> {
            self.fields
                .keys()
                .filter(|name| self.recorded(name).len() > 1)
                .cloned()
                .collect()
        }
    }

    /// One event as the subscriber saw it.
    #[derive(Clone, Debug)]
    pub struct EventRecord {
        /// The id of the span it happened in, if any.
        pub span: Option<u64>,
        /// Its target.
        pub target: String,
        /// Its level.
        pub level: Level,
        /// Its fields, `message` included.
        pub fields: BTreeMap<String, Value>,
    }

    #[derive(Default)]
    struct Seen {
        spans: Vec<SpanRecord>,
        events: Vec<EventRecord>,
    }

    /// What the subscriber saw; cheap to clone (shared).
    #[derive(Clone, Default)]
    pub struct Captured {
        seen: Arc<Mutex<Seen>>,
    }

    impl fmt::Debug for Captured {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Captured")
                .field("spans", &self.spans())
                .finish_non_exhaustive()
        }
    }

    impl Captured {
        fn seen(&self) -> MutexGuard<'_, Seen> {
            self.seen.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Every span so far, in the order they opened.
        pub fn spans(&self) -> Vec<SpanRecord> {
            self.seen().spans.clone()
        }

        /// The spans named `name`.
        pub fn spans_named(&self, name: &str) -> Vec<SpanRecord> {
            self.spans()
                .into_iter()
                .filter(|s| s.name == name)
                .collect()
        }

        /// The one span named `name`.
        ///
        /// # Panics
        ///
        /// Unless there is exactly one.
        pub fn span(&self, name: &str) -> SpanRecord {
            let mut found = self.spans_named(name);
            assert_eq!(found.len(), 1, "spans named {name}: {:?}", self.spans());
            found.remove(0)
        }

        /// Every event so far, in order.
        pub fn events(&self) -> Vec<EventRecord> {
            self.seen().events.clone()
        }

        fn with_span(&self, id: &Id, f: impl FnOnce(&mut SpanRecord)) {
            let mut seen = self.seen();
            if let Some(span) = seen.spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
                f(span);
            }
        }
    }

    /// Collects a span's or an event's values: the last of each field, and every one in order.
    struct Fields<'a> {
        last: &'a mut BTreeMap<String, Value>,
        history: Option<&'a mut Vec<(String, Value)>>,
    }

    impl Fields<'_> {
        fn put(&mut self, field: &Field, value: Value) {
            if let Some(history) = &mut self.history {
                history.push((field.name().to_owned(), value.clone()));
            }
            self.last.insert(field.name().to_owned(), value);
        }
    }

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.put(field, Value::Str(value.to_owned()));
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            self.put(field, Value::U64(value));
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.put(field, Value::I64(value));
        }
        fn record_f64(&mut self, field: &Field, value: f64) {
            self.put(field, Value::F64(value));
        }
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.put(field, Value::Bool(value));
        }
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.put(field, Value::Str(format!("{value:?}")));
        }
    }

    impl<S> Layer<S> for Captured
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            let meta = attrs.metadata();
            let parent = ctx
                .span(id)
                .and_then(|span| span.parent())
                .map(|parent| parent.id().into_u64());
            let mut fields = BTreeMap::new();
            let mut history = Vec::new();
            attrs.record(&mut Fields {
                last: &mut fields,
                history: Some(&mut history),
            });
            self.seen().spans.push(SpanRecord {
                id: id.into_u64(),
                name: meta.name(),
                target: meta.target().to_owned(),
                level: *meta.level(),
                parent,
                declared: meta.fields().iter().map(|f| f.name()).collect(),
                fields,
                history,
                enters: 0,
                closed: false,
            });
        }

        fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
            self.with_span(id, |span| {
                values.record(&mut Fields {
                    last: &mut span.fields,
                    history: Some(&mut span.history),
                });
            });
        }

        fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
            self.with_span(id, |span| span.enters += 1);
        }

        fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
            self.with_span(&id, |span| span.closed = true);
        }

        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            let mut fields = BTreeMap::new();
            event.record(&mut Fields {
                last: &mut fields,
                history: None,
            });
            let span = ctx.event_span(event).map(|span| span.id().into_u64());
            self.seen().events.push(EventRecord {
                span,
                target: event.metadata().target().to_owned(),
                level: *event.metadata().level(),
                fields,
            });
        }
    }

    /// Installs a capturing subscriber as this thread's default until the guard is dropped
    /// (a `current_thread` runtime's tasks run on it).
    pub fn capture() -> (Captured, DefaultGuard) {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(captured.clone());
        let guard = tracing::subscriber::set_default(subscriber);
        (captured, guard)
    }
}
