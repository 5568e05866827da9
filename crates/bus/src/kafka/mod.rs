//! The Kafka backend, over librdkafka (`rdkafka`): any Kafka-protocol cluster.
//! Producer: idempotent, acks=all, lz4, batched. Consumer: a consumer-group member
//! that commits only what the caller says is stored. Dead letters: `<topic>.dlq`.

mod admin;
mod consumer;
mod producer;
mod tail;

pub use admin::{ensure_topic, ensure_topics};
pub use consumer::{GroupEvents, KafkaConsumer, OffsetReset};
pub use producer::{DeliveryCounter, KafkaDeadLetters, KafkaProducer, KafkaPublisher};
pub use tail::KafkaTail;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use stockstream_core::BusError;

/// How to reach the cluster: bootstrap brokers plus any librdkafka setting passed
/// through as is (TLS, SASL, timeouts: `security.protocol=SASL_SSL`, ...).
#[derive(Debug, Clone, Default)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// librdkafka settings passed through as they are.
    pub options: Vec<(String, String)>,
}

impl KafkaSettings {
    /// Brokers and no other setting.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings { brokers: brokers.into(), options: Vec::new() }
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.options {
            c.set(k, v);
        }
        c
    }
}

/// A consumer error that librdkafka recovers from by itself (connections lost,
/// brokers restarting), as opposed to a fatal one or a refusal (authorization).
pub(crate) fn passing(e: &KafkaError) -> bool {
    match e {
        KafkaError::MessageConsumption(code) => !matches!(
            code,
            RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::Authentication
        ),
        _ => false,
    }
}

/// A Kafka error as a bus error: transient when the cluster is unreachable,
/// busy or moving leaders, fatal otherwise.
pub(crate) fn kafka_error(e: KafkaError, doing: &str) -> BusError {
    use RDKafkaErrorCode::*;
    let transient = matches!(
        e.rdkafka_error_code(),
        Some(
            AllBrokersDown
                | BrokerTransportFailure
                | MessageTimedOut
                | RequestTimedOut
                | OperationTimedOut
                | BrokerNotAvailable
                | LeaderNotAvailable
                | NotLeaderForPartition
                | NotCoordinator
                | CoordinatorNotAvailable
                | CoordinatorLoadInProgress
                | WaitingForCoordinator
                | NetworkException
                | RebalanceInProgress
                | QueueFull
        )
    );
    let message = format!("{doing}: {e}");
    let error = if transient { BusError::transient(message) } else { BusError::fatal(message) };
    error.caused_by(e)
}

/// Runs a blocking librdkafka call from async code: on a multi-threaded
/// runtime its worker hands its other tasks on first
/// (`tokio::task::block_in_place`, which panics on a current-thread runtime);
/// on a current-thread runtime, or none, the call just blocks.
pub(crate) fn blocking<R>(call: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(call),
        _ => call(),
    }
}

#[cfg(test)]
mod tests {
    use super::blocking;

    #[tokio::test(flavor = "current_thread")]
    async fn a_blocking_call_on_a_current_thread_runtime_does_not_panic() {
        assert_eq!(blocking(|| 2 + 2), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocking_call_on_a_multi_threaded_runtime_runs() {
        assert_eq!(blocking(|| 2 + 2), 4);
    }

    #[test]
    fn a_blocking_call_outside_any_runtime_runs() {
        assert_eq!(blocking(|| 2 + 2), 4);
    }
}
