//! Every embedded connector loads, and declares what igdm's clients rely on.

use igdm_spec::Connector;

#[test]
fn every_connector_loads() {
    for (id, text) in igdm_connectors::all() {
        let c = Connector::load(text, &format!("{id}.md")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.id, *id);
        assert!(c.capabilities.is_some(), "{id} declares capabilities");
        assert!(!c.classifier().rules.is_empty(), "{id} declares an error table");
    }
}
