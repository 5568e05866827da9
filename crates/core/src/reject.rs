/// A record that was not stored, kept with why and with its original bytes so
/// that nothing is silently lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Where the record came from: `input.csv:17`, `stock-prices/3@1042`.
    pub source: String,
    /// A short stable code for counting (`high_below_open_close`).
    pub kind: &'static str,
    /// A sentence a person understands, naming the record and the rule.
    pub reason: String,
    /// The record exactly as it arrived.
    pub original: Vec<u8>,
}

/// Why a record was refused: a code for counting and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A short stable code for counting.
    pub kind: &'static str,
    /// A sentence naming the record and the rule.
    pub reason: String,
}

impl Refusal {
    /// A refusal of this kind, with this reason.
    pub fn new(kind: &'static str, reason: impl Into<String>) -> Self {
        Refusal { kind, reason: reason.into() }
    }

    /// The refused record as a reject kept with its origin and bytes.
    pub fn into_reject(self, source: impl Into<String>, original: Vec<u8>) -> Reject {
        Reject { source: source.into(), kind: self.kind, reason: self.reason, original }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Where rejected records are kept: the embedded `rejects` table, or the Kafka
/// topic `<topic>.dlq`.
#[async_trait::async_trait]
pub trait DeadLetters: Send + Sync {
    /// Keeps these rejects; returns only once they are durable, because the
    /// consumer commits past them afterwards.
    async fn keep(&self, rejects: Vec<Reject>) -> Result<(), crate::StoreError>;
}
