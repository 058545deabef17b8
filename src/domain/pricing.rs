//! Model pricing (cc-bridge `pricing.json`) and model aliases (`model-aliases.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bounds::{self, InvalidField};

/// Prices in USD per million tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrice {
    pub input_price: f64,
    pub output_price: f64,
    /// `None` means input × 1.25 (cc-bridge); an explicit 0 means free.
    #[serde(default)]
    pub cache_creation_price: Option<f64>,
    /// `None` means input × 0.1 (cc-bridge).
    #[serde(default)]
    pub cache_read_price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_to_models: Option<bool>,
    #[serde(default)]
    pub version: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ModelPrice {
    /// Prices are USD per million tokens; 0 means free, negative means nothing.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let usd = bounds::PRICE_USD;
        usd.check("inputPrice", self.input_price)?;
        usd.check("outputPrice", self.output_price)?;
        usd.check_some("cacheCreationPrice", self.cache_creation_price)?;
        usd.check_some("cacheReadPrice", self.cache_read_price)
    }

    #[must_use]
    pub fn cache_creation(&self) -> f64 {
        self.cache_creation_price.unwrap_or(self.input_price * 1.25)
    }

    #[must_use]
    pub fn cache_read(&self) -> f64 {
        self.cache_read_price.unwrap_or(self.input_price * 0.1)
    }
}

/// Lookup structure: exact id first, then the longest matching prefix (case-sensitive before
/// case-insensitive). Longest-prefix makes the winner deterministic where cc-bridge's is not.
#[derive(Debug, Clone, Default)]
pub struct PricingTable {
    /// Sorted by descending key length, then by key, so the first match is the longest.
    by_length: Vec<(String, ModelPrice)>,
    exact: BTreeMap<String, usize>,
}

impl PricingTable {
    #[must_use]
    pub fn new<'a>(models: impl IntoIterator<Item = (&'a String, &'a ModelPrice)>) -> Self {
        let mut by_length: Vec<(String, ModelPrice)> = models
            .into_iter()
            .map(|(model, price)| (model.clone(), price.clone()))
            .collect();
        by_length.sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let exact = by_length
            .iter()
            .enumerate()
            .map(|(i, (model, _))| (model.clone(), i))
            .collect();
        Self { by_length, exact }
    }

    /// The price entry for `model`, and the key that matched.
    #[must_use]
    pub fn lookup(&self, model: &str) -> Option<(&str, &ModelPrice)> {
        if let Some(&i) = self.exact.get(model) {
            let (key, price) = &self.by_length[i];
            return Some((key, price));
        }
        let found = self
            .by_length
            .iter()
            .find(|(key, _)| model.starts_with(key.as_str()));
        let found = found.or_else(|| {
            let lower = model.to_lowercase();
            self.by_length
                .iter()
                .find(|(key, _)| lower.starts_with(&key.to_lowercase()))
        });
        found.map(|(key, price)| (key.as_str(), price))
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_length.is_empty()
    }
}

/// One entry of a `model-aliases.json` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelAlias {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The model names offered per pool (cc-bridge `model-aliases.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelAliases {
    #[serde(default)]
    pub messages_models: Vec<ModelAlias>,
    #[serde(default)]
    pub responses_models: Vec<ModelAlias>,
    #[serde(default)]
    pub gemini_models: Vec<ModelAlias>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chat_models: Vec<ModelAlias>,
    #[serde(default)]
    pub version: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: f64) -> ModelPrice {
        ModelPrice {
            input_price: input,
            ..ModelPrice::default()
        }
    }

    #[test]
    fn longest_prefix_wins_and_exact_beats_prefix() {
        let mut models = BTreeMap::new();
        models.insert("claude".to_string(), price(1.0));
        models.insert("claude-sonnet".to_string(), price(2.0));
        models.insert("claude-sonnet-4-5".to_string(), price(3.0));
        models.insert("claude-sonnet-4-5-20250929".to_string(), price(4.0));
        let table = PricingTable::new(&models);
        assert_eq!(
            table.lookup("claude-sonnet-4-5-20250929").map(|(k, _)| k),
            Some("claude-sonnet-4-5-20250929")
        );
        assert_eq!(
            table
                .lookup("claude-sonnet-4-5-latest")
                .map(|(_, p)| p.input_price),
            Some(3.0)
        );
        assert_eq!(
            table.lookup("claude-sonnet-3").map(|(_, p)| p.input_price),
            Some(2.0)
        );
        assert_eq!(
            table.lookup("claude-haiku").map(|(_, p)| p.input_price),
            Some(1.0)
        );
        assert_eq!(
            table.lookup("Claude-Sonnet-X").map(|(_, p)| p.input_price),
            Some(2.0)
        );
        assert!(table.lookup("gpt-5").is_none());
    }

    #[test]
    fn cache_prices_default_from_input() {
        let p = price(4.0);
        assert!((p.cache_creation() - 5.0).abs() < 1e-9);
        assert!((p.cache_read() - 0.4).abs() < 1e-9);
        let free = ModelPrice {
            cache_read_price: Some(0.0),
            ..price(4.0)
        };
        assert!(free.cache_read().abs() < 1e-12);
    }
}
