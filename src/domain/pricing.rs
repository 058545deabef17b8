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
    /// Whether [`PricingTable::price`] falls back to the built-in list.
    builtin: bool,
}

/// The price a request is charged at.
#[derive(Debug, Clone, Copy)]
pub struct PriceMatch<'a> {
    /// The model name that was priced (the served model, or the requested one).
    pub model: &'a str,
    pub price: &'a ModelPrice,
    /// From the built-in list, not from a configured price.
    pub builtin: bool,
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
        Self {
            by_length,
            exact,
            builtin: false,
        }
    }

    /// This table with the built-in list behind it (configured prices still win).
    #[must_use]
    pub fn with_builtin(mut self, enabled: bool) -> Self {
        self.builtin = enabled;
        self
    }

    /// The price for the first of `models` (in order of preference) that has one: a
    /// configured price for any of them beats a built-in one for any of them, so a price set
    /// for the requested name is not overridden by a built-in price for the served one.
    #[must_use]
    pub fn price<'a>(&'a self, models: &[&'a str]) -> Option<PriceMatch<'a>> {
        let find_in = |table: &'a PricingTable, builtin: bool| {
            models
                .iter()
                .copied()
                .filter(|model| !model.is_empty())
                .find_map(|model| {
                    table.lookup(model).map(|(_, price)| PriceMatch {
                        model,
                        price,
                        builtin,
                    })
                })
        };
        find_in(self, false).or_else(|| {
            self.builtin
                .then(|| find_in(&builtin().table, true))
                .flatten()
        })
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

    /// Whether the built-in list stands behind this table.
    #[must_use]
    pub fn uses_builtin(&self) -> bool {
        self.builtin
    }
}

/// Whose model a built-in price is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Anthropic,
    Openai,
    Gemini,
}

/// The built-in price list (`prices.json` next to this file, embedded in the binary).
#[derive(Debug, Default)]
pub struct BuiltinPrices {
    /// The date the list was checked against the vendors' published prices.
    pub as_of: String,
    pub table: PricingTable,
    /// Model id (price key) → vendor, in id order.
    pub vendors: BTreeMap<String, Vendor>,
    /// The model names `GET /v1/models` offers, with their vendor, in name order.
    pub listed: Vec<(String, Vendor)>,
}

impl BuiltinPrices {
    /// The vendor of the built-in entry `model` falls under (exact or longest prefix).
    #[must_use]
    pub fn vendor_of(&self, model: &str) -> Option<Vendor> {
        let (key, _) = self.table.lookup(model)?;
        self.vendors.get(key).copied()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuiltinFile {
    as_of: String,
    models: BTreeMap<String, BuiltinEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BuiltinEntry {
    vendor: Vendor,
    input: f64,
    output: f64,
    cache_write: f64,
    cache_read: f64,
    /// The model name to list for a key that is a family prefix.
    #[serde(default)]
    list_as: Option<String>,
    #[serde(default = "yes")]
    listed: bool,
}

fn yes() -> bool {
    true
}

const BUILTIN_JSON: &str = include_str!("prices.json");

fn parse_builtin(text: &str) -> Result<BuiltinPrices, String> {
    let file: BuiltinFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut prices = BTreeMap::new();
    let mut vendors = BTreeMap::new();
    let mut listed = Vec::new();
    for (model, entry) in file.models {
        let price = ModelPrice {
            input_price: entry.input,
            output_price: entry.output,
            cache_creation_price: Some(entry.cache_write),
            cache_read_price: Some(entry.cache_read),
            ..ModelPrice::default()
        };
        price.validate().map_err(|e| format!("{model}: {e}"))?;
        if entry.listed {
            listed.push((entry.list_as.unwrap_or_else(|| model.clone()), entry.vendor));
        }
        vendors.insert(model.clone(), entry.vendor);
        prices.insert(model, price);
    }
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(BuiltinPrices {
        as_of: file.as_of,
        table: PricingTable::new(&prices),
        vendors,
        listed,
    })
}

/// The built-in price list, parsed once.
pub fn builtin() -> &'static BuiltinPrices {
    static BUILTIN: std::sync::LazyLock<BuiltinPrices> = std::sync::LazyLock::new(|| {
        // A unit test parses the embedded file, so this cannot fail in a released binary.
        parse_builtin(BUILTIN_JSON).unwrap_or_else(|error| {
            tracing::error!(%error, "the built-in price list does not parse; it is not used");
            BuiltinPrices::default()
        })
    });
    &BUILTIN
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
    fn the_builtin_list_parses_and_covers_current_models() {
        let builtin = parse_builtin(BUILTIN_JSON).unwrap();
        assert!(!builtin.as_of.is_empty());
        let table = builtin.table.clone().with_builtin(false);
        for model in [
            "claude-opus-4-20250514",
            "claude-opus-4-1-20250805",
            "claude-opus-4-5-20251101",
            "claude-sonnet-4-20250514",
            "claude-sonnet-4-5-20250929",
            "claude-haiku-4-5-20251001",
            "claude-3-5-haiku-20241022",
            "claude-3-7-sonnet-20250219",
            "gpt-4o-2024-11-20",
            "gpt-4o-mini-2024-07-18",
            "gpt-4.1-2025-04-14",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
            "o3-2025-04-16",
            "o4-mini-2025-04-16",
            "gpt-5-2025-08-07",
            "gpt-5-mini",
            "gpt-5-nano",
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.5-flash-lite",
            "gemini-2.0-flash-001",
        ] {
            let (_, price) = table.lookup(model).unwrap_or_else(|| panic!("{model}"));
            assert!(
                price.input_price > 0.0 && price.output_price > 0.0,
                "{model}"
            );
        }
        // Families resolve to their own entry, not a shorter neighbour's.
        let input = |model: &str| table.lookup(model).map(|(_, p)| p.input_price);
        assert_eq!(input("claude-opus-4-1-20250805"), Some(15.0));
        assert_eq!(input("claude-opus-4-5-20251101"), Some(5.0));
        assert_eq!(input("gpt-4o-mini-2024-07-18"), Some(0.15));
        assert_eq!(input("gemini-2.5-flash-lite"), Some(0.1));
        assert_eq!(input("o3-mini"), Some(1.1));
        assert!(table.lookup("llama-3-70b").is_none());
    }

    #[test]
    fn a_configured_price_beats_a_builtin_one_for_any_candidate_name() {
        let mut models = BTreeMap::new();
        models.insert("my-sonnet".to_string(), price(9.0));
        let table = PricingTable::new(&models).with_builtin(true);
        // Requested "my-sonnet", served "claude-sonnet-4-5-…": the configured price wins.
        let found = table
            .price(&["claude-sonnet-4-5-20250929", "my-sonnet"])
            .unwrap();
        assert!(!found.builtin);
        assert_eq!(found.model, "my-sonnet");
        assert!((found.price.input_price - 9.0).abs() < 1e-12);
        // Nothing configured for either name: the built-in price of the served model.
        let found = table.price(&["claude-sonnet-4-5-20250929", "x"]).unwrap();
        assert!(found.builtin);
        assert!((found.price.input_price - 3.0).abs() < 1e-12);
        // Without the built-in list: no price.
        let plain = PricingTable::new(&models);
        assert!(plain.price(&["claude-sonnet-4-5-20250929"]).is_none());
        assert!(table.price(&["", "unknown-model"]).is_none());
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
