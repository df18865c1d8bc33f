//! Allocations per chunk on the chat path: tool-call accumulation, `generate` and hooks add
//! no allocation per chunk beyond the amortized growth of the text and arguments they keep.
//!
//! The scripted turns are built before counting, so the chunks' own strings (which a provider
//! allocates as it parses) are not counted: what is counted is what the chat path adds. Each
//! case is drained with few and with many chunks; the difference, divided by the extra chunks,
//! is the cost per chunk. Run with `--nocapture` to see the figures.
//!
//! This binary installs a counting allocator that counts only the allocations of the thread
//! being measured, so the test harness's own threads cannot disturb the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use beluga_core::{Context, Event, Runnable};
use beluga_llm::schema::{ChatChunk, ChatRequest, FinishReason, Message};
use beluga_llm::scripted::{ScriptedModel, Turn};
use beluga_llm::{ChatModelExt, ChatStreamExt, Hooks, WithHooks};
use futures_util::StreamExt;
use serde_json::json;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn record() {
    // `try_with`: during thread teardown the flag may be gone; then this thread is not measured.
    if COUNTED.try_with(std::cell::Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: every method forwards to the system allocator unchanged and only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record();
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const FEW: usize = 1_000;
const MANY: usize = 100_000;

fn request() -> ChatRequest {
    ChatRequest::new("", vec![Message::user("go")])
}

/// A text turn of `n` word chunks (and the finish chunk).
fn text_model(n: usize) -> ScriptedModel {
    ScriptedModel::new([Turn::text(&"word ".repeat(n))])
}

/// A turn with one tool call whose arguments arrive in `n` fragments of 8 characters.
fn tool_model(n: usize) -> ScriptedModel {
    let padding = "x".repeat(n * 8 - 12);
    ScriptedModel::new([Turn::new().with_tool_call("c1", "echo", json!({ "t": padding }))])
}

/// Allocations made while running `run` on a model built by `model(n)` (built first, not
/// counted).
fn allocations<M>(
    rt: &tokio::runtime::Runtime,
    model: impl Fn(usize) -> M,
    n: usize,
    run: &impl AsyncFn(&M),
) -> usize {
    let model = model(n);
    rt.block_on(async {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        run(&model).await;
        ALLOCATIONS.load(Ordering::SeqCst) - before
    })
}

/// Allocations per extra chunk between `FEW` and `MANY` chunks.
fn per_chunk<M>(
    rt: &tokio::runtime::Runtime,
    name: &str,
    model: impl Fn(usize) -> M + Copy,
    run: &impl AsyncFn(&M),
) -> f64 {
    let few = allocations(rt, model, FEW, run);
    let many = allocations(rt, model, MANY, run);
    #[allow(clippy::cast_precision_loss)]
    let slope = (many.saturating_sub(few)) as f64 / (MANY - FEW) as f64;
    eprintln!(
        "{name:<44} {FEW} chunks: {few:>3} allocations, {MANY} chunks: {many:>3}, per chunk: {slope:.5}"
    );
    slope
}

/// Drains the stream; returns how many events it had.
async fn drain(
    stream: impl futures_util::Stream<Item = beluga_core::EventResult<ChatChunk>>,
) -> usize {
    let mut stream = std::pin::pin!(stream);
    let mut events = 0_usize;
    while let Some(item) = stream.next().await {
        item.unwrap();
        events += 1;
    }
    events
}

#[test]
fn no_allocation_per_chunk_on_the_chat_path() {
    COUNTED.with(|counted| counted.set(true));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    eprintln!(
        "size_of::<ChatChunk>() = {}, size_of::<Event<ChatChunk>>() = {}",
        size_of::<ChatChunk>(),
        size_of::<Event<ChatChunk>>()
    );

    let source = per_chunk(
        &rt,
        "text: scripted stream (the source)",
        text_model,
        &async |m| {
            drain(m.stream(Context::new(), request())).await;
        },
    );
    let accumulate = per_chunk(
        &rt,
        "text: + accumulate_tool_calls",
        text_model,
        &async |m| {
            drain(m.stream(Context::new(), request()).accumulate_tool_calls()).await;
        },
    );
    let generate = per_chunk(&rt, "text: generate", text_model, &async |m| {
        let response = m.generate(Context::new(), request()).await.unwrap();
        assert_eq!(response.finish_reason, FinishReason::Stop);
    });
    let hooked = per_chunk(
        &rt,
        "text: generate through hooks",
        |n| {
            text_model(n).with_hooks(
                Hooks::new()
                    .on_chunk(|_, c| assert!(!c.delta.is_empty() || c.finish_reason.is_some())),
            )
        },
        &async |m: &WithHooks<ScriptedModel, Hooks>| {
            m.generate(Context::new(), request()).await.unwrap();
        },
    );
    let tool_source = per_chunk(
        &rt,
        "tool call: scripted stream (the source)",
        tool_model,
        &async |m| {
            drain(m.stream(Context::new(), request())).await;
        },
    );
    let tool_accumulate = per_chunk(
        &rt,
        "tool call: + accumulate_tool_calls",
        tool_model,
        &async |m| {
            // The fragments are taken in: the finish chunk, the call and `done` come out.
            let events = drain(m.stream(Context::new(), request()).accumulate_tool_calls()).await;
            assert_eq!(events, 3);
        },
    );
    let tool_generate = per_chunk(&rt, "tool call: generate", tool_model, &async |m| {
        let response = m.generate(Context::new(), request()).await.unwrap();
        assert_eq!(response.tool_calls().len(), 1);
    });

    // Amortized growth of what is kept (the text, the arguments) is logarithmic in the
    // length: far below one allocation per thousand chunks.
    for (name, slope) in [
        ("source", source),
        ("accumulate", accumulate),
        ("generate", generate),
        ("hooks", hooked),
        ("tool source", tool_source),
        ("tool accumulate", tool_accumulate),
        ("tool generate", tool_generate),
    ] {
        assert!(slope < 0.001, "{name} allocates per chunk: {slope}");
    }
}
