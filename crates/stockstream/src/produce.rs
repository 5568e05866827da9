//! `stockstream produce`: a source into a Kafka topic.

use std::sync::Arc;
use std::time::Instant;

use crate::summary::Progress;
use clap::Args;
use stockstream_bus::{KafkaArgs, KafkaDeadLetters, KafkaProducer};
use stockstream_pipeline::{produce, stop_on_signal, PaceArgs, RetryPolicy, Stats};
use stockstream_sources::SourceArgs;

#[derive(Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    /// The length of the bars the consumers make of a live feed's ticks:
    /// its history and gaps are fetched as bars of this length.
    #[arg(long, env = "STOCKSTREAM_BAR", default_value = "1m")]
    pub bar: stockstream_core::BarLength,
}

pub async fn produce_command(args: ProduceArgs) -> anyhow::Result<()> {
    // A restarted live feed resumes its history a window before its newest tick on the topic.
    let resume = if crate::backfill::backfills(args.source.source.as_deref())
        && !args.source.backfill.is_some_and(|d| d.is_zero())
    {
        args.kafka.ensure_topics().await?;
        crate::backfill::topic_resume(&args.kafka.settings(), &args.kafka.ticks_topic(), args.bar).await?
    } else {
        Default::default()
    };
    let live_bar = crate::backfill::backfills(args.source.source.as_deref()).then_some(args.bar);
    let source = args.source.open_live(live_bar, resume).await?;
    let (label, expected) = (source.description(), source.expected());
    // Consumers store the topic's bars in the table of the interval they are told.
    let interval = (!source.ticks()).then(|| source.interval()).flatten();
    args.kafka.ensure_topics().await?;
    let settings = args.kafka.settings();
    // Ticks travel on their own topic, keyed by symbol like the bars.
    let topic = if source.ticks() { args.kafka.ticks_topic() } else { args.kafka.topic.clone() };
    let producer = KafkaProducer::new(&settings, &topic)?;
    let dead = KafkaDeadLetters::new(&settings, &args.kafka.dlq_topic())?;
    let stats = Arc::new(Stats::default());
    let stop = stop_on_signal();
    let progress = Progress::start(stats.clone(), expected, |s| Stats::get(&s.produced));
    let started = Instant::now();
    let result = produce(source, &producer, &dead, &stats, args.pace.pace(), RetryPolicy::default(), stop).await;
    progress.finish();
    let (delivered, failed) = producer.delivery_counts();
    let secs = started.elapsed().as_secs_f64();
    println!("source     {label}");
    println!("topic      {topic} on {}", args.kafka.brokers);
    if let Some(interval) = interval {
        println!("interval   {interval} (consume --interval {interval})");
    }
    println!("read       {}", Stats::get(&stats.read));
    println!("delivered  {delivered}");
    println!("failed     {failed}");
    println!("rejected   {} (to {})", Stats::get(&stats.rejected), args.kafka.dlq_topic());
    println!("elapsed    {secs:.2} s");
    println!("rate       {:.0} msgs/s", delivered as f64 / secs.max(1e-9));
    Ok(result?)
}
