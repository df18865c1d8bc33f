//! `traced` (the `tracing` feature of `beluga-core`): one span per stream from its first poll to
//! its terminal item, with the request id, the counts, the time to the first item (paused
//! clock), the terminal error's code, and a close when the consumer drops the stream; the
//! producer's own events nest under it; nothing is recorded on a thread without a subscriber.
//! `trace_filtered.rs` has the subscriber that filters the span out.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use beluga_core::trace::{Outcome, StreamSpan};
use beluga_core::{
    Context, Error, ErrorCode, Event, EventResult, EventStreamExt, stream, stream_span,
};
use beluga_tests::capture::{Value, capture};
use futures_util::{Stream, StreamExt};
use tracing::{Level, Span};

/// The fields every traced stream's span declares, in order.
const CORE_FIELDS: [&str; 9] = [
    "beluga.request_id",
    "beluga.session_id",
    "beluga.time_to_first_item_ms",
    "beluga.items",
    "beluga.error_events",
    "beluga.outcome",
    "error.type",
    "otel.status_code",
    "otel.status_description",
];

/// `words` one every `delay`, then `done`; logs an event per word.
fn slow_words(
    ctx: &Context,
    words: &'static [&'static str],
    delay: Duration,
) -> impl Stream<Item = EventResult<String>> + use<> {
    stream::produce(ctx, async move |mut e| {
        for word in words {
            tokio::time::sleep(delay).await;
            tracing::info!(word, "producing");
            e.emit(word.to_string()).await;
        }
        Ok(())
    })
}

fn value(v: impl Into<Value>) -> Value {
    v.into()
}

#[tokio::test(start_paused = true)]
async fn a_stream_has_one_span_from_first_poll_to_done_with_every_field() {
    let (captured, _guard) = capture();
    let ctx = Context::new()
        .with_request_id("req-42")
        .with_session_id("chat-7");
    let stream =
        slow_words(&ctx, &["a", "b", "c"], Duration::from_millis(30)).traced("answer", &ctx);
    let mut stream = pin!(stream);

    tokio::time::sleep(Duration::from_millis(500)).await; // not counted: nothing polled yet
    assert!(captured.spans().is_empty(), "no span before the first poll");

    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        let done = item.as_ref().is_ok_and(Event::is_done);
        items.push(item.unwrap());
        if done {
            // Closed at the terminal item, while the stream itself is still alive.
            assert!(captured.span("stream").closed);
        }
    }
    assert_eq!(items.len(), 4);
    assert!(stream.next().await.is_none());

    let span = captured.span("stream");
    assert_eq!(span.target, "beluga_core::trace");
    assert_eq!(span.level, Level::INFO);
    assert_eq!(span.parent, None);
    let mut declared = CORE_FIELDS.to_vec();
    declared.push("otel.name");
    assert_eq!(span.declared, declared);
    let expected = [
        ("otel.name", value("answer")),
        ("beluga.request_id", value("req-42")),
        ("beluga.session_id", value("chat-7")),
        ("beluga.time_to_first_item_ms", value(30.0)),
        ("beluga.items", value(4_i64)),
        ("beluga.error_events", value(0_i64)),
        ("beluga.outcome", value("done")),
    ];
    assert_eq!(
        span.fields,
        expected
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        "no error fields on a stream that ended with done"
    );
    assert!(span.recorded_twice().is_empty(), "{:?}", span.history);
    assert!(span.closed);
    assert!(span.enters >= 4, "every poll runs inside the span");

    // The producer's events nest under the span.
    let produced: Vec<_> = captured
        .events()
        .into_iter()
        .filter(|e| e.fields.get("message") == Some(&value("producing")))
        .collect();
    assert_eq!(produced.len(), 3);
    assert!(produced.iter().all(|e| e.span == Some(span.id)));
}

