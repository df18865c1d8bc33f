use beluga_core::{stream_producer, Context, EventResult, BoxEventStream, EventStreamExt};
use futures_util::Stream;

struct Model {
    name: String,
}

impl Model {
    #[stream_producer]
    fn tokens(&self, ctx: Context) -> impl Stream<Item = EventResult<String>> + '_ {
        emit!(self.name.clone());
    }

    #[stream_producer]
    fn owned(self, ctx: Context) -> impl Stream<Item = EventResult<String>> {
        emit!(self.name);
    }

    #[stream_producer]
    pub(crate) fn associated(ctx: Context, word: &'static str) -> impl Stream<Item = EventResult<String>> {
        emit!(word.to_owned());
    }
}

trait Step {
    fn run(&self, ctx: Context) -> BoxEventStream<'_, String>;
}

impl Step for Model {
    #[stream_producer]
    fn run(&self, ctx: Context) -> BoxEventStream<'_, String> {
        emit!(format!("{} runs", self.name));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let model = Model { name: "m".to_owned() };
    assert_eq!(model.tokens(Context::new()).collect_events().await.events.len(), 2);
    let step: &dyn Step = &model;
    assert_eq!(step.run(Context::new()).collect_events().await.events.len(), 2);
    assert_eq!(Model::associated(Context::new(), "w").collect_events().await.events.len(), 2);
    assert_eq!(model.owned(Context::new()).collect_events().await.events.len(), 2);
}
