//! `#[stream_producer]`: body semantics, cancellation, drop, delegation, supported shapes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use beluga_core::{
    BoxEventStream, Context, Error, ErrorCode, Event, EventKind, EventResult, EventStreamExt,
    stream_producer,
};
use beluga_tests::{DropGuard, drops};
use futures_util::{Stream, StreamExt};

#[stream_producer]
fn count(ctx: Context, n: u64) -> impl Stream<Item = Result<Event<u64>, Error>> {
    for i in 0..n {
        emit!(i);
    }
}

#[tokio::test]
async fn emits_data_then_done() {
    let events = count(Context::new(), 3).collect_events().await;
    assert_eq!(events.error, None);
    assert_eq!(
        events.events,
        [
            Event::data(0),
            Event::data(1),
            Event::data(2),
            Event::done()
        ]
    );
}

#[stream_producer]
fn with_final(ctx: &Context) -> impl Stream<Item = EventResult<String>> {
    emit!("partial".to_owned());
    emit!(Event::tool_call("lookup".to_owned()));
    emit!(Event::error(Error::new(
        ErrorCode::ToolFailed,
        "lookup failed"
    )));
    emit!("after the reported error".to_owned());
    "final".to_owned()
}

#[tokio::test]
async fn events_pass_as_they_are_and_a_tail_value_is_done_with() {
    let ctx = Context::new();
    let events = with_final(&ctx).collect_events().await;
    assert_eq!(
        events.events,
        [
            Event::data("partial".to_owned()),
            Event::tool_call("lookup".to_owned()),
            Event::error(Error::new(ErrorCode::ToolFailed, "lookup failed")),
            Event::data("after the reported error".to_owned()),
            Event::done_with("final".to_owned())
        ]
    );
    assert_eq!(events.error, None);
}

#[stream_producer]
fn returns(ctx: Context, how: u8) -> impl Stream<Item = EventResult<u32>> {
    emit!(1);
    match how {
        0 => return,
        1 => return 7,
        2 => return Err(Error::new(ErrorCode::Auth, "denied")),
        3 => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow")),
        4 => {
            let n: u32 = "not a number"
                .parse()
                .map_err(|_| Error::new(ErrorCode::InvalidInput, "bad number"))?;
            emit!(n);
        }
        5 => {
            let missing: Result<(), std::io::Error> = Err(std::io::ErrorKind::NotFound.into());
            missing?;
        }
        _ => {}
    }
    emit!(2);
}

async fn outcome(how: u8) -> (Vec<Event<u32>>, Option<ErrorCode>) {
    let collected = returns(Context::new(), how).collect_events().await;
    (collected.events, collected.error.map(|e| e.code()))
}

#[tokio::test]
async fn return_and_question_mark_end_the_stream() {
    assert_eq!(
        outcome(0).await,
        (vec![Event::data(1), Event::done()], None)
    );
    assert_eq!(
        outcome(1).await,
        (vec![Event::data(1), Event::done_with(7)], None)
    );
    assert_eq!(
        outcome(2).await,
        (vec![Event::data(1)], Some(ErrorCode::Auth))
    );
    assert_eq!(
        outcome(3).await,
        (vec![Event::data(1)], Some(ErrorCode::Timeout))
    );
    assert_eq!(
        outcome(4).await,
        (vec![Event::data(1)], Some(ErrorCode::InvalidInput))
    );
    assert_eq!(
        outcome(5).await,
        (vec![Event::data(1)], Some(ErrorCode::NotFound))
    );
    assert_eq!(
        outcome(6).await,
        (vec![Event::data(1), Event::data(2), Event::done()], None)
    );
}

#[tokio::test]
async fn exactly_one_terminal_item_then_none_forever() {
    for how in 0..7 {
        let mut stream = Box::pin(returns(Context::new(), how));
        let mut terminals = 0;
        while let Some(item) = stream.next().await {
            if !matches!(&item, Ok(ev) if !ev.is_done()) {
                terminals += 1;
            }
        }
        assert_eq!(terminals, 1, "case {how}");
        assert_eq!(stream.size_hint(), (0, Some(0)));
        for _ in 0..3 {
            assert!(
                stream.next().await.is_none(),
                "case {how}: polled after the end"
            );
        }
    }
}

#[stream_producer]
fn emits_done_early(
    ctx: Context,
    ran_after: Arc<AtomicUsize>,
) -> impl Stream<Item = EventResult<u8>> {
    emit!(1);
    emit!(Event::done_with(2));
    ran_after.fetch_add(1, Ordering::SeqCst);
    emit!(3);
}

