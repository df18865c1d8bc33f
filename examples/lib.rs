//! Runnable examples for beluga; see the `[[example]]` targets of this package.
