//! Arbitrary bytes as a target file: the input layer answers (a value or located errors), never
//! panics. libFuzzer's -timeout and -rss_limit_mb bound time and memory per input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_harness::support::diagnostics::SourceFile;

fuzz_target!(|data: &[u8]| {
    let source = SourceFile::new(std::path::Path::new("fuzz/target.yaml"), String::from_utf8_lossy(data).into_owned());
    let _ = oauth_harness::input::parse_target(&source);
});
