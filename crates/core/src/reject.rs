/// A record that was not stored, kept with why and with its original bytes so
/// that nothing is silently lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Where the record came from: `input.csv:17`, `stock-prices/3@1042`.
    pub source: String,
    /// A short stable code for counting (`high_below_open_close`).
    pub kind: RejectKind,
    /// A sentence a person understands, naming the record and the rule.
    pub reason: String,
    /// The record exactly as it arrived.
    pub original: Vec<u8>,
    /// Its bus key (the symbol), when it came off a bus with one: a dead
    /// letter on Kafka keeps it.
    pub key: Option<Vec<u8>>,
}

/// Why a record was refused: a code for counting and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A short stable code for counting.
    pub kind: RejectKind,
    /// A sentence naming the record and the rule.
    pub reason: String,
}

impl Refusal {
    /// A refusal of this kind, with this reason.
    pub fn new(kind: RejectKind, reason: impl Into<String>) -> Self {
        Refusal { kind, reason: reason.into() }
    }

    /// The refused record as a reject kept with its origin and bytes.
    pub fn into_reject(self, source: impl Into<String>, original: Vec<u8>) -> Reject {
        Reject { source: source.into(), kind: self.kind, reason: self.reason, original, key: None }
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

macro_rules! reject_kinds {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// Why a record was refused: the closed list of codes kept with every
        /// reject (the `kind` of a dead letter, the `kind` label of
        /// `stockstream_rejects_total` in `/metrics`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RejectKind {
            $($(#[$doc])* $variant,)*
        }

        impl RejectKind {
            /// Every kind, in the order of the list.
            pub const ALL: &'static [RejectKind] = &[$(RejectKind::$variant,)*];

            /// The code as dead letters and metrics spell it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(RejectKind::$variant => $text,)*
                }
            }
        }
    };
}

reject_kinds! {
    // Rows of files.
    /// A row that is not text or cannot be split into fields.
    UnreadableRow = "unreadable_row",
    /// A field that is not valid UTF-8.
    InvalidUtf8 = "invalid_utf8",
    /// A row with another number of fields than its header.
    WrongFieldCount = "wrong_field_count",
    /// A price or volume field that is not a number.
    NotANumber = "not_a_number",
    /// A record longer than the reader's bound (its first 4 KiB kept).
    RecordTooLong = "record_too_long",
    /// A message that is not the wire format.
    Undecodable = "undecodable",
    // Bars.
    /// No company name.
    MissingCompany = "missing_company",
    /// No date.
    MissingDate = "missing_date",
    /// A date that cannot be read.
    BadDate = "bad_date",
    /// A date outside the years a market has.
    DateOutOfRange = "date_out_of_range",
    /// No price at all in the row.
    NoPrices = "no_prices",
    /// A value missing with nothing earlier to fill it from (or `--missing drop`).
    MissingValue = "missing_value",
    /// A price that is not finite.
    NonFinitePrice = "non_finite_price",
    /// A price of zero or less.
    NonPositivePrice = "non_positive_price",
    /// A negative or non-finite volume.
    BadVolume = "bad_volume",
    /// A VWAP outside the bar's low–high range, or not a number.
    BadVwap = "bad_vwap",
    /// A trade count that is not a whole number >= 0.
    BadTrades = "bad_trades",
    /// High below the open or the close.
    HighBelowOpenClose = "high_below_open_close",
    /// Low above the open or the close.
    LowAboveOpenClose = "low_above_open_close",
    /// A company name or symbol too long.
    NameTooLong = "name_too_long",
    /// A company name or symbol with a control character.
    ControlCharacter = "control_character",
    /// A second, identical row of a (company, date) within a batch.
    Duplicate = "duplicate",
    /// A row of a (company, date) that a later, different row replaced.
    Superseded = "superseded",
    /// A bar of another interval than its stream's (a daily date among
    /// intraday bars, an instant among daily ones, or closer to its company's
    /// previous bar than the stream's interval).
    MixedInterval = "mixed_interval",
    // Ticks and live feeds.
    /// A tick message that cannot be read.
    BadTick = "bad_tick",
    /// A tick without a symbol.
    MissingSymbol = "missing_symbol",
    /// A tick price that is not a positive number.
    BadPrice = "bad_price",
    /// A negative or non-finite size or day volume.
    BadSize = "bad_size",
    /// A tick more than a day ahead of the clock.
    FutureTime = "future_time",
    /// A tick dated before 1970-01-02, or, from a live feed, older than `--max-tick-age`.
    BadTime = "bad_time",
    /// A tick whose window is past its grace period.
    Late = "late",
    /// A tick outside the regular session, for daily bars.
    OutsideSession = "outside_session",
    /// A tick of one symbol more than the stage holds.
    TooManySymbols = "too_many_symbols",
    /// A tick of a symbol the feed was not subscribed to.
    Unsubscribed = "unsubscribed",
    /// A feed frame that is not JSON.
    BadJson = "bad_json",
    /// A Yahoo frame whose message is not base64.
    BadBase64 = "bad_base64",
    /// A Yahoo message that is not a `PricingData`.
    BadProtobuf = "bad_protobuf",
    /// A feed message of a type the feed does not define.
    UnknownMessage = "unknown_message",
    /// An error the feed reported.
    FeedError = "feed_error",
    /// A frame longer than the feed's bound.
    FrameTooLong = "frame_too_long",
    // Downloads.
    /// An adjusted download's row whose adjusted close is missing or not positive.
    BadAdjclose = "bad_adjclose",
}

impl std::fmt::Display for RejectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for RejectKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for RejectKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code_in_snake_case() {
        let mut codes: Vec<&str> = RejectKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(codes.iter().all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RejectKind::ALL.len(), "two kinds share a code");
    }

    /// The README's table of kinds is the list readers of dead letters and
    /// of `/metrics` go by: it names every kind, and no other.
    #[test]
    fn the_readme_lists_every_kind() {
        let readme = include_str!("../../../README.md");
        let listed: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split_once("` | ").map(|(kind, _)| kind))
            .filter(|k| k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
            .collect();
        for kind in RejectKind::ALL {
            assert!(listed.contains(&kind.as_str()), "the README does not list {kind}");
        }
    }
}
