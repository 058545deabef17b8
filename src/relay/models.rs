//! `GET /v1/models` and `GET /v1beta/models`: the model names a key may use, in the shape of
//! the protocol that asks — Anthropic's list when the request carries `anthropic-version`,
//! Gemini's under `/v1beta`, OpenAI's otherwise.
//!
//! Names come from the protocol's pools (Anthropic: messages; Gemini: gemini; OpenAI, the
//! list generic clients read: all): the model aliases offered there (`model-aliases.json`),
//! the names channels map requests to (`modelMapping` targets), the configured prices that
//! name a model (not a family prefix such as `claude-3`), and the built-in price list's models
//! of the vendors whose pools have a channel. The key's allowed models filter the result.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};
use serde_json::{Value, json};

use super::Endpoint;
use super::Relay;
use super::auth;
use crate::config::Snapshot;
use crate::domain::pricing::{Vendor, builtin};
use crate::domain::{ClientKey, Pool};
use crate::providers::Protocol;

/// Which list shape a `/v1/models` caller gets: Anthropic's SDKs send `anthropic-version`.
#[must_use]
pub fn protocol_of(headers: &HeaderMap) -> Protocol {
    if headers.contains_key("anthropic-version") {
        Protocol::Anthropic
    } else {
        Protocol::OpenAiChat
    }
}

pub fn list(
    relay: &Arc<Relay>,
    headers: &HeaderMap,
    query: Option<&str>,
    protocol: Protocol,
) -> Response {
    let live = relay.config.snapshot();
    let presented = auth::presented_key(headers, query, Endpoint::Models);
    let key = match auth::authenticate(&live, presented, crate::domain::now()) {
        Ok(key) => key,
        Err(error) => return error.into_response_for(protocol),
    };
    let names = model_names(&live, &key, protocol);
    let body = match protocol {
        Protocol::Anthropic => {
            let data: Vec<Value> = names
                .iter()
                .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}))
                .collect();
            json!({
                "data": data,
                "has_more": false,
                "first_id": names.first(),
                "last_id": names.last(),
            })
        }
        Protocol::Gemini => {
            let models: Vec<Value> = names
                .iter()
                .map(|id| {
                    json!({
                        "name": format!("models/{id}"),
                        "displayName": id,
                        "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
                    })
                })
                .collect();
            json!({ "models": models })
        }
        Protocol::OpenAiChat | Protocol::OpenAiResponses => {
            let data: Vec<Value> = names
                .iter()
                .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "relaybox" }))
                .collect();
            json!({ "object": "list", "data": data })
        }
    };
    axum::Json(body).into_response()
}

/// The pools a protocol's clients may name models of. OpenAI's list is the one generic
/// clients read, so it offers every pool's names.
fn pools_of(protocol: Protocol) -> &'static [Pool] {
    match protocol {
        Protocol::Anthropic => &[Pool::Messages],
        Protocol::Gemini => &[Pool::Gemini],
        Protocol::OpenAiChat | Protocol::OpenAiResponses => {
            &[Pool::Messages, Pool::Chat, Pool::Responses, Pool::Gemini]
        }
    }
}

/// Whose models a pool's upstreams serve.
fn vendor_of_pool(pool: Pool) -> Vendor {
    match pool {
        Pool::Messages => Vendor::Anthropic,
        Pool::Chat | Pool::Responses => Vendor::Openai,
        Pool::Gemini => Vendor::Gemini,
    }
}

/// The names `key` may use through `protocol`, sorted, without duplicates.
#[must_use]
pub fn model_names(live: &Snapshot, key: &ClientKey, protocol: Protocol) -> Vec<String> {
    let pools = pools_of(protocol);
    let builtin = builtin();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    let aliases = &live.aliases;
    for pool in pools {
        let offered = match pool {
            Pool::Messages => &aliases.messages_models,
            Pool::Chat => &aliases.chat_models,
            Pool::Responses => &aliases.responses_models,
            Pool::Gemini => &aliases.gemini_models,
        };
        names.extend(offered.iter().map(|a| a.value.as_str()));
        for channel in live.channels(*pool) {
            names.extend(channel.channel.model_mapping.values().map(String::as_str));
        }
    }
    let vendors: Vec<Vendor> = pools.iter().map(|pool| vendor_of_pool(*pool)).collect();
    // A configured price names a model unless it is only a family prefix of built-in models
    // (`claude-3`); `exportToModels` decides where it is set.
    for (model, price) in live.state.pricing.iter() {
        let is_family_prefix = !builtin.vendors.contains_key(model)
            && builtin
                .vendors
                .keys()
                .any(|id| id.starts_with(model.as_str()));
        let listed = price.export_to_models.unwrap_or(!is_family_prefix);
        let ours = builtin
            .vendor_of(model)
            .is_none_or(|v| vendors.contains(&v));
        if listed && ours {
            names.insert(model);
        }
    }
    // Built-in models of the vendors whose pools have a channel.
    if live.pricing.uses_builtin() {
        let served: Vec<Vendor> = pools
            .iter()
            .filter(|pool| !live.channels(**pool).is_empty())
            .map(|pool| vendor_of_pool(*pool))
            .collect();
        names.extend(
            builtin
                .listed
                .iter()
                .filter(|(_, v)| served.contains(v))
                .map(|(name, _)| name.as_str()),
        );
    }
    names
        .into_iter()
        .filter(|name| !name.is_empty())
        .filter(|name| {
            key.allow.models.is_empty()
                || key.allow.models.iter().any(|g| auth::glob_match(g, name))
        })
        .map(str::to_string)
        .collect()
}
