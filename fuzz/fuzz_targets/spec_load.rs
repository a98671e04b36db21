//! Connector files: loading arbitrary text never panics, and a file that
//! loads can build every action's request without panicking.

#![no_main]

use std::sync::Arc;

use igdm_spec::{Connector, Executor, HttpRequest, HttpResponse, Session, Transport, TransportError};
use libfuzzer_sys::fuzz_target;

/// A transport that is never called (only requests are built).
struct Nowhere;

impl Transport for Nowhere {
    fn send(&self, _req: HttpRequest) -> futures_util::BoxFuture<'_, Result<HttpResponse, TransportError>> {
        unreachable!("the fuzz target never sends")
    }
}

mod futures_util {
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(connector) = Connector::load(text, "fuzz.md") else { return };
    let connector = Arc::new(connector);
    let exec = Executor::new(connector.clone(), Arc::new(Nowhere));
    let session = Session::new().with_cookies([("sessionid", "s")]).with_device_uuid("u");
    for action in connector.actions() {
        let _ = exec.build_request(action.name(), &serde_json::Map::new(), &session);
    }
});
