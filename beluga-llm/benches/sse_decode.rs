//! Per-chunk cost of turning a provider's SSE bytes into chat chunk events, against
//! async-openai parsing the same bytes in the same run.
//!
//! The input is a 1,000-chunk OpenAI chat-completions answer as OpenAI writes it (`id`,
//! `object`, `created`, `model`, `service_tier`, `system_fingerprint`, one choice with a text
//! delta, `logprobs` and `finish_reason` null, `usage` null; every tenth delta has a newline,
//! which JSON escapes), then the finish chunk, a usage-only chunk and `data: [DONE]`; one
//! `Bytes` per event, as tokens arrive from the network. The bytes are built once, outside
//! the timed part; a run of N chunks decodes N/1000 answers. Every case sums the lengths of the
//! text deltas it decoded, and the sum is checked.
//!
//! - `framing`: eventsource-stream alone (the SSE framing both sides use), counting events:
//!   the floor under every case.
//! - `baseline`: the practical limit, written by hand: the same framing, then `serde_json`
//!   into a minimal borrowed struct and a `ChatChunk` per text delta, in a plain loop (no
//!   producer, no idle timeout, no tool calls, usage or errors).
//! - `beluga`: `beluga_llm::openai::decode`, the provider's own path (idle timeout armed,
//!   cancellation checked), consumed with `next().await`.
//! - `async_openai`: what async-openai's client does with each event (its `stream` function
//!   without the spawned task and channel it adds): the same framing, `[DONE]` ends the
//!   stream, then `serde_json::from_str::<CreateChatCompletionStreamResponse>`.
//! - `beluga_anthropic`: `beluga_llm::anthropic::decode` on the same answer in Anthropic's
//!   Messages shape (`content_block_delta` events), for reference.
//!
//! ```text
//! cargo bench -p beluga-llm --bench sse_decode -- --items 200000   # the table
//! <bench binary> --case beluga --items 100000                      # one case, once (callgrind.sh)
//! ```
//!
//! The summary gives the allocations per chunk of each case's last run (a counting global
//! allocator) and the budget's verdict: beluga no slower than async-openai, with fewer
//! allocations. The harness is beluga-core's (`beluga-core/benches/support`), so the flags and
//! the output are the same as the other benches'.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use async_openai::types::chat::CreateChatCompletionStreamResponse;
use beluga_core::Context;
use beluga_llm::schema::ChatChunk;
use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::json;
use tokio::runtime::Runtime;

#[path = "../../beluga-core/benches/support/mod.rs"]
mod support;

use support::{Allocated, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

static ALLOCATED: Allocated<5> = Allocated::new();

/// Chunks per answer.
const ANSWER: u64 = 1_000;

#[derive(Clone, Copy, PartialEq, Debug)]
enum SseCase {
    Framing,
    Baseline,
    Beluga,
    AsyncOpenai,
    BelugaAnthropic,
}

impl support::Case for SseCase {
    const BENCH: &'static str = "sse_decode";
    const ALL: &'static [Self] = &[
        SseCase::Framing,
        SseCase::Baseline,
        SseCase::Beluga,
        SseCase::AsyncOpenai,
        SseCase::BelugaAnthropic,
    ];
    const BASELINE: Self = SseCase::Baseline;

    fn name(self) -> &'static str {
        match self {
            SseCase::Framing => "framing",
            SseCase::Baseline => "baseline",
            SseCase::Beluga => "beluga",
            SseCase::AsyncOpenai => "async_openai",
            SseCase::BelugaAnthropic => "beluga_anthropic",
        }
    }

    fn unit(self) -> &'static str {
        "chunk"
    }

    fn detail(self) -> Option<String> {
        let (count, per) = ALLOCATED.of(self);
        Some(format!(
            "allocations={count} allocations_per_chunk={per:.2}"
        ))
    }

    fn expected(self, n: u64) -> u64 {
        match self {
            // Every event: the text deltas, the finish, the usage and `[DONE]`.
            SseCase::Framing => answers(n).map(|size| size + 3).sum(),
            _ => answers(n).map(text_length).sum(),
        }
    }

    fn run(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        let inputs: Vec<(u64, &'static [Bytes])> = answers(n)
            .map(|size| {
                (
                    size,
                    if self == SseCase::BelugaAnthropic {
                        anthropic(size)
                    } else {
                        openai(size)
                    },
                )
            })
            .collect();
        ALLOCATED.measure(self, rt, n, async move {
            let mut sum = 0;
            for (_, events) in inputs {
                sum += match self {
                    SseCase::Framing => framing(events).await,
                    SseCase::Baseline => baseline(events).await,
                    SseCase::Beluga => beluga(events).await,
                    SseCase::AsyncOpenai => async_openai(events).await,
                    SseCase::BelugaAnthropic => beluga_anthropic(events).await,
                };
            }
            sum
        })
    }

    fn summary(of: &dyn Fn(Self) -> f64, out: &mut String) {
        support::budgets(
            &[(
                "beluga / async_openai (time)",
                SseCase::Beluga,
                SseCase::AsyncOpenai,
                1.0,
            )],
            of,
            out,
        );
        support::ratios(
            &[
                ("beluga / baseline", SseCase::Beluga, SseCase::Baseline),
                (
                    "async_openai / baseline",
                    SseCase::AsyncOpenai,
                    SseCase::Baseline,
                ),
                ("framing / baseline", SseCase::Framing, SseCase::Baseline),
                (
                    "beluga_anthropic / beluga",
                    SseCase::BelugaAnthropic,
                    SseCase::Beluga,
                ),
            ],
            of,
            out,
        );
        for &case in Self::ALL {
            let (_, per) = ALLOCATED.of(case);
            let _ = writeln!(out, "{}: {per:.2} allocations per chunk", case.name());
        }
        let (_, ours) = ALLOCATED.of(SseCase::Beluga);
        let (_, theirs) = ALLOCATED.of(SseCase::AsyncOpenai);
        let verdict = if ours < theirs { "met" } else { "MISSED" };
        let _ = writeln!(
            out,
            "allocations per chunk, beluga vs async_openai: {ours:.2} vs {theirs:.2} (budget: fewer: {verdict})"
        );
    }
}

