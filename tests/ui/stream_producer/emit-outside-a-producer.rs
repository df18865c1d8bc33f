use beluga_core::{emit, emit_all};

fn main() {
    emit!(1);
    emit_all!(other_stream);
}
