#!/usr/bin/env python3
"""Generates the crates that `run.sh` builds to compare the compile time of `#[stream_producer]`
with async-stream's `try_stream!`.

Usage: gen.py OUT_DIR BELUGA_CORE_DIR [--count N]

Writes three crates under OUT_DIR, outside the repository's workspace (each has its own empty
`[workspace]`):

- `producer`: N producers written with `#[stream_producer]`, in modules of 20;
- `async_stream`: the same N written with `try_stream!`, the same items (`Result<Event<T>, Error>`),
  the same events in the same order, the same terminal item (async-stream does not check the
  context between items: it only passes it to the helpers the bodies await, as the producers do);
- `compare`: a binary that runs every pair on a few inputs and asserts that they yield the same
  items (`run.sh check`).

Four body shapes take turns, each with a loop, an `.await`, `?` and a few emits; half of them end
with a final value. Each crate's `all` boxes every producer into a `BoxEventStream`, so that every one
of them is code-generated. The first producer has a literal marked `/* touch */`, which `run.sh`
changes to measure an incremental rebuild.
"""

import argparse
import os
import shutil

PER_MODULE = 20


def shape(i):
    """(payload type, producer body, try_stream body, arguments) of producer `i`."""
    k = i % 4
    touch = " /* touch */" if i == 0 else ""
    if k == 0:
        # A loop over awaited values, `continue`, a final emitted event with metadata, a final value.
        body = f"""    let mut total = 0_u64;
    for i in 0..n {{
        let x = fetch(&ctx, i + {i}{touch}).await?;
        if x % 7 == 0 {{
            continue;
        }}
        total += x;
        emit!(x);
    }}
    emit!(Event::data(total).with_trace_id("p{i}"));
    total
"""
        stream = f"""        let mut total = 0_u64;
        for i in 0..n {{
            let x = fetch(&ctx, i + {i}{touch}).await?;
            if x % 7 == 0 {{
                continue;
            }}
            total += x;
            yield Event::data(x);
        }}
        yield Event::data(total).with_trace_id("p{i}");
        yield Event::done_with(total);
"""
        return "u64", body, stream, "n: u64"
    if k == 1:
        # Awaited words, tool calls in the middle, no final value.
        body = f"""    let words = split(&ctx, &prompt).await?;
    for (k, w) in words.into_iter().enumerate() {{
        if w.is_empty() {{
            continue;
        }}
        if k == {i % 5 + 1} {{
            emit!(Event::tool_call(w.clone()));
            let r = tool(&ctx, &w).await?;
            emit!(Event::tool_result(r));
        }} else {{
            emit!(w);
        }}
    }}
"""
        stream = f"""        let words = split(&ctx, &prompt).await?;
        for (k, w) in words.into_iter().enumerate() {{
            if w.is_empty() {{
                continue;
            }}
            if k == {i % 5 + 1} {{
                yield Event::tool_call(w.clone());
                let r = tool(&ctx, &w).await?;
                yield Event::tool_result(r);
            }} else {{
                yield Event::data(w);
            }}
        }}
        yield Event::done();
"""
        return "String", body, stream, "prompt: String"
    if k == 2:
        # A `loop` with an early `return Err(..)` and `return value`.
        body = f"""    let mut seen = 0_u64;
    loop {{
        let x = fetch(&ctx, seen * {i + 1}).await?;
        if x > 990 {{
            return Err(Error::new(ErrorCode::InvalidInput, "p{i}: out of range"));
        }}
        emit!(x);
        seen += 1;
        if seen >= n {{
            return seen;
        }}
    }}
"""
        stream = f"""        let mut seen = 0_u64;
        loop {{
            let x = fetch(&ctx, seen * {i + 1}).await?;
            if x > 990 {{
                Err(Error::new(ErrorCode::InvalidInput, "p{i}: out of range"))?;
            }}
            yield Event::data(x);
            seen += 1;
            if seen >= n {{
                yield Event::done_with(seen);
                return;
            }}
        }}
"""
        return "u64", body, stream, "n: u64"
    # Chunks with token metadata, accumulated into a final value.
    body = f"""    let mut out = String::new();
    for round in 0..n {{
        let chunk = tool(&ctx, "p{i}").await?;
        out.push_str(&chunk);
        emit!(Event::data(chunk).with_tokens(round, {i}));
    }}
    out
"""
    stream = f"""        let mut out = String::new();
        for round in 0..n {{
            let chunk = tool(&ctx, "p{i}").await?;
            out.push_str(&chunk);
            yield Event::data(chunk).with_tokens(round, {i});
        }}
        yield Event::done_with(out);
"""
    return "String", body, stream, "n: u64"


def producer_fn(i):
    item, body, _, args = shape(i)
    return f"""#[stream_producer]
pub fn p{i}(ctx: Context, {args}) -> impl Stream<Item = Result<Event<{item}>, Error>> {{
{body}}}
"""


def async_stream_fn(i):
    item, _, stream, args = shape(i)
    return f"""pub fn p{i}(ctx: Context, {args}) -> impl Stream<Item = Result<Event<{item}>, Error>> {{
    try_stream! {{
{stream}    }}
}}
"""


def call(i):
    """How `all` calls producer `i`, and into which vector its stream goes."""
    item, _, _, args = shape(i)
    arg = "3" if args == "n: u64" else '"a bb ccc dddd eeeee".to_owned()'
    vec = "numbers" if item == "u64" else "texts"
    return f"    {vec}.push(Box::pin(p{i}(ctx.clone(), {arg})));\n"


