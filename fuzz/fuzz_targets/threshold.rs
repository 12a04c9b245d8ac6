//! `--threshold`: any text is a rule or a one-line error; a rule reads back the same
//! from how it prints, and judging it on any run never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nehr_probe::report::histogram::histogram;
use nehr_probe::report::threshold::{Facts, Threshold};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Threshold::parse(text) {
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
        Ok(t) => {
            assert_eq!(Threshold::parse(&t.to_string()).as_ref(), Ok(&t));
            let mut latency = histogram();
            for us in [1, 250, 4_000, 60_000_000] {
                let _ = latency.record(us);
            }
            let empty = histogram();
            let cases = [(&latency, Some(&latency), Some(2), 4, 3), (&empty, None, None, 0, 0)];
            for (h, ok_latency, journeys_ok, requests, ok) in cases {
                let facts = Facts {
                    latency: h,
                    ok_latency,
                    then_latency: ok_latency,
                    journeys_ok,
                    requests,
                    ok,
                    dropped: 1,
                    achieved_rps: 2.5,
                    answered: requests,
                    http2: ok,
                };
                let judged = t.judge(&facts);
                let _ = t.show(judged.actual);
            }
        }
    }
});
