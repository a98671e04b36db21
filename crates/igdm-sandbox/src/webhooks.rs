//! Webhook delivery: turns [`crate::SandboxEvent`]s into Meta-shaped, signed
//! deliveries, and the `POST /_sandbox/webhooks` control endpoint.

use std::sync::Arc;

use axum::Router;

use crate::Sandbox;

/// Routes of the webhook control surface.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
}

/// Starts background delivery for a served sandbox.
pub fn start(sandbox: &Arc<Sandbox>) {
    let _ = sandbox;
}