fn main() -> ExitCode {
    support::main::<SseCase>()
}

/// The sizes of the answers a run of `n` chunks decodes: 1,000 chunks each, the last one
/// shorter.
fn answers(n: u64) -> impl Iterator<Item = u64> {
    (0..n.div_ceil(ANSWER)).map(move |i| (n - i * ANSWER).min(ANSWER))
}

/// The text of delta `i`.
fn delta(i: u64) -> &'static str {
    if i % 10 == 9 { ".\n" } else { " tok" }
}

/// The sum of the text lengths of an answer of `size` deltas.
fn text_length(size: u64) -> u64 {
    (0..size).map(|i| delta(i).len() as u64).sum()
}

/// The answer of `size` deltas in OpenAI's shape, one `Bytes` per event, built once.
fn openai(size: u64) -> &'static [Bytes] {
    static FULL: OnceLock<Vec<Bytes>> = OnceLock::new();
    static SHORT: OnceLock<(u64, Vec<Bytes>)> = OnceLock::new();
    let build = || {
        let chunk = |delta: serde_json::Value, finish: Option<&str>| {
            json!({
                "id": "chatcmpl-BfXfKHaDS1rwiCGnqzgmc9xiDt8iK",
                "object": "chat.completion.chunk",
                "created": 1_749_142_930,
                "model": "gpt-4o-mini-2024-07-18",
                "service_tier": "default",
                "system_fingerprint": "fp_34a54ae93c",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
                "usage": null,
            })
        };
        let mut events: Vec<String> = (0..size)
            .map(|i| chunk(json!({"content": delta(i)}), None).to_string())
            .collect();
        events.push(chunk(json!({}), Some("stop")).to_string());
        events.push(
            json!({
                "id": "chatcmpl-BfXfKHaDS1rwiCGnqzgmc9xiDt8iK",
                "object": "chat.completion.chunk",
                "created": 1_749_142_930,
                "model": "gpt-4o-mini-2024-07-18",
                "service_tier": "default",
                "system_fingerprint": "fp_34a54ae93c",
                "choices": [],
                "usage": {"prompt_tokens": 25, "completion_tokens": size, "total_tokens": 25 + size,
                          "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                          "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
            })
            .to_string(),
        );
        let mut sse: Vec<String> = events
            .into_iter()
            .map(|e| format!("data: {e}\n\n"))
            .collect();
        sse.push("data: [DONE]\n\n".to_owned());
        slices(&sse)
    };
    cached(size, &FULL, &SHORT, build)
}

