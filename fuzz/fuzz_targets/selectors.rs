//! Label and field selectors from the query string: any text parses or is refused with an error
//! (never a panic), and a parsed selector can be matched against objects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subsea_store::selector::{FieldSelector, LabelSelector};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let obj = serde_json::json!({"metadata": {"name": "a", "namespace": "default",
        "labels": {"app": "web", "tier": "front", "x.io/y": "z"}},
        "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
    if let Ok(sel) = LabelSelector::parse(text) {
        let _ = sel.matches(obj.pointer("/metadata/labels"));
        let _ = sel.matches(None);
    }
    if let Ok(sel) = FieldSelector::parse(text, &["spec.nodeName", "status.phase"]) {
        let _ = sel.matches(&obj);
    }
});
