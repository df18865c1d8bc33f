//! Runnable examples for beluga; see the `[[example]]` targets of this package. The server of
//! the chat-web example lives here, so that its browser test starts the same app in-process.

pub mod chat_web;
