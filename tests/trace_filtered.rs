//! `traced` under a global subscriber that filters its span out: the stream passes through and
//! nothing is recorded. Its own test binary, with one test: `tracing` caches whether a callsite
//! is wanted across threads, so a filter is only reliable where every thread has the same
//! subscriber, as in a program with a global one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use beluga_core::trace::StreamSpan;
use beluga_core::{Context, Error, ErrorCode, Event, EventStreamExt, stream_span};
use beluga_tests::capture::Captured;
use tracing::Span;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

/// Counts the events it is shown.
struct Counting {
    seen: Arc<AtomicUsize>,
}

impl StreamSpan<u32> for Counting {
    fn open(&mut self, ctx: &Context) -> Span {
        stream_span!("counting", ctx)
    }

    fn on_event(&mut self, _span: &Span, _event: &Event<u32>) {
        self.seen.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn a_subscriber_that_filters_the_span_out_sees_nothing_and_the_stream_passes_through() {
    let captured = Captured::default();
    let subscriber =
        tracing_subscriber::registry().with(captured.clone().with_filter(LevelFilter::WARN));
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");

    let seen = Arc::new(AtomicUsize::new(0));
    let items = [
        Ok(Event::data(1_u32)),
        Ok(Event::error(Error::new(ErrorCode::ToolFailed, "x"))),
        Ok(Event::data(2)),
        Err(Error::cancelled()),
    ];
    let traced = futures_util::stream::iter(items.clone())
        .traced_with(
            Counting {
                seen: Arc::clone(&seen),
            },
            &Context::new(),
        )
        .collect_events()
        .await;
    let plain = futures_util::stream::iter(items).collect_events().await;
    assert_eq!(traced.events, plain.events);
    assert_eq!(traced.error, plain.error);
    assert!(captured.spans().is_empty());
    assert!(
        captured.events().is_empty(),
        "no WARN for the error event: the span is off"
    );
    assert_eq!(seen.load(Ordering::Relaxed), 0);

    // A WARN span passes the same filter: the capture works.
    drop(tracing::warn_span!("visible"));
    assert_eq!(captured.spans().len(), 1);
}
