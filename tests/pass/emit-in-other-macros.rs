use beluga_core::{stream_producer, Context, EventResult, EventStreamExt};
use futures_util::Stream;

// `emit!` inside `tokio::select!` arms, `if`/`match` arms, and `emit_all!`.
#[stream_producer]
fn relay(ctx: Context, mut rx: tokio::sync::mpsc::Receiver<u32>) -> impl Stream<Item = EventResult<u32>> {
    loop {
        tokio::select! {
            Some(v) = rx.recv() => emit!(v),
            else => break,
        }
    }
    match rx.try_recv() {
        Ok(v) => emit!(v),
        Err(_) => emit!(0),
    }
    let inner = beluga_core::stream::iter([7, 8]);
    let final_value = emit_all!(inner);
    assert!(final_value.is_none());
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    drop(tx);
    let data: Vec<u32> = relay(Context::new(), rx)
        .collect_events()
        .await
        .data()
        .copied()
        .collect();
    assert_eq!(data, [1, 2, 0, 7, 8]);
}
