//! A small agent-like pipeline, offline: a retriever step piped into a model step, a parallel
//! fan of tools, and a batch of questions with a concurrency limit, a timeout and retries.
//!
//! Run it with `cargo run --example agent`. Every step is a `#[stream_producer]` method turned
//! into a `Runnable` with `#[derive(Runnable)]`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use beluga_core::runnable::{BatchOptions, ParallelOutput, RetryPolicy, parallel};
use beluga_core::{
    BoxRunnable, Context, Error, ErrorCode, EventKind, EventResult, Runnable, RunnableExt,
    stream_producer,
};
use futures_util::{Stream, StreamExt};

/// Finds the documents that share a word with the question.
#[derive(Runnable)]
#[runnable(input = String, output = Vec<String>, stream = retrieve)]
struct Retriever {
    documents: Vec<&'static str>,
}

impl Retriever {
    #[stream_producer]
    fn retrieve(
        &self,
        ctx: Context,
        question: String,
    ) -> impl Stream<Item = EventResult<Vec<String>>> + Send + '_ {
        tokio::time::sleep(Duration::from_millis(20)).await; // the vector store thinks
        let words: Vec<String> = question
            .to_lowercase()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let found: Vec<String> = self
            .documents
            .iter()
            .filter(|doc| {
                words
                    .iter()
                    .any(|w| w.len() > 3 && doc.to_lowercase().contains(w.as_str()))
            })
            .map(|doc| (*doc).to_owned())
            .collect();
        if found.is_empty() {
            return Err(
                Error::new(ErrorCode::NotFound, "no document matches the question")
                    .with_op("retriever"),
            );
        }
        found
    }
}

/// A simulated model: answers from the documents it is given, one token at a time. The first
/// call of every third question is rate limited, as a busy provider would be.
#[derive(Runnable)]
#[runnable(input = Vec<String>, output = String, stream = generate)]
struct Model {
    calls: AtomicU32,
}

impl Model {
    #[stream_producer]
    fn generate(
        &self,
        ctx: Context,
        documents: Vec<String>,
    ) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call % 3 == 2 {
            return Err(Error::new(ErrorCode::RateLimit, "429: slow down").with_op("model"));
        }
        let answer = format!(
            "Based on {} document(s): {}",
            documents.len(),
            documents.join(" ")
        );
        for token in answer.split_inclusive(' ') {
            tokio::time::sleep(Duration::from_millis(2)).await;
            emit!(token.to_owned());
        }
        answer
    }
}

/// A tool: takes the question, answers after `delay`.
#[derive(Runnable)]
#[runnable(input = String, output = String, stream = call)]
struct Tool {
    name: &'static str,
    delay: Duration,
}

impl Tool {
    #[stream_producer]
    fn call(
        &self,
        ctx: Context,
        question: String,
    ) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        emit!(format!("{} is working", self.name));
        tokio::time::sleep(self.delay).await;
        emit!(format!("{} is done", self.name));
        format!("{} looked at {question:?}", self.name)
    }
}

fn documents() -> Vec<&'static str> {
    vec![
        "Refunds are accepted within 30 days of purchase.",
        "Shipping takes 3 to 5 business days.",
        "Orders over 50 euros ship for free.",
    ]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let ctx = Context::new()
        .with_request_id("demo")
        .with_timeout(Duration::from_secs(10));

    // 1. A retriever piped into a model: the model's tokens stream as they come.
    let rag = Retriever {
        documents: documents(),
    }
    .pipe(Model {
        calls: AtomicU32::new(0),
    });
    println!("== retriever | model");
    let mut answer =
        std::pin::pin!(rag.stream(ctx.clone(), "How long do refunds take?".to_owned()));
    while let Some(item) = answer.next().await {
        match item?.into_kind() {
            EventKind::Data(token) => print!("{token}"),
            EventKind::Done(_) => println!(),
            _ => {}
        }
    }

    // 2. A parallel fan of tools: results as they arrive, tagged by tool; all of them at the end.
    println!("\n== parallel tools");
    let tools: Vec<BoxRunnable<'static, String, String>> = vec![
        Tool {
            name: "search",
            delay: Duration::from_millis(30),
        }
        .boxed(),
        Tool {
            name: "calculator",
            delay: Duration::from_millis(5),
        }
        .boxed(),
        Tool {
            name: "weather",
            delay: Duration::from_millis(15),
        }
        .boxed(),
    ];
    let fan = parallel(tools);
    let mut results = std::pin::pin!(fan.stream(ctx.clone(), "Is shipping free?".to_owned()));
    while let Some(item) = results.next().await {
        match item?.into_kind() {
            EventKind::Data(ParallelOutput::Item { branch, value }) => {
                println!("  tool {branch}: {value}");
            }
            EventKind::Done(Some(ParallelOutput::All(all))) => {
                println!("all {} tools answered: {}", all.len(), all.join(" | "));
            }
            _ => {}
        }
    }
    let again = fan
        .invoke(ctx.clone(), "again".to_owned())
        .await?
        .into_all();
    println!(
        "invoke returns the same, at once: {} answers",
        again.map_or(0, |all| all.len())
    );

    // 3. A batch of questions through the whole pipeline: two at a time, a timeout per attempt,
    //    and retries (rate limits are retryable; "not found" is not).
    println!("\n== batch");
    let options = BatchOptions::default()
        .with_max_concurrency(2)?
        .with_timeout(Duration::from_secs(2))
        .with_retry(RetryPolicy::new(3)?.with_initial_backoff(Duration::from_millis(10)));
    let questions = [
        "How long do refunds take?",
        "How long does shipping take?",
        "Do orders ship free?",
        "What about the weather on Mars?",
    ]
    .map(str::to_owned);
    let answers = rag.batch(&ctx, questions.clone(), &options).await;

    for (question, answer) in questions.iter().zip(answers) {
        match answer {
            Ok(text) => println!("{question}\n   -> {text}"),
            Err(err) => println!("{question}\n   -> failed: {err:#}"),
        }
    }
    // The model rate-limits every third call: those were retried, and the batch succeeded.
    Ok(())
}