/// The same answer in Anthropic's Messages shape.
fn anthropic(size: u64) -> &'static [Bytes] {
    static FULL: OnceLock<Vec<Bytes>> = OnceLock::new();
    static SHORT: OnceLock<(u64, Vec<Bytes>)> = OnceLock::new();
    let build = || {
        let event =
            |name: &str, value: serde_json::Value| format!("event: {name}\ndata: {value}\n\n");
        let mut sse = vec![
            event(
                "message_start",
                json!({"type": "message_start", "message": {
                "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
                "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": null,
                "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
            ),
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ),
        ];
        sse.extend((0..size).map(|i| {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": delta(i)}}),
            )
        }));
        sse.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        sse.push(event(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": size}}),
        ));
        sse.push(event("message_stop", json!({"type": "message_stop"})));
        slices(&sse)
    };
    cached(size, &FULL, &SHORT, build)
}

/// One shared buffer, sliced per event: cloning a slice in the timed part is a reference
/// count, not an allocation.
fn slices(events: &[String]) -> Vec<Bytes> {
    let all = Bytes::from(events.concat());
    let mut at = 0;
    events
        .iter()
        .map(|e| {
            let slice = all.slice(at..at + e.len());
            at += e.len();
            slice
        })
        .collect()
}

/// The full-size answer, or the one shorter answer a run may end with.
fn cached(
    size: u64,
    full: &'static OnceLock<Vec<Bytes>>,
    short: &'static OnceLock<(u64, Vec<Bytes>)>,
    build: impl FnOnce() -> Vec<Bytes>,
) -> &'static [Bytes] {
    if size == ANSWER {
        return full.get_or_init(build);
    }
    let (cached_size, events) = short.get_or_init(|| (size, build()));
    assert_eq!(*cached_size, size, "one short answer size per process");
    events
}

fn body(
    events: &'static [Bytes],
) -> impl futures_core::Stream<Item = Result<Bytes, Infallible>> + Send {
    futures_util::stream::iter(events.iter().cloned().map(Ok))
}

async fn framing(events: &'static [Bytes]) -> u64 {
    let mut sse = std::pin::pin!(body(events).eventsource());
    let mut count = 0;
    while let Some(event) = sse.next().await {
        black_box(event.expect("valid SSE"));
        count += 1;
    }
    count
}

/// The hand-written limit: framing, a minimal borrowed parse, a chunk per delta.
async fn baseline(events: &'static [Bytes]) -> u64 {
    #[derive(serde::Deserialize)]
    struct Chunk<'a> {
        #[serde(borrow)]
        choices: Vec<Choice<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Choice<'a> {
        #[serde(borrow)]
        delta: Delta<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Delta<'a> {
        #[serde(borrow, default)]
        content: Option<std::borrow::Cow<'a, str>>,
    }
    let mut sse = std::pin::pin!(body(events).eventsource());
    let mut sum = 0;
    while let Some(event) = sse.next().await {
        let event = event.expect("valid SSE");
        if event.data == "[DONE]" {
            break;
        }
        let chunk: Chunk<'_> = serde_json::from_str(&event.data).expect("valid JSON");
        if let Some(content) = chunk
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.delta.content)
        {
            let chunk = black_box(ChatChunk::text(content.into_owned()));
            sum += chunk.delta.len() as u64;
        }
    }
    sum
}

async fn beluga(events: &'static [Bytes]) -> u64 {
    let ctx = Context::new();
    let mut chunks = std::pin::pin!(beluga_llm::openai::decode(
        &ctx,
        body(events),
        Duration::from_secs(60)
    ));
    let mut sum = 0;
    while let Some(event) = chunks.next().await {
        let event = black_box(event.expect("a valid answer"));
        if let Some(chunk) = event.payload() {
            sum += chunk.delta.len() as u64;
        }
    }
    sum
}

async fn beluga_anthropic(events: &'static [Bytes]) -> u64 {
    let ctx = Context::new();
    let mut chunks = std::pin::pin!(beluga_llm::anthropic::decode(
        &ctx,
        body(events),
        Duration::from_secs(60)
    ));
    let mut sum = 0;
    while let Some(event) = chunks.next().await {
        let event = black_box(event.expect("a valid answer"));
        if let Some(chunk) = event.payload() {
            sum += chunk.delta.len() as u64;
        }
    }
    sum
}

async fn async_openai(events: &'static [Bytes]) -> u64 {
    let mut sse = std::pin::pin!(body(events).eventsource());
    let mut sum = 0;
    while let Some(event) = sse.next().await {
        let event = event.expect("valid SSE");
        if event.data == "[DONE]" {
            break;
        }
        if event.event == "keepalive" {
            continue;
        }
        let response: CreateChatCompletionStreamResponse =
            black_box(serde_json::from_str(&event.data).expect("valid JSON"));
        if let Some(content) = response
            .choices
            .first()
            .and_then(|c| c.delta.content.as_ref())
        {
            sum += content.len() as u64;
        }
    }
    sum
}
