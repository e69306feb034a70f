//! broker-info.subm, a file users pass around: any text decodes or is refused, and whatever
//! decodes encodes back to the same information.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subsea_broker::info::BrokerInfo;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(info) = BrokerInfo::decode(&text) {
        let again = BrokerInfo::decode(&info.encode()).expect("what decodes re-encodes");
        assert_eq!(again.to_json(), info.to_json());
    }
});
