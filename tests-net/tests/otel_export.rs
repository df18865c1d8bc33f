//! Traced streams as OpenTelemetry sees them: `tracing-opentelemetry` over the SDK's in-memory
//! exporter, the way a user exports them. The span's name and kind, its status (unset on
//! success, `Error` with the description on failure), integer attributes as integers, and each
//! attribute once, for a scripted chat call, a failing one, a truncated one, and Anthropic over
//! a real HTTP server on 127.0.0.1 (usage in two reports).

use std::collections::BTreeMap;

use beluga_core::{Context, Error, ErrorCode, EventStreamExt, stream};
use beluga_llm::ChatModelExt;
use beluga_llm::anthropic::Anthropic;
use beluga_llm::openai::OpenAiCompatible;
use beluga_llm::schema::{ChatRequest, Message, Usage};
use beluga_llm::scripted::{ScriptedModel, Turn};
use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

#[path = "llm_http/mod.rs"]
mod llm_http;

use llm_http::{
    Reply, Server, anthropic_end, anthropic_start, anthropic_text_block, done, openai_finish,
    openai_text,
};

/// Spans go through `tracing-opentelemetry` to an in-memory exporter, on this thread (a
/// `current_thread` runtime's tasks run on it) until the guard is dropped.
struct Exporting {
    exporter: InMemorySpanExporter,
    _provider: SdkTracerProvider,
    _guard: DefaultGuard,
}

impl Exporting {
    fn start() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("beluga-tests"));
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        Exporting {
            exporter,
            _provider: provider,
            _guard: guard,
        }
    }

    /// The one span exported.
    fn span(&self) -> SpanData {
        let mut spans = self.exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        spans.remove(0)
    }
}

/// The span's attributes by name, after checking that none is there twice.
fn attributes(span: &SpanData) -> BTreeMap<String, Value> {
    let mut by_name = BTreeMap::new();
    for kv in &span.attributes {
        let previous = by_name.insert(kv.key.to_string(), kv.value.clone());
        assert!(
            previous.is_none(),
            "{} exported twice: {:?}",
            kv.key,
            span.attributes
        );
    }
    by_name
}

fn text(s: &str) -> Value {
    Value::from(s.to_owned())
}

fn ask(model: &str) -> ChatRequest {
    ChatRequest::new(model, vec![Message::user("Weather in Oslo?")])
}

