//! Chat in the browser: a page that streams a model's answer token by token, shows the tool
//! it calls, and has a Stop button that ends the answer on the server.
//!
//! Run it with `cargo run --example chat-web` and open the URL it prints (the port is the
//! first argument, else `$PORT`, else 3000: `cargo run --example chat-web -- 8080`). No
//! network beyond loopback: the model is a scripted one that replays its answer with a delay
//! per token. The server itself is `beluga_examples::chat_web`.

use beluga_examples::chat_web::ChatApp;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
    {
        Some(port) => port.parse().map_err(|err| {
            format!("the port must be a number from 0 to 65535, not {port:?}: {err}")
        })?,
        None => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|err| format!("cannot listen on 127.0.0.1:{port}: {err}"))?;
    let app = ChatApp::new();
    println!("chat-web: open http://{}/", listener.local_addr()?);
    println!("  (a scripted model streams its answer; Stop ends it on the server; /stats counts)");
    axum::serve(listener, app.router()).await?;
    Ok(())
}
