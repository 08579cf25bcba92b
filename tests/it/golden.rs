//! Golden documents: the examples of DESIGN §3 parse, and serialize back to the same JSON.

use ebssnap::core::doc::{self, Document};
use serde_json::Value;

fn golden(name: &str) -> String {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn policy_document_round_trips() {
    let text = golden("policy.json");
    let Document::Policy(p) = doc::parse_document(&text).unwrap() else {
        panic!("not a policy")
    };
    assert_eq!(p.rules().days, 14);
    assert_eq!(p.rules().min_snapshots, 7);
    assert_eq!(
        p.webhook_url(),
        Some("https://tickets.example.com/hooks/ebs")
    );
    assert_eq!(
        p.invocation.as_ref().unwrap().scheduled_time(),
        None,
        "placeholders are not a time"
    );
    let back: Value = serde_json::to_value(&p).unwrap();
    assert_eq!(back, serde_json::from_str::<Value>(&text).unwrap());
}

#[test]
fn target_document_round_trips() {
    let text = golden("target.json");
    let Document::Target(t) = doc::parse_document(&text).unwrap() else {
        panic!("not a target")
    };
    assert_eq!(t.select.asg_names(), ["web-prod"]);
    assert_eq!(t.exclude().volume_tags().unwrap()["NoBackup"], "*");
    let back: Value = serde_json::to_value(&t).unwrap();
    assert_eq!(back, serde_json::from_str::<Value>(&text).unwrap());
    assert!(doc::to_input(&t).unwrap().len() < doc::MAX_INPUT_CHARS);
}

#[test]
fn minimal_documents_are_accepted() {
    for name in ["policy-minimal.json", "target-minimal.json"] {
        doc::parse_document(&golden(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn bad_documents_are_refused_with_the_reason() {
    let cases = [
        ("bad-unknown-field.json", "unknown field `selectt`"),
        ("bad-newer-version.json", "upgrade the runner"),
        ("bad-empty-selector.json", "selector is empty"),
    ];
    for (name, want) in cases {
        let err = doc::parse_document(&golden(name)).unwrap_err().to_string();
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn the_runner_examples_are_valid_documents() {
    for name in ["policy.json", "target.json"] {
        let path = format!("{}/examples/runner/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        doc::parse_document(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

#[test]
fn registry_docs_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (rel, want) in ebssnap::provider::docs::render_all(root) {
        let have = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
        if have != want {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "generated docs are stale: {stale:?}; run `make docs` and commit"
    );
}

#[test]
fn registry_manifest_declares_protocol_6() {
    let path = format!(
        "{}/terraform-registry-manifest.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"version": 1, "metadata": {"protocol_versions": ["6.0"]}})
    );
}