#[tokio::test]
async fn the_parent_is_the_span_current_where_traced_is_called() {
    let (captured, _guard) = capture();
    let ctx = Context::new();
    let request = tracing::info_span!("request");
    let stream = request.in_scope(|| stream::iter([1, 2]).traced("inner", &ctx));
    // Polled outside `request`, inside another span.
    let elsewhere = tracing::info_span!("elsewhere");
    let collected = {
        let _entered = elsewhere.enter();
        stream.collect_events().await
    };
    assert_eq!(collected.events.len(), 3);
    let (request, stream_span) = (captured.span("request"), captured.span("stream"));
    assert_eq!(stream_span.parent, Some(request.id));

    // With no span current at the call, the one current at the first poll is the parent.
    let stream = stream::iter([1]).traced("late", &ctx);
    let poller = tracing::info_span!("poller");
    {
        let _entered = poller.enter();
        stream.collect_events().await;
    }
    let late = captured
        .spans_named("stream")
        .into_iter()
        .find(|s| s.fields.get("otel.name") == Some(&value("late")))
        .unwrap();
    assert_eq!(late.parent, Some(captured.span("poller").id));
}

#[tokio::test(start_paused = true)]
async fn a_terminal_error_records_its_code_and_the_status() {
    let (captured, _guard) = capture();
    let ctx = Context::new().with_request_id("req-err");
    let failing = stream::produce(&ctx, async |mut e| {
        tokio::time::sleep(Duration::from_millis(5)).await;
        e.emit(1_u32).await;
        Err(Error::new(ErrorCode::RateLimit, "slow down").with_op("search"))
    });
    let collected = failing.traced("search", &ctx).collect_events().await;
    assert_eq!(collected.events.len(), 1);
    assert_eq!(collected.error.unwrap().code(), ErrorCode::RateLimit);

    let span = captured.span("stream");
    let fields = &span.fields;
    assert_eq!(fields["error.type"], value("rate_limit"));
    assert_eq!(fields["otel.status_code"], value("error"));
    assert_eq!(
        fields["otel.status_description"],
        value("search [rate_limit]: slow down")
    );
    assert_eq!(fields["beluga.outcome"], value("error"));
    assert_eq!(fields["beluga.items"], value(2_i64));
    assert_eq!(fields["beluga.time_to_first_item_ms"], value(5.0));
    assert_eq!(fields["beluga.request_id"], value("req-err"));
    assert!(span.recorded_twice().is_empty(), "{:?}", span.history);
    assert!(span.closed);
}

