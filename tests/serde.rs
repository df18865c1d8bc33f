//! Beluga's JSON shape for events, kinds and errors, round-trip tested.

use std::time::Duration;

use beluga_core::{Error, ErrorCode, Event, EventType, Meta, MetaValue};
use serde_json::{Value, json};

fn round_trip<T>(event: &Event<T>) -> Event<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let text = serde_json::to_string(event).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn data_event_has_type_payload_and_meta() {
    let ev = Event::data("Hel".to_owned())
        .with_trace_id("t-1")
        .with_tokens(12, 1)
        .with_cost_usd(0.5);
    let value = serde_json::to_value(&ev).unwrap();
    assert_eq!(
        value,
        json!({
            "type": "data",
            "payload": "Hel",
            "meta": {"cost_usd": 0.5, "input_tokens": 12, "output_tokens": 1, "trace_id": "t-1"},
        })
    );
    assert_eq!(round_trip(&ev), ev);
}

#[test]
fn every_kind_round_trips() {
    let events: Vec<Event<Value>> = vec![
        Event::data(json!({"delta": "x"})),
        Event::tool_call(json!({"name": "search", "args": {"q": "rust"}})),
        Event::tool_result(json!([1, 2, 3])),
        Event::handoff(json!("billing")),
        Event::done(),
        Event::done_with(json!("final answer")),
        Event::error(Error::new(ErrorCode::ToolFailed, "lookup failed").with_op("tool.lookup")),
    ];
    for ev in &events {
        assert_eq!(
            &round_trip(ev),
            ev,
            "{}",
            serde_json::to_string(ev).unwrap()
        );
    }
    let shapes: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(shapes[4], json!({"type": "done"}));
    assert_eq!(
        shapes[5],
        json!({"type": "done", "payload": "final answer"})
    );
    assert_eq!(
        shapes[6],
        json!({"type": "error", "error": {"code": "tool_failed", "op": "tool.lookup", "message": "lookup failed"}})
    );
}

#[test]
fn event_type_serializes_as_its_name() {
    let names: Vec<Value> = [
        EventType::Data,
        EventType::ToolCall,
        EventType::ToolResult,
        EventType::Handoff,
        EventType::Done,
        EventType::Error,
    ]
    .iter()
    .map(|t| serde_json::to_value(t).unwrap())
    .collect();
    assert_eq!(
        names,
        [
            json!("data"),
            json!("tool_call"),
            json!("tool_result"),
            json!("handoff"),
            json!("done"),
            json!("error")
        ]
    );
    let back: EventType = serde_json::from_value(json!("tool_result")).unwrap();
    assert_eq!(back, EventType::ToolResult);
}

#[test]
fn error_chain_round_trips_with_codes_and_foreign_causes() {
    let err = Error::new(ErrorCode::ToolFailed, "search failed")
        .with_op("tool.search")
        .with_source(
            Error::new(ErrorCode::RateLimit, "429")
                .with_op("http")
                .with_source(std::io::Error::other("connection closed")),
        );
    let value = serde_json::to_value(&err).unwrap();
    assert_eq!(
        value,
        json!({
            "code": "tool_failed", "op": "tool.search", "message": "search failed",
            "source": {
                "code": "rate_limit", "op": "http", "message": "429",
                "source": {"message": "connection closed"},
            },
        })
    );
    let back: Error = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(back, err);
    assert!(back.is_retryable(), "the root cause survives the wire");
    assert_eq!(format!("{back:#}"), format!("{err:#}"));
    assert_eq!(serde_json::to_value(&back).unwrap(), value);
}

#[test]
fn a_retry_delay_crosses_the_wire_in_whole_milliseconds_rounded_up() {
    let err = Error::new(ErrorCode::RateLimit, "429")
        .with_op("openai.chat")
        .with_retry_after(Duration::from_micros(1_500_001));
    let value = serde_json::to_value(&err).unwrap();
    assert_eq!(
        value,
        json!({"code": "rate_limit", "op": "openai.chat", "message": "429", "retry_after_ms": 1_501})
    );
    let back: Error = serde_json::from_value(value).unwrap();
    assert_eq!(back.retry_after(), Some(Duration::from_millis(1_501)));
    let plain = serde_json::to_value(Error::new(ErrorCode::RateLimit, "429")).unwrap();
    assert!(
        plain.get("retry_after_ms").is_none(),
        "left out when absent"
    );
}

#[test]
fn meta_is_left_out_when_empty_and_read_when_present() {
    assert_eq!(
        serde_json::to_value(Event::data(1)).unwrap(),
        json!({"type": "data", "payload": 1})
    );
    let ev: Event<u32> = serde_json::from_value(
        json!({"type": "data", "payload": 7, "meta": {"retries": 2, "delta": -1, "cached": true}}),
    )
    .unwrap();
    assert_eq!(ev.payload(), Some(&7));
    assert_eq!(
        ev.meta().get("retries").and_then(MetaValue::as_u64),
        Some(2)
    );
    assert_eq!(
        ev.meta().get("cached").and_then(MetaValue::as_bool),
        Some(true)
    );
    assert_eq!(ev.meta().len(), 3);
    assert_eq!(serde_json::to_value(Meta::new()).unwrap(), json!({}));
}

#[test]
fn null_payloads_round_trip_exactly() {
    // `done_with(x)` where `x` is written as `null` must not come back as `done()`.
    for ev in [Event::data(()), Event::done_with(()), Event::<()>::done()] {
        let text = serde_json::to_string(&ev).unwrap();
        let back: Event<()> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ev, "{text}");
    }
    for ev in [
        Event::done_with(None),
        Event::done_with(Some(1)),
        Event::<Option<u8>>::done(),
    ] {
        assert_eq!(round_trip(&ev), ev);
    }
    assert_eq!(
        round_trip(&Event::done_with(Value::Null)),
        Event::done_with(Value::Null)
    );
}

#[test]
fn numeric_metadata_round_trips() {
    let ev = Event::data(1_u8)
        .with_meta("delta", 5_i64)
        .with_meta("offset", -5_i64)
        .with_meta("big", u64::MAX)
        .with_meta("ratio", 0.5);
    assert_eq!(round_trip(&ev), ev);
    assert_eq!(ev.meta().get("delta").and_then(MetaValue::as_i64), Some(5));

    // JSON has no NaN: it is written as `null` and skipped when read back.
    let nan = Event::data(1_u8).with_cost_usd(f64::NAN).with_trace_id("t");
    let back = round_trip(&nan);
    assert_eq!(back.meta().cost_usd(), None);
    assert_eq!(back.meta().trace_id(), Some("t"));
}

#[test]
fn bad_input_gets_clear_errors() {
    let err = |v: Value| {
        serde_json::from_value::<Event<u32>>(v)
            .unwrap_err()
            .to_string()
    };
    assert!(err(json!({"type": "chunk", "payload": 1})).contains("unknown variant `chunk`"));
    assert!(err(json!({"type": "data"})).contains("`data` event without a `payload`"));
    assert!(err(json!({"type": "error"})).contains("`error` event without an `error`"));
    assert!(err(json!({"payload": 1})).contains("missing field `type`"));
    let code = serde_json::from_value::<Error>(json!({"code": "teapot", "message": "x"}))
        .unwrap_err()
        .to_string();
    assert!(code.contains("unknown error code `teapot`"), "{code}");
    let nested = err(json!({"type": "data", "payload": 1, "meta": {"x": {"deep": 1}}}));
    assert!(
        nested.contains("a boolean, a number or a string"),
        "{nested}"
    );
}
