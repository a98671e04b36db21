//! The official Instagram API (Graph): Send, Conversations, User Profile,
//! messenger_profile and handover APIs with their rate limits.

use std::sync::Arc;

use axum::Router;

use crate::Sandbox;

/// Routes of the Graph API surface.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
}