#[tokio::test]
async fn an_error_event_is_counted_and_logged_inside_the_span_and_the_stream_goes_on() {
    let (captured, _guard) = capture();
    let ctx = Context::new();
    let items = [
        Ok(Event::data(1)),
        Ok(Event::error(Error::new(
            ErrorCode::ToolFailed,
            "lookup failed",
        ))),
        Ok(Event::data(2)),
        Ok(Event::done()),
    ];
    let collected = futures_util::stream::iter(items)
        .traced("tools", &ctx)
        .collect_events()
        .await;
    assert_eq!(collected.events.len(), 4);

    let span = captured.span("stream");
    assert_eq!(span.fields["beluga.error_events"], value(1_i64));
    assert_eq!(span.fields["beluga.items"], value(4_i64));
    assert_eq!(span.fields["beluga.outcome"], value("done"));
    assert!(
        !span.fields.contains_key("error.type"),
        "the stream did not fail"
    );
    let warnings: Vec<_> = captured
        .events()
        .into_iter()
        .filter(|e| e.level == Level::WARN)
        .collect();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].span, Some(span.id));
    assert_eq!(
        warnings[0].target, "beluga_core::trace",
        "a public target, to filter on"
    );
    assert_eq!(warnings[0].fields["error.type"], value("tool_failed"));
    assert_eq!(
        warnings[0].fields["message"],
        value("[tool_failed] lookup failed")
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_before_its_end_closes_its_span_as_dropped() {
    let (captured, _guard) = capture();
    let ctx = Context::new().with_request_id("req-gone");
    {
        let mut stream = pin!(
            slow_words(&ctx, &["a", "b", "c"], Duration::from_millis(10)).traced("answer", &ctx)
        );
        assert!(stream.next().await.unwrap().is_ok());
        assert!(!captured.span("stream").closed);
    }
    let span = captured.span("stream");
    assert!(span.closed);
    assert_eq!(span.fields["beluga.outcome"], value("dropped"));
    assert_eq!(span.fields["beluga.items"], value(1_i64));
    assert_eq!(span.fields["beluga.time_to_first_item_ms"], value(10.0));
    assert!(
        !span.fields.contains_key("error.type"),
        "no error before the drop"
    );

    // A stream dropped before its first poll opens no span at all.
    drop(stream::iter([1]).traced("never", &ctx));
    assert_eq!(captured.spans().len(), 1);
}

#[tokio::test]
async fn a_stream_that_ends_without_a_terminal_item_is_ended() {
    let (captured, _guard) = capture();
    let cut = futures_util::stream::iter([Ok::<_, Error>(Event::data(1)), Ok(Event::data(2))]);
    let collected = cut.traced("cut", &Context::new()).collect_events().await;
    assert_eq!(collected.events.len(), 2);
    let span = captured.span("stream");
    assert_eq!(span.fields["beluga.outcome"], value("ended"));
    assert_eq!(span.fields["beluga.items"], value(2_i64));
    assert!(
        !span.fields.contains_key("beluga.request_id"),
        "no request id in the context"
    );
    assert!(span.closed);
}

/// A span of its own that counts the events it is shown, and records the count once, at the
/// end.
struct Counting {
    seen: Arc<AtomicUsize>,
}

impl StreamSpan<u32> for Counting {
    fn open(&mut self, ctx: &Context) -> Span {
        stream_span!(
            "counting",
            ctx,
            otel.name = "counted",
            counted = tracing::field::Empty,
            ended_as = tracing::field::Empty,
        )
    }

    fn on_event(&mut self, _span: &Span, _event: &Event<u32>) {
        self.seen.fetch_add(1, Ordering::Relaxed);
    }

    fn on_end(&mut self, span: &Span, outcome: Outcome) {
        let seen = i64::try_from(self.seen.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
        span.record("counted", seen);
        span.record("ended_as", outcome.as_str());
    }
}

#[tokio::test]
async fn a_span_of_its_own_declares_the_common_fields_and_its_own() {
    let (captured, _guard) = capture();
    let seen = Arc::new(AtomicUsize::new(0));
    let ctx = Context::new().with_request_id("req-own");
    let collected = stream::iter([1_u32, 2, 3])
        .traced_with(
            Counting {
                seen: Arc::clone(&seen),
            },
            &ctx,
        )
        .collect_events()
        .await;
    assert_eq!(collected.events.len(), 4);
    let span = captured.span("counting");
    let mut declared = CORE_FIELDS.to_vec();
    declared.extend(["otel.name", "counted", "ended_as"]);
    assert_eq!(span.declared, declared);
    assert_eq!(
        span.target, "trace",
        "the target is the module that opens the span"
    );
    assert_eq!(
        span.recorded("counted"),
        [value(4_i64)],
        "recorded once, at the end"
    );
    assert_eq!(span.fields["ended_as"], value("done"));
    assert_eq!(span.fields["beluga.items"], value(4_i64));
    assert_eq!(span.fields["beluga.request_id"], value("req-own"));
    assert_eq!(seen.load(Ordering::Relaxed), 4);
}

/// On a thread without a subscriber, while other threads have scoped ones (the tests beside
/// this one), which can make `tracing` enable the span anyway through the `NoSubscriber`.
#[tokio::test]
async fn without_a_subscriber_the_stream_passes_through_and_nothing_is_recorded() {
    let seen = Arc::new(AtomicUsize::new(0));
    let ctx = Context::new();
    let items = [
        Ok(Event::data(1_u32)),
        Ok(Event::error(Error::new(ErrorCode::ToolFailed, "x"))),
        Err(Error::cancelled()),
    ];
    let traced = futures_util::stream::iter(items.clone())
        .traced_with(
            Counting {
                seen: Arc::clone(&seen),
            },
            &ctx,
        )
        .collect_events()
        .await;
    let plain = futures_util::stream::iter(items).collect_events().await;
    assert_eq!(traced.events, plain.events);
    assert_eq!(traced.error, plain.error);
    assert_eq!(
        seen.load(Ordering::Relaxed),
        0,
        "no subscriber: the span is never shown an event"
    );
}

#[tokio::test(start_paused = true)]
async fn a_span_of_its_own_sees_the_end_of_a_dropped_stream() {
    let (captured, _guard) = capture();
    let seen = Arc::new(AtomicUsize::new(0));
    let ctx = Context::new();
    let numbers = stream::produce(&ctx, async |mut e| {
        e.emit(1_u32).await;
        std::future::pending::<()>().await;
        Ok(())
    });
    {
        let mut stream = pin!(numbers.traced_with(
            Counting {
                seen: Arc::clone(&seen),
            },
            &ctx,
        ));
        assert!(stream.next().await.unwrap().is_ok());
    }
    let span = captured.span("counting");
    assert!(span.closed);
    assert_eq!(span.recorded("counted"), [value(1_i64)]);
    assert_eq!(span.recorded("ended_as"), [value("dropped")]);
    assert_eq!(span.fields["beluga.outcome"], value("dropped"));
}

/// Items as given, then nothing forever: a stream that only its consumer can end.
fn then_pending(
    items: Vec<EventResult<u32>>,
) -> impl Stream<Item = EventResult<u32>> + Unpin + use<> {
    futures_util::stream::iter(items).chain(futures_util::stream::pending())
}

#[tokio::test]
async fn a_stream_dropped_or_cut_after_an_error_event_is_a_failure() {
    let (captured, _guard) = capture();
    let ctx = Context::new();
    let lookup_failed = || Error::new(ErrorCode::ToolFailed, "lookup failed").with_op("tool");
    // What `generate` does: stop at the first `error` event and drop the stream.
    let mut dropped = then_pending(vec![
        Ok(Event::data(1)),
        Ok(Event::error(Error::new(ErrorCode::RateLimit, "first"))),
        Ok(Event::error(lookup_failed())),
    ])
    .traced("dropped", &ctx);
    for _ in 0..3 {
        assert!(dropped.next().await.unwrap().is_ok());
    }
    drop(dropped);
    // A stream that ends without `done` after an error event.
    let cut = futures_util::stream::iter([Ok(Event::data(1)), Ok(Event::error(lookup_failed()))]);
    assert!(
        cut.traced("cut", &ctx)
            .collect_events()
            .await
            .error
            .is_none()
    );

    for (name, outcome) in [("dropped", "dropped"), ("cut", "ended")] {
        let span = captured
            .spans_named("stream")
            .into_iter()
            .find(|s| s.fields["otel.name"] == value(name))
            .unwrap();
        assert_eq!(span.fields["beluga.outcome"], value(outcome));
        assert_eq!(
            span.fields["error.type"],
            value("tool_failed"),
            "the last error event"
        );
        assert_eq!(span.fields["otel.status_code"], value("error"));
        assert_eq!(
            span.fields["otel.status_description"],
            value("tool [tool_failed]: lookup failed")
        );
        assert!(span.recorded_twice().is_empty(), "{:?}", span.history);
    }
}

#[tokio::test(start_paused = true)]
async fn two_interleaved_streams_keep_their_own_spans() {
    let (captured, _guard) = capture();
    let (first, second) = (
        Context::new().with_request_id("first"),
        Context::new().with_request_id("second"),
    );
    let a = slow_words(&first, &["a", "b", "c"], Duration::from_millis(10)).traced("a", &first);
    let b = slow_words(&second, &["x", "y"], Duration::from_millis(25)).traced("b", &second);
    // One task polls both, turn by turn.
    let (a, b) = futures_util::join!(a.collect_events(), b.collect_events());
    assert_eq!((a.events.len(), b.events.len()), (4, 3));

    let spans = captured.spans_named("stream");
    assert_eq!(spans.len(), 2);
    for (span, id, items, first_item) in [
        (&spans[0], "first", 4_i64, 10.0),
        (&spans[1], "second", 3, 25.0),
    ] {
        assert_eq!(span.fields["beluga.request_id"], value(id));
        assert_eq!(span.fields["beluga.items"], value(items));
        assert_eq!(
            span.fields["beluga.time_to_first_item_ms"],
            value(first_item)
        );
        assert_eq!(span.fields["beluga.outcome"], value("done"));
        assert!(span.closed);
        let produced = captured
            .events()
            .into_iter()
            .filter(|e| e.span == Some(span.id))
            .count();
        assert_eq!(
            produced,
            usize::try_from(items).unwrap() - 1,
            "its own producer's events"
        );
    }
}

#[tokio::test]
async fn a_cancelled_stream_is_cancelled_not_failed_but_a_deadline_is_an_error() {
    let (captured, _guard) = capture();
    let ctx = Context::new();
    let stopped = ctx.child();
    // The user pressed Stop: the producer sees the cancellation and ends with it.
    let words =
        slow_words(&stopped, &["a", "b"], Duration::from_millis(5)).traced("stopped", &stopped);
    stopped.cancel();
    let collected = words.collect_events().await;
    assert_eq!(collected.error.unwrap().code(), ErrorCode::Cancelled);
    let late =
        futures_util::stream::iter([Ok(Event::data(1_u32)), Err(Error::deadline_exceeded())])
            .traced("late", &ctx)
            .collect_events()
            .await;
    assert_eq!(late.error.unwrap().code(), ErrorCode::DeadlineExceeded);

    let spans = captured.spans_named("stream");
    let (stopped, late) = (&spans[0], &spans[1]);
    assert_eq!(stopped.fields["beluga.outcome"], value("cancelled"));
    for field in ["error.type", "otel.status_code", "otel.status_description"] {
        assert!(
            !stopped.fields.contains_key(field),
            "{field}: {:?}",
            stopped.fields
        );
    }
    assert_eq!(late.fields["beluga.outcome"], value("error"));
    assert_eq!(late.fields["error.type"], value("deadline_exceeded"));
    assert_eq!(late.fields["otel.status_code"], value("error"));
}

/// Each item after its delay (paused clock).
fn delayed(items: Vec<(u64, EventResult<u32>)>) -> impl Stream<Item = EventResult<u32>> + use<> {
    futures_util::stream::iter(items).then(|(ms, item)| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        item
    })
}

#[tokio::test(start_paused = true)]
async fn the_time_to_the_first_item_is_the_first_content_not_an_error_or_done() {
    let (captured, _guard) = capture();
    let ctx = Context::new();
    // Connection refused after 50 ms: no item ever came.
    let refused = delayed(vec![(
        50,
        Err(Error::new(ErrorCode::ProviderUnavailable, "refused")),
    )]);
    // A reported error first, then the first data.
    let reported = delayed(vec![
        (5, Ok(Event::error(Error::new(ErrorCode::ToolFailed, "x")))),
        (15, Ok(Event::data(1))),
        (1, Ok(Event::done())),
    ]);
    // Nothing but done.
    let empty = delayed(vec![(7, Ok(Event::done()))]);
    // A tool call counts as content.
    let tool = delayed(vec![(9, Ok(Event::tool_call(2))), (1, Ok(Event::done()))]);
    for (name, stream) in [
        ("refused", refused.boxed()),
        ("reported", reported.boxed()),
        ("empty", empty.boxed()),
        ("tool", tool.boxed()),
    ] {
        stream.traced(name, &ctx).collect_events().await;
    }
    let first_item = |name: &str| {
        captured
            .spans_named("stream")
            .into_iter()
            .find(|s| s.fields["otel.name"] == value(name))
            .unwrap()
            .fields
            .get("beluga.time_to_first_item_ms")
            .cloned()
    };
    assert_eq!(first_item("refused"), None);
    assert_eq!(first_item("reported"), Some(value(20.0)));
    assert_eq!(first_item("empty"), None);
    assert_eq!(first_item("tool"), Some(value(9.0)));
}
