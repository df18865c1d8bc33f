//! `Runnable`: invoke's result rules, pipe, parallel (fail fast and all settled), boxed pipelines.

use std::time::Duration;

use beluga_core::runnable::{ParallelOutput, parallel};
use beluga_core::{
    BoxRunnable, Context, Error, ErrorCode, Event, EventKind, EventResult, EventStreamExt,
    Runnable, RunnableExt, stream_producer,
};
use beluga_tests::{DropGuard, alive_tasks, drops, eventually, settle};
use futures_util::{Stream, StreamExt};

/// Streams a fixed script of items.
struct Scripted(Vec<EventResult<u32>>);

impl Runnable for Scripted {
    type Input = ();
    type Output = u32;
    fn stream(&self, _ctx: Context, (): ()) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        futures_util::stream::iter(self.0.clone())
    }
}

#[tokio::test]
async fn invoke_takes_done_with_else_the_last_data_else_an_error() {
    let done_with_wins = Scripted(vec![
        Ok(Event::data(1)),
        Ok(Event::data(2)),
        Ok(Event::done_with(9)),
    ]);
    assert_eq!(done_with_wins.invoke(Context::new(), ()).await.unwrap(), 9);

    let last_data = Scripted(vec![
        Ok(Event::data(1)),
        Ok(Event::tool_call(5)),
        Ok(Event::data(2)),
        Ok(Event::done()),
    ]);
    assert_eq!(last_data.invoke(Context::new(), ()).await.unwrap(), 2);

    let nothing = Scripted(vec![Ok(Event::tool_call(5)), Ok(Event::done())]);
    let err = nothing.invoke(Context::new(), ()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.to_string().contains("without a value"), "{err}");

    let failed = Scripted(vec![
        Ok(Event::data(1)),
        Err(Error::new(ErrorCode::RateLimit, "429")),
    ]);
    let err = failed.invoke(Context::new(), ()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimit);
}

/// A step written as a producer: waits `delay_ms`, then emits its input times `factor` as
/// data (twice, in two halves) and ends with it as the final value.
struct Step {
    factor: u32,
    delay_ms: u64,
}

impl Step {
    #[stream_producer]
    fn run(&self, ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        emit!(n * self.factor / 2);
        tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        emit!(n * self.factor - n * self.factor / 2);
        n * self.factor
    }
}

impl Runnable for Step {
    type Input = u32;
    type Output = u32;
    fn stream(&self, ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        self.run(ctx, n)
    }
}

#[tokio::test(start_paused = true)]
async fn pipe_feeds_the_first_result_into_the_second_and_streams_the_second() {
    let chain = Step {
        factor: 2,
        delay_ms: 1,
    }
    .pipe(Step {
        factor: 10,
        delay_ms: 1,
    });
    let events = chain.stream(Context::new(), 3).collect_events().await;
    // The second step's events only: 3 * 2 = 6, then 6 * 10 = 60 in two halves.
    assert_eq!(
        events.events,
        [Event::data(30), Event::data(30), Event::done_with(60)]
    );
    assert_eq!(chain.invoke(Context::new(), 3).await.unwrap(), 60);
}

#[tokio::test]
async fn pipe_ends_as_its_second_step_does() {
    let first = Scripted(vec![Ok(Event::data(1))]);
    // The second step ends without a `done`: the pipe adds none.
    let cut_short = Scripted(vec![Ok(Event::data(7)), Ok(Event::data(8))]);
    let second = Adapter(cut_short);
    let events = first
        .pipe(second)
        .stream(Context::new(), ())
        .collect_events()
        .await;
    assert_eq!(events.error, None);
    assert_eq!(events.events, [Event::data(7), Event::data(8)]);

    // Its `done` comes through as it is, metadata included.
    let first = Scripted(vec![Ok(Event::data(1))]);
    let finished = Scripted(vec![Ok(Event::done_with(9).with_trace_id("t"))]);
    let events = first
        .pipe(Adapter(finished))
        .stream(Context::new(), ())
        .collect_events()
        .await;
    assert_eq!(events.events, [Event::done_with(9).with_trace_id("t")]);
}

#[tokio::test]
async fn a_cancel_ends_a_pipe_and_drops_the_step_that_is_running() {
    let (guard, dropped) = DropGuard::new();
    let ctx = Context::new();
    // The first step never finishes: the pipe waits on it.
    let chain = Forever(std::sync::Mutex::new(Some(guard))).pipe(Step {
        factor: 1,
        delay_ms: 1,
    });
    let mut stream = std::pin::pin!(chain.stream(ctx.clone(), 0));
    assert!(futures_util::poll!(stream.next()).is_pending());
    assert_eq!(drops(&dropped), 0);
    ctx.cancel();
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert_eq!(
        drops(&dropped),
        1,
        "the parked first step outlived the cancel"
    );
    assert!(stream.next().await.is_none());
}