#[tokio::test]
async fn an_emitted_done_ends_the_producer() {
    let ran_after = Arc::new(AtomicUsize::new(0));
    let events = emits_done_early(Context::new(), Arc::clone(&ran_after))
        .collect_events()
        .await;
    assert_eq!(events.events, [Event::data(1), Event::done_with(2)]);
    assert_eq!(ran_after.load(Ordering::SeqCst), 0);
}

#[stream_producer]
fn guarded_forever(ctx: Context, guard: DropGuard) -> impl Stream<Item = EventResult<u8>> {
    let _guard = guard;
    emit!(1);
    std::future::pending::<()>().await;
    emit!(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_drops_a_body_parked_forever_within_the_next_poll() {
    let (guard, dropped) = DropGuard::new();
    let ctx = Context::new();
    let mut stream = Box::pin(guarded_forever(ctx.clone(), guard));
    assert_eq!(stream.next().await.unwrap().unwrap(), Event::data(1));
    let consumer = tokio::spawn(async move {
        let item = stream.next().await;
        (item, drops(&dropped), stream.next().await)
    });
    // Let the consumer park on the body's `pending()`.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!consumer.is_finished());
    ctx.cancel();
    let (item, drops_at_error, after) = tokio::time::timeout(Duration::from_secs(5), consumer)
        .await
        .expect("the parked consumer was never woken")
        .unwrap();
    assert_eq!(item.unwrap().unwrap_err().code(), ErrorCode::Cancelled);
    assert_eq!(
        drops_at_error, 1,
        "the body was alive when the error came out"
    );
    assert!(after.is_none());
}

#[tokio::test]
async fn dropping_the_stream_drops_the_body_inside_drop() {
    let (guard, dropped) = DropGuard::new();
    let mut stream = Box::pin(guarded_forever(Context::new(), guard));
    assert!(stream.next().await.is_some());
    assert!(futures_util::poll!(stream.next()).is_pending());
    assert_eq!(drops(&dropped), 0);
    drop(stream);
    assert_eq!(drops(&dropped), 1);
}

#[tokio::test]
async fn a_cancel_between_items_ends_before_the_next_emit() {
    let ctx = Context::new();
    let mut stream = Box::pin(count(ctx.clone(), 1_000));
    assert_eq!(stream.next().await.unwrap().unwrap(), Event::data(0));
    ctx.cancel();
    assert!(stream.next().await.unwrap().unwrap_err().is_cancellation());
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn a_cancelled_context_never_starts_the_body() {
    let (guard, dropped) = DropGuard::new();
    let ctx = Context::new();
    ctx.cancel();
    let collected = guarded_forever(ctx, guard).collect_events().await;
    assert!(collected.events.is_empty());
    assert_eq!(
        collected.error.map(|e| e.code()),
        Some(ErrorCode::Cancelled)
    );
    assert_eq!(drops(&dropped), 1);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_ends_a_parked_body_on_time() {
    let (guard, dropped) = DropGuard::new();
    let start = tokio::time::Instant::now();
    let ctx = Context::new().with_timeout(Duration::from_millis(50));
    let collected = guarded_forever(ctx, guard).collect_events().await;
    assert_eq!(collected.events, [Event::data(1)]);
    assert_eq!(
        collected.error.map(|e| e.code()),
        Some(ErrorCode::DeadlineExceeded)
    );
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert_eq!(drops(&dropped), 1);
}

#[stream_producer]
fn busy(ctx: Context) -> impl Stream<Item = EventResult<u64>> {
    let mut i = 0;
    loop {
        i += 1;
        emit!(i);
    }
}

#[test]
fn a_deadline_fires_when_the_body_never_parks_and_the_consumer_never_yields() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let ctx = Context::new().with_timeout(Duration::from_millis(20));
        let mut stream = Box::pin(busy(ctx));
        let started = std::time::Instant::now();
        let mut items = 0_u64;
        let err = loop {
            match stream.next().await.unwrap() {
                Ok(_) => {
                    items += 1;
                    if items % 1024 == 0 {
                        assert!(started.elapsed() < Duration::from_secs(10), "never fired");
                    }
                }
                Err(err) => break err,
            }
        };
        assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
        assert!(items > 0);
    });
}

#[tokio::test(start_paused = true)]
async fn a_deadline_that_has_already_passed_ends_the_producer_before_its_body_starts() {
    let (guard, dropped) = DropGuard::new();
    let ctx = Context::new().with_timeout(Duration::from_millis(10));
    tokio::time::advance(Duration::from_millis(20)).await;
    // The body would emit forever without parking; not one item may come out.
    let mut stream = Box::pin(busy(ctx));
    let first = stream.next().await.unwrap();
    assert_eq!(first.unwrap_err().code(), ErrorCode::DeadlineExceeded);
    assert!(stream.next().await.is_none());
    // A body that never started is dropped when the stream ends, not later.
    let ctx = Context::new().with_timeout(Duration::from_millis(10));
    tokio::time::advance(Duration::from_millis(20)).await;
    let collected = guarded_forever(ctx, guard).collect_events().await;
    assert!(collected.events.is_empty());
    assert_eq!(
        collected.error.map(|e| e.code()),
        Some(ErrorCode::DeadlineExceeded)
    );
    assert_eq!(drops(&dropped), 1);
}

#[stream_producer(ctx = watched)]
fn two_contexts(watched: Context, other: Context) -> impl Stream<Item = EventResult<&'static str>> {
    let _ = other;
    emit!("one");
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn the_named_context_is_the_one_watched() {
    let watched = Context::new();
    let other = Context::new();
    let mut stream = Box::pin(two_contexts(watched.clone(), other.clone()));
    assert!(stream.next().await.is_some());
    other.cancel();
    assert!(futures_util::poll!(stream.next()).is_pending());
    watched.cancel();
    assert!(stream.next().await.unwrap().unwrap_err().is_cancellation());
}

#[stream_producer]
fn labelled(ctx: Context, label: &'static str, n: u8) -> impl Stream<Item = EventResult<String>> {
    for i in 0..n {
        emit!(format!("{label}{i}"));
    }
}

#[stream_producer]
fn starts_another(ctx: Context) -> impl Stream<Item = EventResult<u64>> {
    // The other producer starts inside this body's first poll, before this body emits.
    let mut other = Box::pin(labelled(ctx.clone(), "x", 2));
    let first = other.next().await.unwrap()?;
    emit!(first.payload().map_or(0, |text| text.len() as u64));
    let rest = other.collect_events().await;
    emit!(rest.events.len() as u64);
}

#[tokio::test]
async fn each_body_writes_to_its_own_producer_whatever_the_order_they_start_in() {
    let ctx = Context::new();
    let mut streams = [
        Box::pin(labelled(ctx.clone(), "a", 2)),
        Box::pin(labelled(ctx.clone(), "b", 2)),
        Box::pin(labelled(ctx.clone(), "c", 2)),
    ];
    // Created in one order, started in another, then interleaved.
    let mut seen = Vec::new();
    for i in [2, 0, 1, 0, 2, 1] {
        let event = streams[i].next().await.unwrap().unwrap();
        seen.push(event.into_payload().unwrap());
    }
    assert_eq!(seen, ["c0", "a0", "b0", "a1", "c1", "b1"]);
    for stream in &mut streams {
        assert!(stream.next().await.unwrap().unwrap().is_done());
        assert!(stream.next().await.is_none());
    }

    let nested = starts_another(ctx.clone()).collect_events().await;
    assert_eq!(nested.error, None);
    assert_eq!(
        nested.events,
        [Event::data(2), Event::data(2), Event::done()]
    );

    // A producer created and dropped without a poll leaves nothing behind for the next one.
    drop(labelled(ctx.clone(), "never", 1));
    let after = labelled(ctx, "d", 1).collect_events().await;
    assert_eq!(after.events, [Event::data("d0".to_owned()), Event::done()]);
}

/// Panics when dropped, unless a panic is already unwinding.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        assert!(std::thread::panicking(), "a destructor that panics");
    }
}

