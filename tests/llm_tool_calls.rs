//! Tool-call accumulation: split arguments, interleaved parallel calls, an index reused for a
//! new id, invalid JSON, and the event order around them; the same rules in `generate`.

use beluga_core::{Error, ErrorCode, Event, EventKind, EventResult, EventStreamExt};
use beluga_llm::schema::{ChatChunk, FinishReason, ToolCall, ToolCallDelta, Usage};
use beluga_llm::{ChatStreamExt, ToolCallAccumulator};
use futures_util::StreamExt;
use proptest::prelude::*;
use serde_json::{Value, json};

fn pieces(deltas: impl IntoIterator<Item = ToolCallDelta>) -> ChatChunk {
    let mut chunk = ChatChunk::default();
    chunk.tool_call_deltas.extend(deltas);
    chunk
}

fn events(chunks: Vec<ChatChunk>) -> Vec<EventResult<ChatChunk>> {
    chunks
        .into_iter()
        .map(|c| Ok(Event::data(c)))
        .chain([Ok(Event::done())])
        .collect()
}

/// The accumulated stream as short descriptions: `text:..`, `call:id:name:args`,
/// `error:message`, `finish:reason`, `done`, `Err:code`.
async fn accumulate(items: Vec<EventResult<ChatChunk>>) -> Vec<String> {
    futures_util::stream::iter(items)
        .accumulate_tool_calls()
        .map(|item| describe(&item))
        .collect()
        .await
}

