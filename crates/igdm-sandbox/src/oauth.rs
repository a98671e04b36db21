//! OAuth endpoints (Instagram Login and Facebook Login flavours).

use std::sync::Arc;

use axum::Router;

use crate::Sandbox;

/// Routes of the OAuth surface.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
}