#[stream_producer]
fn ends_holding_a_bad_guard(ctx: Context) -> impl Stream<Item = EventResult<u8>> {
    let _guard = PanicsWhenDropped;
    emit!(1);
    // Ends the stream: the body is dropped here, suspended, with the guard alive.
    emit!(Event::done());
    unreachable!("an emitted done ends the body");
}

#[test]
fn a_body_whose_destructor_panics_still_ends_with_one_terminal_item() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::task::{Context as TaskContext, Poll, Waker};

    let mut stream = Box::pin(ends_holding_a_bad_guard(Context::new()));
    let mut cx = TaskContext::from_waker(Waker::noop());
    let first = stream.as_mut().poll_next(&mut cx);
    assert!(matches!(first, Poll::Ready(Some(Ok(ref e))) if e.payload() == Some(&1)));
    // The `done` drops the body, whose destructor panics into the consumer's poll.
    let caught = catch_unwind(AssertUnwindSafe(|| stream.as_mut().poll_next(&mut cx)));
    assert!(caught.is_err());
    // The next poll yields the terminal item the panic took away, as an error, then nothing.
    match stream.as_mut().poll_next(&mut cx) {
        Poll::Ready(Some(Err(err))) => assert_eq!(err.code(), ErrorCode::Internal),
        other => panic!("expected the terminal error, got {other:?}"),
    }
    assert!(matches!(
        stream.as_mut().poll_next(&mut cx),
        Poll::Ready(None)
    ));
}

