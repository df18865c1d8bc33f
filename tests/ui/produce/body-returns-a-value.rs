// The body returns `Result<(), Error>`; a final value is emitted (`Event::done_with`), not
// returned.
use beluga_core::stream;
use beluga_core::Context;

fn main() {
    let ctx = Context::new();
    let s = stream::produce(&ctx, async |mut e| {
        e.emit(1_u32).await;
        Ok(2_u32)
    });
    drop(s);
}
