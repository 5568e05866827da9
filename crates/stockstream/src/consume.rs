//! `stockstream consume`: a consumer-group member writing a Kafka topic into the
//! store. Start several on any hosts with the same `--group`: Kafka spreads the
//! partitions among them and moves them when one dies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use stockstream_bus::{KafkaArgs, KafkaConsumer, KafkaDeadLetters, KafkaPublisher, OffsetReset};
use stockstream_pipeline::{
    consume, stop_on_signal, AnalyticsStage, ConsumeArgs, Stats, StoredAlerts, WindowArgs, MAX_HELD,
};
use stockstream_store::StoreArgs;

/// Alerts published to `<topic>.alerts`: a subscriber of the analytics stage.
pub struct KafkaAlerts(pub KafkaPublisher);

#[async_trait::async_trait]
impl stockstream_pipeline::Subscriber for KafkaAlerts {
    async fn on_alerts(
        &self,
        alerts: &[stockstream_analytics::Alert],
    ) -> Result<(), stockstream_pipeline::PipelineError> {
        let records = alerts.iter().filter_map(|a| Some((a.symbol.clone(), serde_json::to_vec(a).ok()?))).collect();
        Ok(self.0.publish(records).await?)
    }
}

#[derive(Args, Debug)]
pub struct ConsumeCommandArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub consume: ConsumeArgs,
    /// With --bar: consume the ticks topic and aggregate it into bars.
    #[command(flatten)]
    pub window: WindowArgs,
    /// The interval of the topic's bars (1d, 1h, 1m, ...): they are stored in
    /// that interval's table, and a bar of another interval is refused to the
    /// dead letters as `mixed_interval`. `produce` prints its file's interval.
    #[arg(long, env = "STOCKSTREAM_INTERVAL", default_value = "1d", conflicts_with = "bar")]
    pub interval: stockstream_core::BarLength,
    /// Consumer group: members share the topic's partitions.
    #[arg(long, env = "STOCKSTREAM_GROUP", default_value = "stockstream")]
    pub group: String,
    /// This member's stable name in the group (static membership,
    /// `group.instance.id`): restarted under the same name, it takes its
    /// partitions back at once instead of waiting for the group to rebalance.
    /// Unique per member.
    #[arg(long, env = "STOCKSTREAM_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Where a group without committed offsets starts.
    #[arg(long, env = "STOCKSTREAM_OFFSET_RESET", value_enum, default_value_t = Reset::Earliest)]
    pub offset_reset: Reset,
    /// Exit after the topic has been idle this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    pub idle_exit: Option<u64>,
    /// Log throughput and lag every this many seconds.
    #[arg(long, default_value_t = 10)]
    pub report_every: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Reset {
    Earliest,
    Latest,
}

pub async fn consume_command(args: ConsumeCommandArgs) -> anyhow::Result<()> {
    args.kafka.ensure_topics().await?;
    let mut settings = args.kafka.settings();
    if let Some(id) = &args.instance_id {
        settings.options.push(("group.instance.id".into(), id.clone()));
    }
    let reset = match args.offset_reset {
        Reset::Earliest => OffsetReset::Earliest,
        Reset::Latest => OffsetReset::Latest,
    };
    let ticks = args.window.options();
    let topic = if ticks.is_some() { args.kafka.ticks_topic() } else { args.kafka.topic.clone() };
    let mut consumer = KafkaConsumer::new(&settings, &topic, &args.group, reset)?;
    let dead = Arc::new(KafkaDeadLetters::new(&settings, &args.kafka.dlq_topic())?);
    let length = args.window.bar.unwrap_or(args.interval);
    let store = args.store.open().await?.interval(&length.name()).await?;
    let stats = Arc::new(Stats::default());
    let mut options = args.consume.options();
    options.idle_exit = args.idle_exit.map(Duration::from_secs);
    options.interval = ticks.is_none().then_some(length);
    options.ticks = ticks;
    options.report_every = Some(Duration::from_secs(args.report_every.max(1)));
    let alerts = KafkaAlerts(KafkaPublisher::new(&settings, &args.kafka.alerts_topic())?);
    let stored = StoredAlerts(store.clone());
    let analytics = AnalyticsStage::new(vec![Arc::new(alerts), Arc::new(stored)]).holding_at_most(MAX_HELD);
    options.analytics = Some(Arc::new(analytics));
    let stop = stop_on_signal();
    let started = Instant::now();
    let result = consume(&mut consumer, store, dead, stats.clone(), &options, stop).await;
    println!("store      {}", args.store.describe());
    let label = format!("kafka topic {topic} on {}, group {}", args.kafka.brokers, args.group);
    crate::summary::print_summary(&label, &stats, started.elapsed());
    Ok(result?)
}