#[stream_producer]
fn inner(ctx: Context, fail: bool) -> impl Stream<Item = EventResult<String>> {
    emit!("a".to_owned());
    emit!(Event::tool_call("t".to_owned()));
    if fail {
        return Err(Error::new(ErrorCode::RateLimit, "429"));
    }
    "inner final".to_owned()
}

#[stream_producer]
fn outer(ctx: Context, fail: bool) -> impl Stream<Item = EventResult<String>> {
    emit!("before".to_owned());
    let inner_final = emit_all!(inner(ctx.clone(), fail));
    emit!(format!("inner said {inner_final:?}"));
}

#[tokio::test]
async fn emit_all_forwards_events_and_returns_the_final_value() {
    let ok = outer(Context::new(), false).collect_events().await;
    assert_eq!(
        ok.events,
        [
            Event::data("before".to_owned()),
            Event::data("a".to_owned()),
            Event::tool_call("t".to_owned()),
            Event::data("inner said Some(\"inner final\")".to_owned()),
            Event::done()
        ]
    );
    let failed = outer(Context::new(), true).collect_events().await;
    assert_eq!(failed.events.len(), 3);
    assert_eq!(failed.error.map(|e| e.code()), Some(ErrorCode::RateLimit));
}

#[stream_producer]
fn delegate_forever(ctx: Context, guard: DropGuard) -> impl Stream<Item = EventResult<u8>> {
    emit_all!(guarded_forever(Context::new(), guard));
}

#[tokio::test]
async fn cancellation_is_checked_while_delegating() {
    let (guard, dropped) = DropGuard::new();
    let ctx = Context::new();
    let mut stream = Box::pin(delegate_forever(ctx.clone(), guard));
    assert_eq!(stream.next().await.unwrap().unwrap(), Event::data(1));
    assert!(futures_util::poll!(stream.next()).is_pending());
    ctx.cancel();
    assert!(stream.next().await.unwrap().unwrap_err().is_cancellation());
    assert_eq!(drops(&dropped), 1);
}

struct Model {
    words: Vec<&'static str>,
}

impl Model {
    #[stream_producer]
    fn words<'a>(
        &'a self,
        ctx: &Context,
        prefix: &'a str,
    ) -> impl Stream<Item = EventResult<String>> + 'a {
        for word in &self.words {
            emit!(format!("{prefix}{word}"));
        }
    }
}

trait Provider {
    fn stream(&self, ctx: Context) -> BoxEventStream<'_, u32>;
}

struct Fixed(u32);

impl Provider for Fixed {
    #[stream_producer]
    fn stream(&self, ctx: Context) -> BoxEventStream<'_, u32> {
        emit!(self.0);
        self.0 + 1
    }
}

#[stream_producer]
fn generic<T: Clone + Send + 'static>(
    ctx: Context,
    items: impl IntoIterator<Item = T>,
) -> impl Stream<Item = EventResult<T>> {
    for item in items {
        emit!(item);
    }
}

#[tokio::test]
async fn methods_trait_methods_generics_and_borrowed_arguments() {
    let model = Model {
        words: vec!["a", "b"],
    };
    let ctx = Context::new();
    let prefix = String::from("> ");
    let words = model.words(&ctx, &prefix).collect_events().await;
    assert_eq!(words.data().cloned().collect::<Vec<_>>(), ["> a", "> b"]);

    let provider: Box<dyn Provider> = Box::new(Fixed(41));
    let events = provider.stream(Context::new()).collect_events().await;
    assert_eq!(events.events, [Event::data(41), Event::done_with(42)]);

    let generic = generic(Context::new(), vec!['x', 'y'])
        .collect_events()
        .await;
    assert_eq!(generic.data().copied().collect::<String>(), "xy");
}

#[test]
fn producers_are_send_when_their_bodies_are() {
    fn assert_send<S: Send>(_: &S) {}
    assert_send(&count(Context::new(), 1));
    assert_send(&generic(Context::new(), [1_u8]));
}

