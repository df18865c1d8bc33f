// A method that returns a `Result` is not an event stream.
use beluga_core::{Context, Error, Runnable};

#[derive(Runnable)]
#[runnable(input = String, output = String, stream = run)]
struct Echo;

impl Echo {
    fn run(&self, _ctx: Context, text: String) -> Result<String, Error> {
        Ok(text)
    }
}

fn main() {}
