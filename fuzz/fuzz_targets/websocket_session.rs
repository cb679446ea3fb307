#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| moq_fuzz::websocket::session(data));