/// A [`Scripted`] that takes the first step's output as its input (and ignores it).
struct Adapter(Scripted);

impl Runnable for Adapter {
    type Input = u32;
    type Output = u32;
    fn stream(&self, ctx: Context, _: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        self.0.stream(ctx, ())
    }
}

/// Must never run: the pipe stops before it.
struct Never;

impl Runnable for Never {
    type Input = u32;
    type Output = u32;
    fn stream(&self, _: Context, _: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        panic!("the second step must not start");
        #[allow(unreachable_code)]
        futures_util::stream::empty()
    }
}

#[tokio::test]
async fn pipe_stops_at_the_first_steps_error() {
    let failing = Scripted(vec![Err(Error::new(ErrorCode::Auth, "bad key"))]);
    let err = failing
        .pipe(Never)
        .invoke(Context::new(), ())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Auth);
}

#[tokio::test(start_paused = true)]
async fn parallel_streams_items_as_they_arrive_tagged_by_branch() {
    let run = parallel([
        Step {
            factor: 1,
            delay_ms: 30,
        },
        Step {
            factor: 2,
            delay_ms: 10,
        },
    ]);
    let collected = run.stream(Context::new(), 10).collect_events().await;
    let tags: Vec<usize> = collected
        .events
        .iter()
        .filter_map(|ev| match ev.kind() {
            EventKind::Data(ParallelOutput::Item { branch, .. }) => Some(*branch),
            _ => None,
        })
        .collect();
    // Branch 1 is three times faster: both its items arrive before branch 0's first.
    assert_eq!(tags, [1, 1, 0, 0]);
    assert_eq!(
        collected.events.last(),
        Some(&Event::done_with(ParallelOutput::All(vec![10, 20])))
    );
    let all = run
        .invoke(Context::new(), 10)
        .await
        .unwrap()
        .into_all()
        .unwrap();
    assert_eq!(all, [10, 20]);
}

/// Parks forever after one item, holding a drop guard.
struct Forever(std::sync::Mutex<Option<DropGuard>>);

impl Forever {
    #[stream_producer]
    fn run(
        &self,
        ctx: Context,
        guard: Option<DropGuard>,
    ) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        let _guard = guard;
        emit!(1);
        std::future::pending::<()>().await;
    }
}

impl Runnable for Forever {
    type Input = u32;
    type Output = u32;
    fn stream(&self, ctx: Context, _: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        let guard = self.0.lock().unwrap().take();
        self.run(ctx, guard)
    }
}

struct FailsAfter(u64);

impl Runnable for FailsAfter {
    type Input = u32;
    type Output = u32;
    fn stream(&self, _: Context, _: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        let delay = self.0;
        futures_util::stream::once(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            Err(Error::new(ErrorCode::ToolFailed, "tool broke"))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_cancels_the_other_branches_within_one_poll() {
    let (guard, dropped) = DropGuard::new();
    let branches: Vec<BoxRunnable<'static, u32, u32>> = vec![
        Forever(std::sync::Mutex::new(Some(guard))).boxed(),
        FailsAfter(5).boxed(),
    ];
    let run = parallel(branches);
    let mut stream = std::pin::pin!(run.stream(Context::new(), 0));
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first,
        Event::data(ParallelOutput::Item {
            branch: 0,
            value: 1
        })
    );
    assert_eq!(drops(&dropped), 0);
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::ToolFailed);
    // The parked branch was dropped in the poll that yielded the error.
    assert_eq!(drops(&dropped), 1, "the sibling outlived the failure");
    assert!(stream.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn settle_mode_reports_every_branch() {
    let branches: Vec<BoxRunnable<'static, u32, u32>> = vec![
        Step {
            factor: 3,
            delay_ms: 20,
        }
        .boxed(),
        FailsAfter(5).boxed(),
        Scripted2.boxed(),
    ];
    let settled = parallel(branches)
        .all_settled()
        .invoke(Context::new(), 2)
        .await
        .unwrap()
        .into_settled()
        .unwrap();
    assert_eq!(settled[0], Ok(6));
    assert_eq!(
        settled[1].as_ref().unwrap_err().code(),
        ErrorCode::ToolFailed
    );
    assert_eq!(settled[2].as_ref().unwrap_err().code(), ErrorCode::Internal);
}

/// Ends without any value.
struct Scripted2;

impl Runnable for Scripted2 {
    type Input = u32;
    type Output = u32;
    fn stream(&self, _: Context, _: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        futures_util::stream::iter([Ok(Event::done())])
    }
}

#[tokio::test]
async fn a_branch_without_a_value_fails_a_fail_fast_run() {
    let branches: Vec<BoxRunnable<'static, u32, u32>> = vec![Scripted2.boxed()];
    let err = parallel(branches)
        .invoke(Context::new(), 1)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("branch 0 ended without a value"),
        "{err}"
    );
}