fn describe(item: &EventResult<ChatChunk>) -> String {
    let event = match item {
        Ok(event) => event,
        Err(err) => return format!("Err:{}", err.code()),
    };
    match event.kind() {
        EventKind::Data(chunk) => {
            assert!(
                chunk.tool_call_deltas.is_empty(),
                "a data chunk kept its pieces: {chunk:?}"
            );
            let mut parts = Vec::new();
            if !chunk.delta.is_empty() {
                parts.push(format!("text:{}", chunk.delta));
            }
            if let Some(reason) = &chunk.finish_reason {
                parts.push(format!("finish:{reason}"));
            }
            if let Some(usage) = &chunk.usage {
                parts.push(format!("usage:{}", usage.total_tokens()));
            }
            parts.join(",")
        }
        EventKind::ToolCall(chunk) => {
            let call = chunk
                .tool_call
                .as_ref()
                .expect("a tool_call event holds its call");
            format!("call:{}:{}:{}", call.id, call.name, call.arguments)
        }
        EventKind::Error(err) => format!("error:{}", err.message()),
        EventKind::Done(_) => "done".to_owned(),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn arguments_split_across_chunks_become_one_call() {
    let out = accumulate(events(vec![
        ChatChunk::text("Checking."),
        pieces([ToolCallDelta::start(0, "call_1", "get_weather")]),
        pieces([ToolCallDelta::arguments(0, "{\"ci")]),
        pieces([ToolCallDelta::arguments(0, "ty\": \"Os")]),
        pieces([ToolCallDelta::arguments(0, "")]),
        pieces([ToolCallDelta::arguments(0, "lo\", \"days\": [1,")]),
        pieces([ToolCallDelta::arguments(0, " 2]}")]),
        ChatChunk::finished(FinishReason::ToolCalls).with_usage(Usage::new(10, 5)),
    ]))
    .await;
    assert_eq!(
        out,
        [
            "text:Checking.",
            "finish:tool_calls,usage:15",
            r#"call:call_1:get_weather:{"city":"Oslo","days":[1,2]}"#,
            "done",
        ]
    );
}

#[tokio::test]
async fn interleaved_parallel_calls_keep_their_own_arguments_and_start_order() {
    // Index 1 starts after index 0 but their pieces alternate, sometimes in one chunk.
    let out = accumulate(events(vec![
        pieces([ToolCallDelta::start(0, "a", "get_weather")]),
        pieces([
            ToolCallDelta::arguments(0, "{\"city\":"),
            ToolCallDelta::start(1, "b", "get_time"),
        ]),
        pieces([ToolCallDelta::arguments(1, "{\"tz\":")]),
        pieces([ToolCallDelta::arguments(0, "\"Oslo\"}")]),
        pieces([ToolCallDelta::arguments(1, "\"CET\"}")]),
        ChatChunk::finished(FinishReason::ToolCalls),
    ]))
    .await;
    assert_eq!(
        out,
        [
            "finish:tool_calls",
            r#"call:a:get_weather:{"city":"Oslo"}"#,
            r#"call:b:get_time:{"tz":"CET"}"#,
            "done",
        ]
    );
}

#[tokio::test]
async fn a_reused_index_with_a_new_id_completes_the_call_before_it() {
    // A gateway that sends every call at index 0, told apart by id only.
    let out = accumulate(events(vec![
        pieces([ToolCallDelta::start(0, "a", "add").with_arguments("{\"x\":")]),
        pieces([ToolCallDelta::arguments(0, "1}")]),
        ChatChunk::text("and").with_tool_call_delta(ToolCallDelta::start(0, "b", "mul")),
        pieces([ToolCallDelta::arguments(0, "{\"y\":2}")]),
        // The same id again is the same call, not a new one.
        pieces([ToolCallDelta {
            index: 0,
            id: Some("b".into()),
            ..ToolCallDelta::default()
        }]),
        ChatChunk::finished(FinishReason::ToolCalls),
    ]))
    .await;
    assert_eq!(
        out,
        [
            "text:and",
            r#"call:a:add:{"x":1}"#,
            "finish:tool_calls",
            r#"call:b:mul:{"y":2}"#,
            "done",
        ]
    );
}

#[tokio::test]
async fn invalid_json_is_an_error_event_naming_the_call_and_the_stream_goes_on() {
    let out = accumulate(events(vec![
        pieces([ToolCallDelta::start(0, "bad", "lookup").with_arguments("{\"q\": \"rust")]),
        pieces([ToolCallDelta::start(1, "good", "now").with_arguments("{}")]),
        ChatChunk::finished(FinishReason::ToolCalls),
    ]))
    .await;
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(out[0], "finish:tool_calls");
    assert!(
        out[1]
            .starts_with("error:the arguments of tool call `lookup` (id `bad`) are not valid JSON"),
        "{}",
        out[1]
    );
    assert!(
        out[1].ends_with(r#": {"q": "rust"#),
        "shows the text: {}",
        out[1]
    );
    assert_eq!(out[2], "call:good:now:{}");
    assert_eq!(out[3], "done");

    // The reported error is `invalid_input` on the tool-call operation.
    let stream = futures_util::stream::iter(events(vec![pieces([ToolCallDelta::start(
        0, "bad", "lookup",
    )
    .with_arguments("[1,")])]));
    let collected = stream.accumulate_tool_calls().collect_events().await;
    let err = collected.events.iter().find_map(Event::as_error).unwrap();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert_eq!(err.op(), "llm.tool_call");
}

#[tokio::test]
async fn a_call_without_a_name_is_an_error_and_empty_arguments_are_an_empty_object() {
    let out = accumulate(events(vec![
        pieces([ToolCallDelta::arguments(0, "{}")]),
        pieces([ToolCallDelta::start(1, "c", "now")]),
        ChatChunk::finished(FinishReason::ToolCalls),
    ]))
    .await;
    assert_eq!(
        out,
        [
            "finish:tool_calls",
            "error:tool call 0 (id ``) has no tool name",
            "call:c:now:{}",
            "done"
        ]
    );
}

#[tokio::test]
async fn names_in_fragments_are_joined_ids_may_come_late_repeats_are_harmless() {
    let out = accumulate(events(vec![
        pieces([ToolCallDelta {
            index: 0,
            name: Some("get_".into()),
            ..ToolCallDelta::default()
        }]),
        pieces([ToolCallDelta {
            index: 0,
            id: Some("late".into()),
            name: Some("weather".into()),
            arguments: "{}".into(),
        }]),
        pieces([ToolCallDelta::start(1, "r", "now")]),
        pieces([ToolCallDelta::start(1, "r", "now")]),
        ChatChunk::finished(FinishReason::ToolCalls),
    ]))
    .await;
    assert_eq!(
        out,
        [
            "finish:tool_calls",
            "call:late:get_weather:{}",
            "call:r:now:{}",
            "done"
        ]
    );
}

#[tokio::test]
async fn calls_without_a_finish_reason_complete_at_done_or_at_the_end() {
    let with_done = accumulate(events(vec![pieces([
        ToolCallDelta::start(0, "a", "now").with_arguments("{}")
    ])]))
    .await;
    assert_eq!(with_done, ["call:a:now:{}", "done"]);

    let without_done = accumulate(vec![Ok(Event::data(pieces([ToolCallDelta::start(
        0, "a", "now",
    )
    .with_arguments("{}")])))])
    .await;
    assert_eq!(without_done, ["call:a:now:{}"]);
}

#[tokio::test]
async fn a_terminal_error_drops_the_calls_in_progress() {
    let out = accumulate(vec![
        Ok(Event::data(pieces([ToolCallDelta::start(0, "a", "now")]))),
        Err(Error::new(ErrorCode::ProviderUnavailable, "reset")),
        // A misbehaving source that goes on after its terminal item is not polled again.
        Ok(Event::data(ChatChunk::text("late"))),
    ])
    .await;
    assert_eq!(out, ["Err:provider_unavailable"]);
}

#[tokio::test]
async fn other_events_pass_through_in_place() {
    let items = vec![
        Ok(Event::data(ChatChunk::text("a"))),
        Ok(Event::handoff(ChatChunk::text("agent-b"))),
        Ok(Event::error(Error::new(ErrorCode::GuardBlocked, "flagged"))),
        Ok(Event::tool_result(ChatChunk::text("r"))),
        Ok(Event::done_with(ChatChunk::text("final"))),
    ];
    let out: Vec<_> = futures_util::stream::iter(items.clone())
        .accumulate_tool_calls()
        .collect()
        .await;
    assert_eq!(out, items);
}

#[tokio::test]
async fn accumulating_twice_is_the_same_as_once() {
    let chunks = vec![
        ChatChunk::text("x"),
        pieces([ToolCallDelta::start(0, "a", "add").with_arguments("{\"x\":")]),
        pieces([ToolCallDelta::start(1, "b", "now")]),
        pieces([ToolCallDelta::arguments(0, "1}")]),
        ChatChunk::finished(FinishReason::ToolCalls),
    ];
    let once: Vec<_> = futures_util::stream::iter(events(chunks.clone()))
        .accumulate_tool_calls()
        .collect()
        .await;
    let twice: Vec<_> = futures_util::stream::iter(events(chunks))
        .accumulate_tool_calls()
        .accumulate_tool_calls()
        .collect()
        .await;
    assert_eq!(once, twice);
    assert_eq!(once.len(), 5);
}

#[tokio::test]
async fn collect_response_applies_the_same_rules() {
    let chunks = vec![
        ChatChunk::text("Two "),
        pieces([ToolCallDelta::start(0, "a", "add").with_arguments("{\"x\":")]),
        ChatChunk::text("calls.").with_tool_call_delta(ToolCallDelta::start(1, "b", "now")),
        pieces([ToolCallDelta::arguments(0, "1}")]),
        ChatChunk::finished(FinishReason::ToolCalls).with_usage(Usage::new(7, 0)),
        ChatChunk::default().with_usage(Usage::new(0, 9)),
    ];
    let response = futures_util::stream::iter(events(chunks.clone()))
        .collect_response()
        .await
        .unwrap();
    assert_eq!(response.text(), "Two calls.");
    assert_eq!(
        response.tool_calls(),
        [
            ToolCall::new("a", "add", json!({"x": 1})),
            ToolCall::new("b", "now", json!({}))
        ]
    );
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.usage, Some(Usage::new(7, 9)));

    // From the assembled stream, the same response.
    let assembled = futures_util::stream::iter(events(chunks))
        .accumulate_tool_calls()
        .collect_response()
        .await
        .unwrap();
    assert_eq!(assembled, response);

    // Invalid JSON fails the whole answer, naming the call.
    let err = futures_util::stream::iter(events(vec![
        pieces([ToolCallDelta::start(0, "a", "add").with_arguments("{\"x\":")]),
        ChatChunk::finished(FinishReason::ToolCalls),
    ]))
    .collect_response()
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(err.message().contains("`add` (id `a`)"), "{err}");
}

/// Splits `text` at the given points, in thousandths of its length, on character boundaries.
fn split_at_permille(text: &str, cuts: &[usize]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut at: Vec<usize> = cuts.iter().map(|p| p * chars.len() / 1000).collect();
    at.push(0);
    at.push(chars.len());
    at.sort_unstable();
    at.windows(2)
        .map(|w| chars[w[0]..w[1]].iter().collect())
        .collect()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9 \"\\\\é😀{}\\[\\],:]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// However two calls' arguments are cut and interleaved, each call comes out whole, with
    /// exactly its arguments, in the order the calls started.
    #[test]
    fn any_split_and_interleaving_reassembles_both_calls(
        a in json_value(),
        b in json_value(),
        cuts_a in prop::collection::vec(0..=1000usize, 0..8),
        cuts_b in prop::collection::vec(0..=1000usize, 0..8),
        order in prop::collection::vec(any::<bool>(), 0..20),
    ) {
        let mut frags_a = split_at_permille(&a.to_string(), &cuts_a).into_iter();
        let mut frags_b = split_at_permille(&b.to_string(), &cuts_b).into_iter();
        let mut calls = ToolCallAccumulator::new();
        calls.push_delta(ToolCallDelta::start(0, "a", "first"));
        calls.push_delta(ToolCallDelta::start(1, "b", "second"));
        let mut choices = order.into_iter();
        loop {
            let pick_a = choices.next().unwrap_or(true);
            let next = if pick_a {
                frags_a.next().map(|f| (0, f)).or_else(|| frags_b.next().map(|f| (1, f)))
            } else {
                frags_b.next().map(|f| (1, f)).or_else(|| frags_a.next().map(|f| (0, f)))
            };
            let Some((index, fragment)) = next else { break };
            let mut chunk = ChatChunk::default().with_tool_call_delta(ToolCallDelta::arguments(index, fragment));
            calls.push(&mut chunk);
        }
        prop_assert!(calls.pop_completed().is_none());
        calls.push(&mut ChatChunk::finished(FinishReason::ToolCalls));
        let first = calls.pop_completed().unwrap().unwrap();
        let second = calls.pop_completed().unwrap().unwrap();
        prop_assert_eq!(first, ToolCall::new("a", "first", a));
        prop_assert_eq!(second, ToolCall::new("b", "second", b));
        prop_assert!(calls.pop_completed().is_none());
    }
}
