// Lifetimes, type and const parameters with bounds, and a where clause: the impl keeps them all.
use std::fmt::Display;

use beluga_core::{stream_producer, Context, EventResult, Runnable, RunnableExt};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = Vec<T>, output = String, stream = render)]
struct Renderer<'a, T: Display, const N: usize>
where
    T: Send + Sync,
{
    prefix: &'a str,
    _items: std::marker::PhantomData<[T; N]>,
}

impl<'a, T: Display, const N: usize> Renderer<'a, T, N>
where
    T: Send + Sync,
{
    #[stream_producer]
    fn render(&self, ctx: Context, items: Vec<T>) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        let mut line = self.prefix.to_owned();
        for item in items.iter().take(N) {
            line.push_str(&item.to_string());
            emit!(line.clone());
        }
        line
    }
}

// A runnable generic over another runnable, with the input type borrowed from it.
#[derive(Runnable)]
#[runnable(input = R::Input, output = usize, stream = measure)]
struct Measure<R: Runnable<Output = String>> {
    inner: R,
}

impl<R: Runnable<Output = String>> Measure<R> {
    #[stream_producer]
    fn measure(&self, ctx: Context, input: R::Input) -> impl Stream<Item = EventResult<usize>> + Send + '_ {
        let text = self.inner.invoke(ctx.clone(), input).await?;
        text.len()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let prefix = String::from("> ");
    let renderer: Renderer<'_, u8, 2> = Renderer { prefix: &prefix, _items: std::marker::PhantomData };
    let line = renderer.invoke(Context::new(), vec![1, 2, 3]).await.unwrap();
    assert_eq!(line, "> 12");

    let measure = Measure { inner: renderer };
    assert_eq!(measure.invoke(Context::new(), vec![7, 8]).await.unwrap(), 4);
}
