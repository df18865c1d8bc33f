// Shapes of `stream::produce` that must compile (and run): no annotations, `?`, generics,
// borrowed captures, a `'static` stream from an `Arc`, a boxed stream, the emitter in a helper
// function and in a scoped thread, and a producer inside a producer.
use std::fmt::Display;
use std::sync::Arc;

use beluga_core::stream::{self, Emitter};
use beluga_core::{BoxEventStream, Context, Event, EventResult, EventStreamExt};
use futures_util::{Stream, StreamExt};

fn labelled<'a, T: Display + 'a>(
    ctx: &Context,
    prefix: &'a str,
    items: impl IntoIterator<Item = T> + 'a,
) -> impl Stream<Item = EventResult<String>> + 'a {
    stream::produce(ctx, async move |mut e| {
        for item in items {
            e.emit(format!("{prefix}{item}")).await;
        }
        Ok(())
    })
}

struct Model {
    words: Vec<String>,
}

impl Model {
    fn answer(self: Arc<Self>, ctx: &Context) -> impl Stream<Item = EventResult<String>> + Send + 'static {
        stream::produce(ctx, async move |mut e| {
            for word in &self.words {
                e.emit(word.clone()).await;
            }
            e.emit(Event::done_with(self.words.len().to_string())).await;
            Ok(())
        })
    }
}

async fn send_twice<T: Clone>(e: &mut Emitter<'_, T>, value: T) {
    e.emit(value.clone()).await;
    e.emit(value).await;
}

fn parse(ctx: &Context, text: &'static str) -> BoxEventStream<'static, u64> {
    stream::produce(ctx, async move |mut e| {
        for word in text.split(' ') {
            let n: u64 = word.parse().map_err(|_| std::io::Error::other("not a number"))?;
            e.emit(n).await;
        }
        Ok(())
    })
    .boxed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = Context::new();

    let prefix = String::from("#");
    let text: String = labelled(&ctx, &prefix, [1, 2])
        .payloads()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(text, "#1#2");

    let model = Arc::new(Model { words: vec!["hi".into()] });
    let answer = tokio::spawn(Arc::clone(&model).answer(&ctx).collect_events()).await.unwrap();
    assert_eq!(answer.events.last(), Some(&Event::done_with("1".to_owned())));

    let twice = stream::produce(&ctx, async |mut e| {
        send_twice(&mut e, 'x').await;
        Ok(())
    });
    assert_eq!(twice.collect_events().await.data().count(), 2);

    let parsed = parse(&ctx, "1 2 x").collect_events().await;
    assert_eq!(parsed.data().copied().collect::<Vec<_>>(), [1, 2]);
    assert!(parsed.error.is_some());

    // A scoped thread ends before the body goes on, so it may use the emitter meanwhile.
    let scoped = stream::produce(&ctx, async |mut e| {
        std::thread::scope(|scope| {
            scope.spawn(|| drop(e.emit(7_u8)));
        });
        e.emit(8).await;
        Ok(())
    });
    let scoped = scoped.collect_events().await;
    assert_eq!(scoped.data().copied().collect::<Vec<_>>(), [7, 8]);

    // A non-`move` closure borrows what it uses.
    let mut seen = 0;
    let counted = stream::produce(&ctx, async |mut e| {
        seen += 1;
        e.emit(seen).await;
        Ok(())
    })
    .collect_events()
    .await;
    assert_eq!(counted.data().count(), 1);
    assert_eq!(seen, 1);

    // A producer inside a producer, the inner body sending through both emitters.
    let nested = stream::produce(&ctx, async |mut outer| {
        let inner = stream::produce(&ctx, async |mut inner| {
            outer.emit(1).await;
            inner.emit(2).await;
            Ok(())
        })
        .collect_events()
        .await;
        outer.emit(inner.events.len()).await;
        Ok(())
    });
    let nested = nested.collect_events().await;
    assert_eq!(nested.data().copied().collect::<Vec<_>>(), [1, 2]);
}
