//! What hostile input must never break, checked the same way by the fuzz
//! targets (`fuzz/`) and by the tests over the kept corpus of nasty cases: no
//! panic; every record either becomes a valid bar that survives the wire format
//! unchanged, or is rejected with a reason (and, from a file, its original text).

use std::io::Cursor;

use stockstream_core::{codec, validate, Bar, Cleaner, MissingPolicy, Refusal};
use stockstream_sources::CsvSource;

/// How a hostile input was taken.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// Records accepted.
    pub accepted: usize,
    /// Records rejected with a reason.
    pub rejected: usize,
    /// The whole file was refused before any row (not a CSV in a known layout).
    pub refused: bool,
}

/// Reads `bytes` as a CSV file, as `stockstream run --input` does.
pub fn check_csv(bytes: &[u8]) -> Taken {
    let mut taken = Taken::default();
    let source = match CsvSource::from_reader("hostile.csv".into(), Box::new(Cursor::new(bytes.to_vec()))) {
        Ok(source) => source,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "a refused file gets a reason");
            taken.refused = true;
            return taken;
        }
    };
    let mut cleaner = Cleaner::new(MissingPolicy::Ffill);
    for item in source {
        let outcome = match item {
            Ok(record) => accept(&mut cleaner, record.raw).map_err(|r| r.reason),
            Err(reject) => {
                assert!(!reject.original.is_empty() || bytes.is_empty(), "a reject keeps its text: {reject:?}");
                Err(reject.reason)
            }
        };
        count(&mut taken, outcome);
    }
    taken
}

/// Decodes `bytes` as one wire message, as the consumer does.
pub fn check_json(bytes: &[u8]) -> Taken {
    let mut taken = Taken::default();
    let outcome = codec::decode(bytes).and_then(|raw| accept(&mut Cleaner::new(MissingPolicy::Drop), raw));
    count(&mut taken, outcome.map_err(|r| r.reason));
    taken
}

fn count(taken: &mut Taken, outcome: Result<Bar, String>) {
    match outcome {
        Ok(_) => taken.accepted += 1,
        Err(reason) => {
            assert!(!reason.trim().is_empty(), "a reject gets a reason");
            taken.rejected += 1;
        }
    }
}

/// Cleans and validates a record; an accepted bar must be sane and come back
/// unchanged through the wire format.
fn accept(cleaner: &mut Cleaner, raw: codec::RawBar) -> Result<Bar, Refusal> {
    let bar = cleaner.clean(&raw)?;
    validate(&bar)?;
    cleaner.remember(&bar);
    let values = [bar.open, bar.high, bar.low, bar.close, bar.volume];
    assert!(values.iter().all(|v| v.is_finite() && *v >= 0.0), "accepted {bar:?}");
    let wire = codec::encode(&bar);
    let back = codec::decode(&wire).unwrap_or_else(|r| panic!("{bar:?} does not decode from its own wire form: {r:?}"));
    let again = Cleaner::new(MissingPolicy::Drop).clean(&back).expect("its own wire form is complete");
    assert_eq!(again, bar, "the wire format changed the bar: {}", String::from_utf8_lossy(&wire));
    Ok(bar)
}
