// Using the emitter after the stream (and its body) is gone would write into freed memory: the
// emitter cannot get out of the body to be used there.
use beluga_core::stream::{self, Emitter};
use beluga_core::Context;

async fn after(ctx: Context) {
    let mut kept: Option<Emitter<'_, u32>> = None;
    let s = stream::produce(&ctx, async |e| {
        kept = Some(e);
        Ok(())
    });
    drop(s);
    kept.unwrap().emit(1).await;
}

fn main() {
    drop(after(Context::new()));
}