#[tokio::test]
async fn a_cancelled_context_stops_a_parallel_run() {
    let (guard, dropped) = DropGuard::new();
    let ctx = Context::new();
    let run = parallel([Forever(std::sync::Mutex::new(Some(guard)))]);
    let mut stream = std::pin::pin!(run.stream(ctx.clone(), 0));
    assert!(stream.next().await.unwrap().is_ok());
    assert!(futures_util::poll!(stream.next()).is_pending());
    ctx.cancel();
    assert!(stream.next().await.unwrap().unwrap_err().is_cancellation());
    assert_eq!(drops(&dropped), 1);
}

/// Spawns a task that lives until the context it was given ends, emits one item, then parks
/// forever or (with `finish`) ends.
struct SpawnsWatcher {
    finish: bool,
}

impl SpawnsWatcher {
    #[stream_producer]
    fn run(&self, ctx: Context) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        tokio::spawn(ctx.clone().cancelled());
        emit!(1);
        if !self.finish {
            std::future::pending::<()>().await;
        }
    }
}

impl Runnable for SpawnsWatcher {
    type Input = u32;
    type Output = u32;
    fn stream(&self, ctx: Context, _: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        self.run(ctx)
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_a_parallel_run_cancels_what_its_branches_spawned() {
    let baseline = alive_tasks();
    let ctx = Context::new();
    let run = parallel([
        SpawnsWatcher { finish: false },
        SpawnsWatcher { finish: false },
    ]);
    {
        let mut stream = Box::pin(run.stream(ctx.clone(), 0));
        assert!(stream.next().await.unwrap().is_ok());
        assert!(stream.next().await.unwrap().is_ok());
        settle().await;
        assert_eq!(
            alive_tasks(),
            baseline + 2,
            "each branch's watcher is waiting"
        );
        drop(stream);
    }
    eventually("the watchers of the dropped branches have ended", || {
        alive_tasks() == baseline
    })
    .await;
    assert!(!ctx.is_cancelled(), "the caller's context is left alone");
}

#[tokio::test(start_paused = true)]
async fn a_finished_parallel_run_leaves_nothing_behind() {
    let baseline = alive_tasks();
    let ctx = Context::new();
    let run = parallel([
        SpawnsWatcher { finish: true },
        SpawnsWatcher { finish: true },
    ]);
    let all = run.invoke(ctx.clone(), 0).await.unwrap().into_all();
    assert_eq!(all, Some(vec![1, 1]));
    eventually("the watchers of the finished branches have ended", || {
        alive_tasks() == baseline
    })
    .await;
    assert!(!ctx.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn boxed_steps_make_a_heterogeneous_pipeline() {
    let steps: Vec<BoxRunnable<'static, u32, u32>> = vec![
        Step {
            factor: 2,
            delay_ms: 1,
        }
        .boxed(),
        Step {
            factor: 3,
            delay_ms: 1,
        }
        .pipe(Step {
            factor: 5,
            delay_ms: 1,
        })
        .boxed(),
    ];
    let mut results = Vec::new();
    for step in &steps {
        results.push(step.invoke(Context::new(), 1).await.unwrap());
    }
    assert_eq!(results, [2, 15]);
    // A boxed step pipes like any other.
    let piped = steps.into_iter().next().unwrap().pipe(Step {
        factor: 7,
        delay_ms: 1,
    });
    assert_eq!(piped.invoke(Context::new(), 1).await.unwrap(), 14);
}

#[tokio::test(start_paused = true)]
async fn parallel_over_a_tuple_of_different_runnable_types() {
    // Different types, the same input and output: no manual boxing.
    let run = parallel((
        Step {
            factor: 2,
            delay_ms: 5,
        },
        FailsAfter(50),
        Step {
            factor: 3,
            delay_ms: 1,
        },
    ));
    // Fail fast: the failing branch ends the run once it fails, after both steps finished.
    let err = run.invoke(Context::new(), 1).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ToolFailed);

    let ok = parallel((
        Step {
            factor: 2,
            delay_ms: 5,
        },
        Step {
            factor: 3,
            delay_ms: 1,
        },
    ));
    let all = ok
        .invoke(Context::new(), 1)
        .await
        .unwrap()
        .into_all()
        .unwrap();
    assert_eq!(all, [2, 3]);
    assert_eq!(ok.branches().len(), 2);
}

/// A derived runnable whose producing method is itself called `stream`.
#[derive(Runnable)]
#[runnable(input = u32, output = u32, stream = stream)]
struct Countdown;

impl Countdown {
    #[stream_producer]
    fn stream(&self, ctx: Context, from: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        for n in (1..=from).rev() {
            emit!(n);
        }
        0
    }
}

#[tokio::test]
async fn stream_equals_stream_calls_the_types_own_stream_method() {
    let through_trait = Runnable::stream(&Countdown, Context::new(), 2)
        .collect_events()
        .await;
    assert_eq!(
        through_trait.events,
        [Event::data(2), Event::data(1), Event::done_with(0)]
    );
    assert_eq!(Countdown.invoke(Context::new(), 3).await.unwrap(), 0);
}

/// A derived runnable with an inherent method named like a `RunnableExt` method.
#[derive(Runnable)]
#[runnable(input = u32, output = u32, stream = run)]
struct Shadowing;

impl Shadowing {
    #[stream_producer]
    fn run(&self, ctx: Context, n: u32) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        n * 2
    }

    /// Not `RunnableExt::invoke`: an inherent method wins in method-call syntax.
    #[allow(
        clippy::unused_self,
        reason = "shaped like `RunnableExt::invoke` on purpose"
    )]
    fn invoke(&self, _ctx: Context, n: u32) -> u32 {
        n
    }
}

