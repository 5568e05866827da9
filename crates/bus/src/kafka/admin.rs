//! Topics: created when missing, with one admin client per command.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use stockstream_core::BusError;

use super::{blocking, kafka_error, KafkaSettings};

/// Creates the topic with `partitions` partitions when it does not exist
/// (brokers may not auto-create topics). An existing topic is left as it is.
pub async fn ensure_topic(settings: &KafkaSettings, topic: &str, partitions: i32) -> Result<(), BusError> {
    ensure_topics(settings, &[topic], partitions).await
}

/// Creates the topics that are missing, with one admin client and one
/// metadata request (a command's fixed cost: each client costs a connection
/// and a round trip).
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[&str], partitions: i32) -> Result<(), BusError> {
    let admin: AdminClient<DefaultClientContext> =
        settings.client_config().create().map_err(|e| kafka_error(e, "cannot create a Kafka admin client"))?;
    // Fail fast and clearly when the cluster cannot be reached at all.
    let client = admin.inner();
    let metadata = blocking(|| client.fetch_metadata(None, Duration::from_secs(10)))
        .map_err(|e| kafka_error(e, &format!("cannot reach Kafka at {}", settings.brokers)))?;
    let missing: Vec<NewTopic> = topics
        .iter()
        .filter(|t| !metadata.topics().iter().any(|m| m.name() == **t && m.error().is_none()))
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(-1)))
        .collect();
    if missing.is_empty() {
        dispose(admin);
        return Ok(());
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let names: Vec<&str> = missing.iter().map(|t| t.name).collect();
    let results = admin
        .create_topics(&missing, &options)
        .await
        .map_err(|e| kafka_error(e, &format!("cannot create topics {names:?} on {}", settings.brokers)))?;
    dispose(admin);
    for r in results {
        match r {
            Ok(topic) => tracing::info!(topic, partitions, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(BusError::fatal(format!("cannot create topic {name}: {code}"))),
        }
    }
    Ok(())
}

/// Drops a client whose work is done on a thread of its own: its polling
/// thread notices the stop only after a poll of up to 100 ms, which no
/// command needs to wait for.
pub(super) fn dispose<T: Send + 'static>(client: T) {
    std::thread::spawn(move || drop(client));
}
