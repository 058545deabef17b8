//! `pricing.json` → price ops and the currency setting.

use serde_json::Value;

use crate::domain::{ModelPrice, Settings};
use crate::importers::cc_bridge::source::{self, SrcPrice, SrcPricing};
use crate::importers::cc_bridge::validate;
use crate::importers::cc_bridge::{ConfigFile, FileError};
use crate::store::{ConfigOp, ConfigState, Expect};

/// What a `pricing.json` plan does.
#[derive(Debug, Default)]
pub(crate) struct PricingPlan {
    pub ops: Vec<ConfigOp>,
    pub found: u64,
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub removed: u64,
}

/// Parse + validate `pricing.json`: a `PutPrice` per new or changed model, a `DeletePrice` per
/// model no longer in the file, and the currency into the settings.
pub fn plan_pricing(bytes: &[u8], current: &ConfigState) -> Result<Vec<ConfigOp>, FileError> {
    Ok(plan_pricing_detailed(bytes, current)?.ops)
}

pub(crate) fn plan_pricing_detailed(
    bytes: &[u8],
    current: &ConfigState,
) -> Result<PricingPlan, FileError> {
    let (src, raw): (SrcPricing, Value) = source::parse(ConfigFile::Pricing, bytes)?;
    validate::pricing(&src)?;
    let known = source::known_keys::<SrcPrice>();
    let mut plan = PricingPlan {
        found: src.models.len() as u64,
        ..PricingPlan::default()
    };
    for (model, price) in &src.models {
        let existing = current.pricing.get(model);
        let desired = ModelPrice {
            input_price: price.input_price,
            output_price: price.output_price,
            cache_creation_price: price.cache_creation_price,
            cache_read_price: price.cache_read_price,
            description: price.description.clone(),
            export_to_models: price.export_to_models,
            version: existing.map_or(0, |e| e.version),
            extra: source::extras(
                raw.get("models").and_then(|m| m.get(model)),
                &known,
                &["version"],
            ),
        };
        match existing {
            Some(existing) if *existing == desired => plan.unchanged += 1,
            Some(_) => {
                plan.changed += 1;
                plan.ops
                    .push(ConfigOp::PutPrice(model.clone(), desired, Expect::Any));
            }
            None => {
                plan.new += 1;
                plan.ops
                    .push(ConfigOp::PutPrice(model.clone(), desired, Expect::Any));
            }
        }
    }
    for model in current
        .pricing
        .keys()
        .filter(|m| !src.models.contains_key(*m))
    {
        plan.removed += 1;
        plan.ops
            .push(ConfigOp::DeletePrice(model.clone(), Expect::Any));
    }
    let currency = match src.currency.trim() {
        "" => "USD".to_string(),
        other => other.to_string(),
    };
    if current.settings.pricing_currency != currency {
        let settings = Settings {
            pricing_currency: currency,
            ..current.settings.clone()
        };
        plan.ops.push(ConfigOp::PutSettings(settings, Expect::Any));
    }
    Ok(plan)
}
