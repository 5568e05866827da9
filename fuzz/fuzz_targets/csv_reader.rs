//! Any bytes as a CSV file: no panic, every row accepted sanely or rejected with a reason.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    stockstream_testkit::hostile::check_csv(data);
});
