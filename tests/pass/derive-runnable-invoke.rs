// `invoke` on a derived runnable returns the producer's final value, else its last data, and
// its error as is.
use beluga_core::{stream_producer, Context, Error, ErrorCode, EventResult, Runnable, RunnableExt};
use futures_util::Stream;

#[derive(Runnable)]
#[runnable(input = Vec<u32>, output = u32, stream = run)]
struct Sum;

impl Sum {
    #[stream_producer]
    fn run(&self, ctx: Context, numbers: Vec<u32>) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        let mut total = 0;
        for n in numbers {
            if n == 0 {
                return Err(Error::new(ErrorCode::InvalidInput, "zero"));
            }
            total += n;
            emit!(total); // running totals as data
        }
        total * 100 // the final value wins over the last data
    }
}

#[derive(Runnable)]
#[runnable(input = Vec<u32>, output = u32, stream = run)]
struct LastOnly;

impl LastOnly {
    #[stream_producer]
    fn run(&self, ctx: Context, numbers: Vec<u32>) -> impl Stream<Item = EventResult<u32>> + Send + '_ {
        for n in numbers {
            emit!(n);
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Sum.invoke(Context::new(), vec![1, 2, 3]).await.unwrap(), 600);
    let err = Sum.invoke(Context::new(), vec![1, 0]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);

    assert_eq!(LastOnly.invoke(Context::new(), vec![4, 5]).await.unwrap(), 5);
    let err = LastOnly.invoke(Context::new(), vec![]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);

    let ctx = Context::new();
    ctx.cancel();
    let err = Sum.invoke(ctx, vec![1]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
}