#[tokio::test]
async fn a_producer_is_an_ordinary_stream() {
    let kinds: Vec<EventKind<u64>> = count(Context::new(), 2)
        .map(|item| item.unwrap().into_kind())
        .collect()
        .await;
    assert_eq!(
        kinds,
        [
            EventKind::Data(0),
            EventKind::Data(1),
            EventKind::Done(None)
        ]
    );
}

// Other macros' tokens: wherever an `emit!` still compiles there, every value comes out once and
// in order, and `emit_all!`, `return` and `?` mean what they mean in the body.

#[stream_producer]
fn two_then(ctx: Context, last: u32) -> impl Stream<Item = EventResult<u32>> {
    emit!(2);
    last
}

#[stream_producer]
fn select_handlers(ctx: Context, how: u8) -> impl Stream<Item = EventResult<u32>> {
    let ready = std::future::ready;
    tokio::select! {
        biased;
        () = ready(()), if how == 0 => return,
        () = ready(()), if how == 1 => return 9,
        () = ready(()), if how == 2 => return Err(Error::new(ErrorCode::Auth, "denied")),
        () = ready(()), if how == 3 => {
            emit!(1);
            emit!("x".parse::<u32>().map_err(|_| Error::new(ErrorCode::InvalidInput, "nan"))?);
        }
        () = ready(()), if how == 4 => {
            emit!(1);
            let last = emit_all!(two_then(ctx.clone(), 3));
            emit!(last.unwrap_or(0));
        }
        () = ready(()) => {
            emit!(1);
            #[cfg(any())]
            emit!(100);
            #[cfg(any())]
            return;
            emit!(2);
        }
    }
    emit!(10);
}

async fn select_outcome(how: u8) -> (Vec<Event<u32>>, Option<ErrorCode>) {
    let collected = select_handlers(Context::new(), how).collect_events().await;
    (collected.events, collected.error.map(|e| e.code()))
}

#[tokio::test]
async fn emit_emit_all_return_and_question_mark_work_in_select_handlers() {
    assert_eq!(select_outcome(0).await, (vec![Event::done()], None));
    assert_eq!(select_outcome(1).await, (vec![Event::done_with(9)], None));
    assert_eq!(select_outcome(2).await, (vec![], Some(ErrorCode::Auth)));
    assert_eq!(
        select_outcome(3).await,
        (vec![Event::data(1)], Some(ErrorCode::InvalidInput))
    );
    assert_eq!(
        select_outcome(4).await,
        (
            vec![
                Event::data(1),
                Event::data(2),
                Event::data(3),
                Event::data(10),
                Event::done()
            ],
            None
        )
    );
    assert_eq!(
        select_outcome(5).await,
        (
            vec![
                Event::data(1),
                Event::data(2),
                Event::data(10),
                Event::done()
            ],
            None
        )
    );
}

#[stream_producer]
fn select_loop(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    let mut first = futures_util::future::ready(1);
    let mut second = futures_util::future::ready(2);
    loop {
        futures_util::select_biased! {
            v = first => emit!(v),
            v = second => { emit!(v); emit!(v * 10); }
            complete => break,
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for v in [3, 4] {
        tx.send(v).unwrap();
    }
    drop(tx);
    loop {
        tokio::select! {
            biased;
            Some(v) = rx.recv() => emit!(v),
            else => break,
        }
    }
}

#[tokio::test]
async fn emits_in_select_loops_come_out_once_and_in_order() {
    let collected = select_loop(Context::new()).collect_events().await;
    assert_eq!(collected.error, None);
    assert_eq!(
        collected.data().copied().collect::<Vec<_>>(),
        [1, 2, 20, 3, 4]
    );
}

macro_rules! in_order {
    ($($e:expr),*) => {
        $( $e; )*
    };
}

#[stream_producer]
fn in_other_macros(ctx: Context, stop: bool) -> impl Stream<Item = EventResult<u32>> {
    in_order!(emit!(1), emit!(2));
    let mut units = vec![emit!(3), emit!(4)];
    units.push(());
    assert_eq!(units.len(), 3);
    assert_eq!(emit_all!(two_then(ctx.clone(), 5)), Some(5));
    emit!(if stop {
        return;
    } else {
        6
    });
    emit!(match u8::from(stop) {
        1 => return Err(Error::new(ErrorCode::Auth, "unreachable")),
        _ => 7,
    });
}

#[tokio::test]
async fn emits_in_macros_that_evaluate_in_place_come_out_in_order() {
    let collected = in_other_macros(Context::new(), false)
        .collect_events()
        .await;
    assert_eq!(collected.error, None);
    assert_eq!(
        collected.data().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4, 2, 6, 7]
    );
    let stopped = in_other_macros(Context::new(), true).collect_events().await;
    assert_eq!(
        stopped.events,
        [
            Event::data(1),
            Event::data(2),
            Event::data(3),
            Event::data(4),
            Event::data(2),
            Event::done()
        ]
    );
}

#[stream_producer]
fn with_attributes(ctx: Context) -> impl Stream<Item = EventResult<u32>> {
    #[cfg(any())]
    emit!(0);
    #[cfg(test)]
    emit!(1);
    #[cfg(any())]
    emit_all!(two_then(ctx.clone(), 0));
    #[cfg(any())]
    return;
    #[cfg(any())]
    return 5;
    emit!(2);
    3
}

#[tokio::test]
async fn attributes_on_emit_and_return_are_kept() {
    let collected = with_attributes(Context::new()).collect_events().await;
    assert_eq!(
        collected.events,
        [Event::data(1), Event::data(2), Event::done_with(3)]
    );
}

#[stream_producer]
fn words_of(ctx: Context, text: &str) -> impl Stream<Item = EventResult<&str>> + '_ {
    for word in text.split(' ') {
        emit!(word);
    }
}

