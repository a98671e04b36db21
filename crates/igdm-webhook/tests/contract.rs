//! The webhook parser against Meta's documented example deliveries
//! (`connectors/fixtures/webhooks/`, one file per field).

use igdm_model::Timestamp;
use igdm_test::fixtures::contains;
use igdm_webhook::parse::{KNOWN_FIELDS, parse_delivery};
use serde_json::Value;

fn fixtures() -> Vec<(String, Value)> {
    igdm_test::fixtures::load("webhooks")
}

#[test]
fn every_parsed_field_has_a_documented_example() {
    let have: Vec<String> =
        fixtures().iter().filter_map(|(_, f)| f["field"].as_str().map(str::to_owned)).collect();
    let missing: Vec<&&str> =
        KNOWN_FIELDS.iter().filter(|f| !have.iter().any(|h| h == **f)).collect();
    assert!(missing.is_empty(), "webhook fields without a documented-example fixture: {missing:?}");
    for (name, f) in fixtures() {
        let field = f["field"].as_str().unwrap_or_default();
        assert!(KNOWN_FIELDS.contains(&field), "{name}: {field} is not a field the parser reads");
        assert!(f["examples"].as_array().is_some_and(|e| !e.is_empty()), "{name}: no examples");
        for s in f["sources"].as_array().expect("sources") {
            assert!(
                s.as_str().is_some_and(|s| s.starts_with("https://developers.facebook.com/")),
                "{name}: {s}"
            );
        }
    }
}

#[test]
fn documented_deliveries_parse_into_the_documented_events() {
    // A time far from every example, so a fallback to it shows.
    let received = Timestamp::from_unix_millis(1_900_000_000_000).expect("time");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, f) in fixtures() {
        for ex in f["examples"].as_array().map_or(&[][..], Vec::as_slice) {
            checked += 1;
            let label = format!("{name} / {}", ex["name"].as_str().unwrap_or_default());
            // Some pages show a delivery inside a list of notifications; each is a POST body.
            let bodies: Vec<&Value> = match &ex["body"] {
                Value::Array(list) => list.iter().collect(),
                one => vec![one],
            };
            let mut events = Vec::new();
            for body in bodies {
                let bytes = serde_json::to_vec(body).expect("bytes");
                match parse_delivery(&bytes, received) {
                    Ok(d) => events.extend(d.events),
                    Err(e) => failures.push(format!("{label}: not parsed: {e}")),
                }
            }
            let got: Vec<Value> = events
                .iter()
                .map(|p| serde_json::to_value(&p.event).expect("event JSON"))
                .collect();
            if let Some(unknown) = events.iter().find(|p| !p.is_known()) {
                failures
                    .push(format!("{label}: an event of unknown kind: {:?}", unknown.event.kind));
            }
            let got = Value::Array(got);
            if !contains(&got, &ex["expect"]) {
                failures.push(format!("{label}:\n  parsed   {got}\n  expected {}", ex["expect"]));
            }
        }
    }
    assert!(checked >= 25, "only {checked} examples");
    assert!(
        failures.is_empty(),
        "{} documented deliveries parsed wrongly:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
