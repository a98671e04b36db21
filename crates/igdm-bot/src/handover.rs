//! Handing a conversation to a person and back, through Meta's Handover
//! Protocol where the account has it (the Facebook Login flavour) and
//! always in the bot state the running bot reads.

use igdm::Client;
use igdm::handover::{Thread, pass_params, request_params, take_params};
use igdm_model::Timestamp;
use igdm_store::MessageStore;

use crate::{BotError, release, take_over};

/// What a handover changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandoverDone {
    /// The Graph action called (`pass_thread_control`,
    /// `take_thread_control`, `request_thread_control`), or `None` where
    /// the account's API has no handover and only the local state changed.
    pub meta_action: Option<&'static str>,
    /// For a release: whether the conversation had been taken over.
    pub was_taken: bool,
}

/// Hands the conversation with `customer` to a person: passes thread
/// control to `inbox_app_id` where the account's API offers it, then pauses
/// the bot for this customer until [`give_back`].
///
/// # Errors
/// The Graph call's error (nothing is recorded then), store errors.
pub async fn hand_to_person(
    client: &Client,
    store: &dyn MessageStore,
    account: &str,
    customer: &str,
    now: Timestamp,
    inbox_app_id: &str,
    metadata: &str,
) -> Result<HandoverDone, BotError> {
    let mut meta_action = None;
    if client.supports("pass_thread_control") {
        let p = pass_params(Thread::User(customer), Some(inbox_app_id), Some(metadata));
        client.invoke("pass_thread_control", p).await?;
        meta_action = Some("pass_thread_control");
    }
    take_over(store, account, customer, now).await?;
    Ok(HandoverDone { meta_action, was_taken: true })
}

/// Gives the conversation with `customer` back to the bot: takes thread
/// control back where the account's API offers it, then clears the pause.
///
/// # Errors
/// The Graph call's error (the pause stays then), store errors.
pub async fn give_back(
    client: &Client,
    store: &dyn MessageStore,
    account: &str,
    customer: &str,
    metadata: &str,
) -> Result<HandoverDone, BotError> {
    let mut meta_action = None;
    if client.supports("take_thread_control") {
        client
            .invoke("take_thread_control", take_params(Thread::User(customer), Some(metadata)))
            .await?;
        meta_action = Some("take_thread_control");
    }
    let was_taken = release(store, account, customer).await?;
    Ok(HandoverDone { meta_action, was_taken })
}

/// Asks the app in control of the conversation to pass it to this one.
/// Only the Handover Protocol has this; elsewhere the client refuses it
/// with the reason before any request.
///
/// # Errors
/// An account without the Handover Protocol, the Graph call's error.
pub async fn request_control(
    client: &Client,
    customer: &str,
    metadata: &str,
) -> Result<HandoverDone, BotError> {
    client
        .invoke("request_thread_control", request_params(Thread::User(customer), Some(metadata)))
        .await?;
    Ok(HandoverDone { meta_action: Some("request_thread_control"), was_taken: false })
}