#[stream_producer]
fn first_word(ctx: Context, text: &'_ str) -> BoxEventStream<'_, &'_ str> {
    text.split(' ').next().unwrap_or_default()
}

struct Sentence(String);

impl Sentence {
    #[stream_producer]
    fn words(&self, ctx: &Context) -> impl Stream<Item = EventResult<&str>> + '_ {
        for word in self.0.split(' ') {
            emit!(word);
        }
    }
}

trait Words {
    fn words(&self, ctx: Context) -> BoxEventStream<'_, &str>;
}

impl Words for Sentence {
    #[stream_producer]
    fn words(&self, ctx: Context) -> BoxEventStream<'_, &str> {
        emit_all!(Sentence::words(self, &ctx));
    }
}

#[tokio::test]
async fn elided_lifetimes_in_the_item_type_borrow_from_the_arguments() {
    let text = String::from("to be");
    let words = words_of(Context::new(), &text).collect_events().await;
    assert_eq!(words.data().copied().collect::<Vec<_>>(), ["to", "be"]);
    let ctx = Context::new();
    let first = first_word(ctx.clone(), &text).collect_events().await;
    assert_eq!(first.events, [Event::done_with("to")]);
    let sentence = Sentence(text.clone());
    let inherent = sentence.words(&ctx).collect_events().await;
    assert_eq!(inherent.data().copied().collect::<Vec<_>>(), ["to", "be"]);
    let through_trait = Words::words(&sentence, Context::new())
        .collect_events()
        .await;
    assert_eq!(
        through_trait.data().copied().collect::<Vec<_>>(),
        ["to", "be"]
    );
}

#[stream_producer]
fn patterns(
    ref ctx: Context,
    ref text: String,
    (a, mut b): (u32, u32),
    ref mut guard: DropGuard,
) -> impl Stream<Item = EventResult<String>> {
    let _: &mut DropGuard = guard;
    assert!(!ctx.is_cancelled());
    b += 1;
    emit!(format!("{text} {a} {b}"));
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn patterns_in_arguments_bind_inside_the_body() {
    let (guard, dropped) = DropGuard::new();
    let ctx = Context::new();
    let mut stream = Box::pin(patterns(ctx.clone(), "n".to_owned(), (1, 2), guard));
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        Event::data("n 1 3".to_owned())
    );
    assert_eq!(drops(&dropped), 0, "the guard lives in the body");
    ctx.cancel();
    assert!(stream.next().await.unwrap().unwrap_err().is_cancellation());
    assert_eq!(drops(&dropped), 1);
}

#[stream_producer]
fn cfg_patterns(
    ctx: Context,
    #[cfg(any())] (a, b): (u32, u32),
    #[cfg(test)] (c, d): (u32, u32),
) -> impl Stream<Item = EventResult<u32>> {
    emit!(c + d);
}

#[tokio::test]
async fn attributes_on_patterns_in_arguments_are_kept() {
    let collected = cfg_patterns(Context::new(), (1, 2)).collect_events().await;
    assert_eq!(collected.events, [Event::data(3), Event::done()]);
}
