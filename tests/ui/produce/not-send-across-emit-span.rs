// The stream is `Send` only when the body is: an `Rc` held across an `.await` makes it not
// `Send`, and spawning it says so, pointing at the `Rc`.
use std::rc::Rc;

use beluga_core::stream;
use beluga_core::{Context, EventStreamExt};

fn main() {
    let ctx = Context::new();
    let s = stream::produce(&ctx, async |mut e| {
        let shared = Rc::new(1_u32);
        e.emit(*shared).await;
        e.emit(*shared + 1).await;
        Ok(())
    });
    drop(tokio::spawn(s.collect_events()));
}