LIB = """//! Generated by beluga-core/benches/compile_time/gen.py: {count} producers ({what}).
#![allow(clippy::all, unused)]

{modules}
use beluga_core::{{Context, Error, BoxEventStream}};

/// Awaited by the bodies: a value, after one trip through the scheduler.
pub async fn fetch(ctx: &Context, i: u64) -> Result<u64, Error> {{
    if ctx.is_cancelled() {{
        return Err(Error::cancelled());
    }}
    tokio::task::yield_now().await;
    Ok(i.wrapping_mul(31) % 1000)
}}

/// Awaited by the bodies: the words of a prompt.
pub async fn split(ctx: &Context, prompt: &str) -> Result<Vec<String>, Error> {{
    if ctx.is_cancelled() {{
        return Err(Error::cancelled());
    }}
    tokio::task::yield_now().await;
    Ok(prompt.split(' ').map(str::to_owned).collect())
}}

/// Awaited by the bodies: a tool's answer.
pub async fn tool(ctx: &Context, input: &str) -> Result<String, Error> {{
    if ctx.is_cancelled() {{
        return Err(Error::cancelled());
    }}
    tokio::task::yield_now().await;
    Ok(format!("<{{input}}>"))
}}

/// Every producer, boxed: the numbers' and the texts'.
pub fn all(ctx: &Context) -> (Vec<BoxEventStream<'static, u64>>, Vec<BoxEventStream<'static, String>>) {{
    let mut numbers: Vec<BoxEventStream<'static, u64>> = Vec::with_capacity({count});
    let mut texts: Vec<BoxEventStream<'static, String>> = Vec::with_capacity({count});
{calls}    (numbers, texts)
}}
"""

MODULE_HEADER = {
    "producer": """use beluga_core::{stream_producer, Context, Error, ErrorCode, Event};
use futures_core::Stream;

use crate::{fetch, split, tool};
""",
    "async_stream": """use async_stream::try_stream;
use beluga_core::{Context, Error, ErrorCode, Event};
use futures_core::Stream;

use crate::{fetch, split, tool};
""",
}

MANIFEST = """[package]
name = "{name}"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
beluga-core = {{ path = "{core}" }}
futures-core = "0.3"
futures-util = {{ version = "0.3", default-features = false, features = ["std"] }}
tokio = {{ version = "1", default-features = false, features = ["rt"] }}
{extra}"""

COMPARE = """//! Generated by beluga-core/benches/compile_time/gen.py: runs every pair of producers and
//! asserts that both crates yield the same items.
use beluga_core::Context;
use futures_util::StreamExt;

async fn items<T: Send>(s: beluga_core::BoxEventStream<'static, T>) -> Vec<String>
where
    T: std::fmt::Debug,
{{
    s.map(|item| format!("{{item:?}}")).collect().await
}}

fn main() {{
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {{
        let ctx = Context::new();
        let (pn, pt) = cmp_producer::all(&ctx);
        let (an, at) = cmp_async_stream::all(&ctx);
        assert_eq!(pn.len(), an.len());
        assert_eq!(pt.len(), at.len());
        let mut checked = 0;
        for (p, a) in pn.into_iter().zip(an) {{
            assert_eq!(items(p).await, items(a).await);
            checked += 1;
        }}
        for (p, a) in pt.into_iter().zip(at) {{
            assert_eq!(items(p).await, items(a).await);
            checked += 1;
        }}
        assert_eq!(checked, {count});
        println!("{{checked}} pairs yield the same items");
    }});
}}
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def crate(out, name, core, count, make_fn, extra, what, lock):
    root = os.path.join(out, name)
    if os.path.isdir(os.path.join(root, "src")):
        shutil.rmtree(os.path.join(root, "src"))
    write(
        os.path.join(root, "Cargo.toml"),
        MANIFEST.format(name=f"cmp_{name}", core=core, extra=extra),
    )
    if lock and not os.path.exists(os.path.join(root, "Cargo.lock")):
        shutil.copy(lock, os.path.join(root, "Cargo.lock"))
    modules = (count + PER_MODULE - 1) // PER_MODULE
    for m in range(modules):
        fns = [make_fn(i) for i in range(m * PER_MODULE, min(count, (m + 1) * PER_MODULE))]
        write(
            os.path.join(root, "src", f"m{m}.rs"),
            MODULE_HEADER[name] + "\n" + "\n".join(fns),
        )
    uses = "".join(f"mod m{m};\npub use m{m}::*;\n" for m in range(modules))
    calls = "".join(call(i) for i in range(count))
    write(
        os.path.join(root, "src", "lib.rs"),
        LIB.format(count=count, what=what, modules=uses, calls=calls),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("core")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--lock", help="a Cargo.lock to start from (pins the same versions)")
    args = parser.parse_args()
    out, core = os.path.abspath(args.out), os.path.abspath(args.core)
    crate(out, "producer", core, args.count, producer_fn, "", "#[stream_producer]", args.lock)
    crate(
        out,
        "async_stream",
        core,
        args.count,
        async_stream_fn,
        'async-stream = "0.3.6"\n',
        "async-stream try_stream!",
        args.lock,
    )
    root = os.path.join(out, "compare")
    write(
        os.path.join(root, "Cargo.toml"),
        MANIFEST.format(
            name="cmp_compare",
            core=core,
            extra=f'cmp_producer = {{ path = "{out}/producer" }}\n'
            f'cmp_async_stream = {{ path = "{out}/async_stream" }}\n',
        ),
    )
    if args.lock and not os.path.exists(os.path.join(root, "Cargo.lock")):
        shutil.copy(args.lock, os.path.join(root, "Cargo.lock"))
    write(os.path.join(root, "src", "main.rs"), COMPARE.format(count=args.count))


if __name__ == "__main__":
    main()
