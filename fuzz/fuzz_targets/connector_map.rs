//! Responses: any body mapped through every action of every shipped connector gives
//! an output or an error, never a panic. Each action gets its required parameters
//! with the simplest values its declaration accepts.

#![no_main]

use std::sync::OnceLock;

use igdm_spec::{Connector, ParamSpec, ParamType};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// A value the declaration accepts, for the common shapes.
fn sample(p: &ParamSpec) -> Value {
    if let Some(d) = &p.default {
        return d.clone();
    }
    match p.kind {
        ParamType::String => json!("1"),
        ParamType::Number => json!(p.min.unwrap_or(1.0)),
        ParamType::Boolean => json!(true),
        ParamType::Enum => p.values.first().cloned().unwrap_or(Value::Null),
        ParamType::Array => {
            let item = p.items.as_deref().map_or(json!("1"), sample);
            Value::Array(vec![item; p.min_items.or(p.min_length).unwrap_or(1).max(1)])
        }
        ParamType::Object => Value::Object(
            p.properties.iter().filter(|(_, f)| f.required).map(|(k, f)| (k.clone(), sample(f))).collect(),
        ),
        _ => Value::Null,
    }
}

fn plans() -> &'static Vec<(Connector, Vec<(String, Map<String, Value>)>)> {
    static PLANS: OnceLock<Vec<(Connector, Vec<(String, Map<String, Value>)>)>> = OnceLock::new();
    PLANS.get_or_init(|| {
        igdm_connectors::all()
            .iter()
            .map(|(id, text)| {
                let connector = Connector::load(text, &format!("{id}.md")).expect("a shipped connector loads");
                let actions = connector
                    .actions()
                    .map(|a| {
                        let params = a
                            .params()
                            .iter()
                            .filter(|(_, p)| p.required)
                            .map(|(k, p)| (k.clone(), sample(p)))
                            .collect();
                        (a.name().to_owned(), params)
                    })
                    .collect();
                (connector, actions)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    for (connector, actions) in plans() {
        for (action, params) in actions {
            let _ = connector.map_body(action, params, data);
        }
    }
});
