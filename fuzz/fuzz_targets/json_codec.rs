//! Any bytes as a wire message: no panic, accepted sanely or rejected with a reason.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    stockstream_testkit::hostile::check_json(data);
});