#[tokio::test]
async fn an_inherent_invoke_shadows_the_runnable_one_in_method_call_syntax() {
    assert_eq!(Shadowing.invoke(Context::new(), 5), 5);
    let through_trait = RunnableExt::invoke(&Shadowing, Context::new(), 5).await;
    assert_eq!(through_trait.unwrap(), 10);
}

/// A branch fed by hand that counts its polls: `data` for every item sent, `done` once closed.
#[derive(Default)]
struct Inbox {
    items: std::sync::Mutex<std::collections::VecDeque<Option<u32>>>,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
    polls: std::sync::atomic::AtomicUsize,
}

impl Inbox {
    fn send(&self, item: Option<u32>) {
        self.items.lock().unwrap().push_back(item);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }

    fn polls(&self) -> usize {
        self.polls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

struct FedBranch(std::sync::Arc<Inbox>);

impl Runnable for FedBranch {
    type Input = ();
    type Output = u32;
    fn stream(&self, _ctx: Context, (): ()) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        let inbox = &self.0;
        futures_util::stream::poll_fn(move |cx| {
            inbox
                .polls
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match inbox.items.lock().unwrap().pop_front() {
                Some(Some(item)) => std::task::Poll::Ready(Some(Ok(Event::data(item)))),
                Some(None) => std::task::Poll::Ready(Some(Ok(Event::done_with(0)))),
                None => {
                    *inbox.waker.lock().unwrap() = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            }
        })
    }
}

#[test]
fn a_wake_on_one_branch_of_a_thousand_polls_that_branch_alone() {
    use std::task::{Context as TaskContext, Poll, Waker};
    let inboxes: Vec<std::sync::Arc<Inbox>> =
        (0..1_000).map(|_| std::sync::Arc::default()).collect();
    let run = parallel(
        inboxes
            .iter()
            .map(|inbox| FedBranch(std::sync::Arc::clone(inbox)))
            .collect::<Vec<_>>(),
    );
    let mut events = Box::pin(run.stream(Context::new(), ()));
    let mut poll = || {
        events
            .as_mut()
            .poll_next(&mut TaskContext::from_waker(Waker::noop()))
    };
    assert!(poll().is_pending());
    let total =
        |inboxes: &[std::sync::Arc<Inbox>]| inboxes.iter().map(|i| i.polls()).sum::<usize>();
    assert_eq!(total(&inboxes), 1_000);
    for (k, which) in [17_usize, 999, 0, 17].into_iter().enumerate() {
        let before = total(&inboxes);
        inboxes[which].send(Some(u32::try_from(k).unwrap()));
        let Poll::Ready(Some(Ok(event))) = poll() else {
            panic!("no event for branch {which}");
        };
        assert_eq!(
            event.payload(),
            Some(&ParallelOutput::Item {
                branch: which,
                value: u32::try_from(k).unwrap()
            })
        );
        assert!(poll().is_pending());
        assert_eq!(
            total(&inboxes) - before,
            2,
            "a wake on branch {which} polled others"
        );
    }
    // Every branch ends: the run ends with every result, in branch order.
    for inbox in &inboxes {
        inbox.send(None);
    }
    let Poll::Ready(Some(Ok(event))) = poll() else {
        panic!("no final event");
    };
    let all = event
        .into_payload()
        .and_then(ParallelOutput::into_all)
        .unwrap();
    assert_eq!(all, vec![0; 1_000]);
}
