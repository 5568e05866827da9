//! Kafka's command-line options (flags, `STOCKSTREAM_*` variables, or
//! `stockstream.toml` keys of the same names).

use stockstream_core::BusError;

use crate::{ensure_topics, KafkaSettings};

/// How to reach Kafka, and the topics.
#[derive(clap::Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    #[arg(long, env = "STOCKSTREAM_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic of the bars; rejects go to `<topic>.dlq`, alerts to `<topic>.alerts`.
    #[arg(long, env = "STOCKSTREAM_TOPIC", default_value = "stock-prices")]
    pub topic: String,
    /// Partitions of a topic created because it was missing.
    #[arg(long, env = "STOCKSTREAM_PARTITIONS", default_value_t = 6)]
    pub partitions: i32,
    /// A librdkafka setting passed through as is, e.g. `security.protocol=SASL_SSL`
    /// or `sasl.mechanism=PLAIN` (repeatable).
    #[arg(long = "kafka-option", env = "STOCKSTREAM_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

impl KafkaArgs {
    /// The client settings.
    pub fn settings(&self) -> KafkaSettings {
        KafkaSettings { brokers: self.brokers.clone(), options: self.kafka_options.clone() }
    }

    /// The dead-letter topic.
    pub fn dlq_topic(&self) -> String {
        format!("{}.dlq", self.topic)
    }

    /// The ticks topic of live feeds.
    pub fn ticks_topic(&self) -> String {
        format!("{}.ticks", self.topic)
    }

    /// The alerts topic.
    pub fn alerts_topic(&self) -> String {
        format!("{}.alerts", self.topic)
    }

    /// Creates the topic, its dead-letter, alerts and ticks topics when missing.
    pub async fn ensure_topics(&self) -> Result<(), BusError> {
        let (dlq, alerts, ticks) = (self.dlq_topic(), self.alerts_topic(), self.ticks_topic());
        ensure_topics(&self.settings(), &[&self.topic, &dlq, &alerts, &ticks], self.partitions).await
    }
}

/// A live view following the bus: given brokers, `serve` reads the bars,
/// ticks and alerts topics from their ends, in no consumer group.
#[derive(clap::Args, Debug, Clone)]
pub struct FollowArgs {
    /// Follow these brokers live (`host:port[,...]`); without them, only the store is served.
    #[arg(long = "brokers", env = "STOCKSTREAM_BROKERS")]
    pub brokers: Option<String>,
    /// Topic of the bars (its `.ticks` and `.alerts` topics are followed too).
    #[arg(long, env = "STOCKSTREAM_TOPIC", default_value = "stock-prices")]
    pub topic: String,
    /// A librdkafka setting passed through as is (repeatable).
    #[arg(long = "kafka-option", env = "STOCKSTREAM_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,
}

impl FollowArgs {
    /// The client settings and the topics (bars, ticks, alerts), when brokers were given.
    pub fn follow(&self) -> Option<(KafkaSettings, [String; 3])> {
        let brokers = self.brokers.clone()?;
        let t = &self.topic;
        let topics = [t.clone(), format!("{t}.ticks"), format!("{t}.alerts")];
        Some((KafkaSettings { brokers, options: self.kafka_options.clone() }, topics))
    }
}
