//! `Event<T>`: kinds, constructors, payload access, metadata and size.

use beluga_core::{Error, ErrorCode, Event, EventKind, EventResult, EventType, Meta, MetaValue};

#[test]
fn event_of_u64_is_at_most_32_bytes() {
    assert!(size_of::<Event<u64>>() <= 32, "{}", size_of::<Event<u64>>());
    // The item type of every stream must not grow either: the error is one pointer wide.
    assert_eq!(size_of::<Error>(), size_of::<usize>());
    assert_eq!(size_of::<Meta>(), size_of::<usize>());
    assert!(
        size_of::<EventResult<u64>>() <= 32,
        "{}",
        size_of::<EventResult<u64>>()
    );
    println!(
        "Event<u64> = {} bytes, Result<Event<u64>, Error> = {} bytes",
        size_of::<Event<u64>>(),
        size_of::<EventResult<u64>>()
    );
}

#[test]
fn each_constructor_makes_its_kind() {
    let cases: Vec<(Event<&str>, EventType)> = vec![
        (Event::data("d"), EventType::Data),
        (Event::tool_call("c"), EventType::ToolCall),
        (Event::tool_result("r"), EventType::ToolResult),
        (Event::handoff("h"), EventType::Handoff),
        (Event::done(), EventType::Done),
        (Event::done_with("v"), EventType::Done),
        (Event::error(Error::cancelled()), EventType::Error),
    ];
    for (event, ty) in cases {
        assert_eq!(event.event_type(), ty, "{event:?}");
        assert_eq!(event.kind().event_type(), ty);
        assert!(event.meta().is_empty());
    }
    assert_eq!(
        [
            EventType::Data,
            EventType::ToolCall,
            EventType::ToolResult,
            EventType::Handoff,
            EventType::Done,
            EventType::Error
        ]
        .map(EventType::as_str),
        [
            "data",
            "tool_call",
            "tool_result",
            "handoff",
            "done",
            "error"
        ]
    );
}

#[test]
fn exhaustive_match_sees_payloads() {
    fn label(ev: Event<u32>) -> String {
        match ev.into_kind() {
            EventKind::Data(n) => format!("data {n}"),
            EventKind::ToolCall(n) => format!("call {n}"),
            EventKind::ToolResult(n) => format!("result {n}"),
            EventKind::Handoff(n) => format!("handoff {n}"),
            EventKind::Done(Some(n)) => format!("done {n}"),
            EventKind::Done(None) => "done".into(),
            EventKind::Error(e) => format!("error {}", e.code()),
        }
    }
    assert_eq!(label(Event::data(1)), "data 1");
    assert_eq!(label(Event::tool_call(2)), "call 2");
    assert_eq!(label(Event::tool_result(3)), "result 3");
    assert_eq!(label(Event::handoff(4)), "handoff 4");
    assert_eq!(label(Event::done_with(5)), "done 5");
    assert_eq!(label(Event::done()), "done");
    assert_eq!(
        label(Event::error(Error::new(ErrorCode::ToolFailed, "x"))),
        "error tool_failed"
    );
}

#[test]
fn payload_access_and_map_keep_kind_and_meta() {
    let ev = Event::tool_result(20).with_trace_id("t-1").map(|n| n + 1);
    assert_eq!(ev.event_type(), EventType::ToolResult);
    assert_eq!(ev.payload(), Some(&21));
    assert_eq!(ev.meta().trace_id(), Some("t-1"));

    assert_eq!(Event::done_with(1).map(|n| n * 3).into_payload(), Some(3));
    assert_eq!(Event::<u8>::done().map(|n| n * 3).into_payload(), None);
    let err = Event::<u8>::error(Error::cancelled()).map(|n| n * 3);
    assert_eq!(err.as_error().map(Error::code), Some(ErrorCode::Cancelled));
    assert_eq!(err.payload(), None);
}

#[test]
fn metadata_is_free_when_empty_and_typed_when_set() {
    let plain = Event::data(1_u64);
    assert!(plain.meta().is_empty());
    assert_eq!(plain.meta().len(), 0);

    let ev = Event::data(1_u64)
        .with_trace_id("abc")
        .with_tokens(120, 7)
        .with_cost_usd(0.25)
        .with_meta("cached", true);
    let meta = ev.meta();
    assert_eq!(meta.trace_id(), Some("abc"));
    assert_eq!(meta.input_tokens(), Some(120));
    assert_eq!(meta.output_tokens(), Some(7));
    assert_eq!(meta.cost_usd(), Some(0.25));
    assert_eq!(meta.get("cached"), Some(&MetaValue::Bool(true)));
    assert_eq!(meta.len(), 5);

    let mut meta = meta.clone();
    for key in [
        "trace_id",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "cached",
    ] {
        assert!(meta.remove(key).is_some(), "{key}");
    }
    assert!(meta.is_empty());
    assert_eq!(meta, Meta::new());
    // The clone was a copy: the event's own metadata is untouched, and an event clones whole.
    assert_eq!(ev.meta().len(), 5);
    assert_eq!(ev.clone(), ev);
    assert_eq!(ev.clone().meta().trace_id(), Some("abc"));
    assert!(plain.clone().meta().is_empty());
}

#[test]
fn debug_reads_like_the_kind() {
    assert_eq!(format!("{:?}", Event::data(1)), "Data(1)");
    let with_meta = format!("{:?}", Event::data(1).with_trace_id("t"));
    assert!(with_meta.contains("trace_id"), "{with_meta}");
}