#[tokio::test]
async fn a_chat_call_is_a_gen_ai_client_span_with_integer_counts() {
    let otel = Exporting::start();
    let model = ScriptedModel::new([Turn::text("It is sunny.").with_usage(Usage::new(31, 4))])
        .traced()
        .with_provider("scripted");
    let ctx = Context::new().with_request_id("req-42");
    let answer = model
        .generate(ctx, ask("small-model").with_max_tokens(256))
        .await
        .unwrap();
    assert_eq!(answer.text(), "It is sunny.");

    let span = otel.span();
    assert_eq!(span.name, "chat small-model");
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.status, Status::Unset);
    let attrs = attributes(&span);
    for (name, value) in [
        ("gen_ai.operation.name", text("chat")),
        ("gen_ai.provider.name", text("scripted")),
        ("gen_ai.request.model", text("small-model")),
        ("gen_ai.request.max_tokens", Value::I64(256)),
        ("gen_ai.usage.input_tokens", Value::I64(31)),
        ("gen_ai.usage.output_tokens", Value::I64(4)),
        ("gen_ai.response.finish_reasons", text(r#"["stop"]"#)),
        ("beluga.request_id", text("req-42")),
        ("beluga.error_events", Value::I64(0)),
    ] {
        assert_eq!(attrs.get(name), Some(&value), "{name}: {attrs:#?}");
    }
    assert!(matches!(attrs["beluga.items"], Value::I64(n) if n >= 4));
    assert!(!attrs.contains_key("error.type"));
    assert!(
        !attrs.keys().any(|k| k.starts_with("otel.")),
        "the otel.* fields set the span, they are no attributes: {attrs:#?}"
    );
}

#[tokio::test]
async fn a_failing_call_has_the_error_status_with_its_description() {
    let otel = Exporting::start();
    let model = ScriptedModel::new([Turn::text("Partial")
        .failing_with(Error::new(ErrorCode::RateLimit, "slow down").with_op("scripted"))])
    .traced();
    let err = model.generate(Context::new(), ask("m")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimit);

    let span = otel.span();
    assert_eq!(
        span.status,
        Status::error("scripted [rate_limit]: slow down")
    );
    let attrs = attributes(&span);
    assert_eq!(attrs["error.type"], text("rate_limit"));
    assert_eq!(attrs["beluga.outcome"], text("error"));
    assert_eq!(attrs["beluga.items"], Value::I64(2));
}

#[tokio::test]
async fn a_truncated_answer_has_the_error_status() {
    let otel = Exporting::start();
    let model = ScriptedModel::new([Turn::text("It is").truncated()]).traced();
    let err = model.generate(Context::new(), ask("m")).await.unwrap_err();
    assert!(beluga_llm::error::is_truncated(&err));

    let span = otel.span();
    assert_eq!(span.status, Status::error(err.to_string()));
    let attrs = attributes(&span);
    assert_eq!(attrs["error.type"], text("provider_unavailable"));
    assert!(!attrs.contains_key("gen_ai.response.finish_reasons"));
}

#[tokio::test]
async fn a_plain_stream_is_named_by_otel_name_with_integer_counts() {
    let otel = Exporting::start();
    let ctx = Context::new().with_request_id("req-7");
    let events = stream::iter(["a", "b", "c"])
        .traced("answer", &ctx)
        .collect_events()
        .await;
    assert_eq!(events.events.len(), 4);

    let span = otel.span();
    assert_eq!(span.name, "answer");
    assert_eq!(span.status, Status::Unset);
    let attrs = attributes(&span);
    assert_eq!(attrs["beluga.items"], Value::I64(4));
    assert_eq!(attrs["beluga.error_events"], Value::I64(0));
    assert_eq!(attrs["beluga.outcome"], text("done"));
    assert_eq!(attrs["beluga.request_id"], text("req-7"));
    assert!(matches!(
        attrs["beluga.time_to_first_item_ms"],
        Value::F64(_)
    ));
}

#[tokio::test]
async fn anthropic_usage_in_two_reports_is_exported_once() {
    let server = Server::start([Reply::sse(
        [
            vec![anthropic_start(12, 0)],
            anthropic_text_block(0, &["Hel", "lo"]),
            anthropic_end("end_turn", 9),
        ]
        .into_iter()
        .flatten(),
    )])
    .await;
    let otel = Exporting::start();
    let model = Anthropic::new("claude-test")
        .with_base_url(server.url())
        .with_api_key("sk-ant-test")
        .traced();
    let answer = model
        .generate(
            Context::new(),
            ChatRequest::new("", vec![Message::user("Hi")]),
        )
        .await
        .unwrap();
    assert_eq!(answer.text(), "Hello");

    let span = otel.span();
    assert_eq!(span.status, Status::Unset);
    assert_eq!(
        span.name, "chat claude-test",
        "the provider's model: the request names none"
    );
    let attrs = attributes(&span);
    // `http://127.0.0.1:PORT/v1`
    let port: i64 = server.url()["http://127.0.0.1:".len()..]
        .trim_end_matches("/v1")
        .parse()
        .unwrap();
    assert_eq!(attrs["gen_ai.provider.name"], text("anthropic"));
    assert_eq!(attrs["gen_ai.request.model"], text("claude-test"));
    assert_eq!(attrs["server.address"], text("127.0.0.1"));
    assert_eq!(attrs["server.port"], Value::I64(port));
    assert_eq!(attrs["gen_ai.usage.input_tokens"], Value::I64(12));
    assert_eq!(attrs["gen_ai.usage.output_tokens"], Value::I64(9));
    assert_eq!(attrs["gen_ai.response.finish_reasons"], text(r#"["stop"]"#));
}

#[tokio::test]
async fn an_openai_compatible_server_elsewhere_names_no_provider_but_its_server() {
    let server = Server::start([Reply::sse([
        openai_text("Hi"),
        openai_finish("stop"),
        done(),
    ])])
    .await;
    let otel = Exporting::start();
    let model = OpenAiCompatible::new(server.url(), "local-model").traced();
    let request = ChatRequest::new("", vec![Message::user("Hi")]).with_temperature(0.7);
    model.generate(Context::new(), request).await.unwrap();

    let span = otel.span();
    assert_eq!(span.name, "chat local-model");
    let attrs = attributes(&span);
    assert!(
        !attrs.contains_key("gen_ai.provider.name"),
        "a server that is not OpenAI's"
    );
    assert_eq!(attrs["server.address"], text("127.0.0.1"));
    assert_eq!(attrs["gen_ai.request.temperature"], Value::F64(0.7));
    assert_eq!(
        OpenAiCompatible::openai("gpt-4o-mini").provider_name(),
        Some("openai")
    );
}
