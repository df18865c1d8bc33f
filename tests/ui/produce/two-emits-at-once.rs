// Two emit futures cannot exist at once (each holds the emitter's exclusive borrow), so their
// order is always the order of the calls.
use beluga_core::stream;
use beluga_core::Context;

fn main() {
    let ctx = Context::new();
    let s = stream::produce(&ctx, async |mut e| {
        futures_util::join!(e.emit(1_u32), e.emit(2_u32));
        Ok(())
    });
    drop(s);
}
