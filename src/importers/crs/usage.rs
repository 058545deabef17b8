//! Usage statistics → `usage_daily` (format notes §5, §6).
//!
//! Per key and model claude-relay-service keeps daily hashes (32 days), monthly hashes (365
//! days) and an all-time hash, and per key lifetime totals (`usage:{id}`,
//! `usage:cost:total:{id}`). Each becomes a *contribution* to one `usage_daily` row:
//!
//! - a day: the day's figures, on the UTC date of that local day's noon;
//! - a month: what the month has beyond its days still in Redis, on its first day;
//! - a model's all time: what it has beyond its months, on the key's creation date;
//! - the key's totals: what they have beyond its models (older data, cost adjustments), under
//!   the model `(unattributed)`, on the key's creation date.
//!
//! So the imported totals of a key equal claude-relay-service's. Contributions are recorded in
//! `import_history` under stable names: a re-import applies only differences, and a day whose
//! hash has meanwhile expired from Redis keeps what was imported for it.
//!
//! Cost is the *rated* cost (what `dailyCostLimit`/`totalCostLimit` were measured against).

use std::collections::{BTreeMap, BTreeSet};

use time::{Date, Month, PrimitiveDateTime, Time};

use super::record::Record;
use super::source::Snapshot;
use crate::store::sqlite::{UsageContribution, UsageFigures};

/// The model name of a key's usage that no model accounts for.
pub const UNATTRIBUTED: &str = "(unattributed)";

/// Integer figures; cost in micro-USD (claude-relay-service's own unit per model).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub requests: i64,
    pub input: i64,
    pub output: i64,
    pub cache_create: i64,
    pub cache_read: i64,
    pub cost_micro: i64,
}

impl Figures {
    fn from_model_hash(record: &Record) -> Self {
        Self {
            requests: record.int("requests").unwrap_or(0),
            input: record.int("inputTokens").unwrap_or(0),
            output: record.int("outputTokens").unwrap_or(0),
            cache_create: record.int("cacheCreateTokens").unwrap_or(0),
            cache_read: record.int("cacheReadTokens").unwrap_or(0),
            cost_micro: record
                .int("ratedCostMicro")
                .or_else(|| record.int("realCostMicro"))
                .unwrap_or(0),
        }
    }

    fn from_totals(record: &Record) -> Self {
        let either =
            |new: &str, old: &str| record.int(new).or_else(|| record.int(old)).unwrap_or(0);
        Self {
            requests: either("totalRequests", "requests"),
            input: either("totalInputTokens", "inputTokens"),
            output: either("totalOutputTokens", "outputTokens"),
            cache_create: either("totalCacheCreateTokens", "cacheCreateTokens"),
            cache_read: either("totalCacheReadTokens", "cacheReadTokens"),
            cost_micro: 0,
        }
    }

    fn from_usage(usage: &UsageFigures) -> Self {
        Self {
            requests: usage.requests,
            input: usage.input_tokens,
            output: usage.output_tokens,
            cache_create: usage.cache_creation_tokens,
            cache_read: usage.cache_read_tokens,
            cost_micro: (usage.cost * 1e6).round() as i64,
        }
    }

    fn add(self, other: Self) -> Self {
        Self {
            requests: self.requests + other.requests,
            input: self.input + other.input,
            output: self.output + other.output,
            cache_create: self.cache_create + other.cache_create,
            cache_read: self.cache_read + other.cache_read,
            cost_micro: self.cost_micro + other.cost_micro,
        }
    }

    /// `self - other`, each figure at least 0; the flag says whether one was cut.
    fn rest(self, other: Self) -> (Self, bool) {
        let cut = |a: i64, b: i64| ((a - b).max(0), a < b);
        let parts = [
            cut(self.requests, other.requests),
            cut(self.input, other.input),
            cut(self.output, other.output),
            cut(self.cache_create, other.cache_create),
            cut(self.cache_read, other.cache_read),
            cut(self.cost_micro, other.cost_micro),
        ];
        (
            Self {
                requests: parts[0].0,
                input: parts[1].0,
                output: parts[2].0,
                cache_create: parts[3].0,
                cache_read: parts[4].0,
                cost_micro: parts[5].0,
            },
            parts.iter().any(|(_, c)| *c),
        )
    }

    fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    pub fn tokens(&self) -> i64 {
        self.input + self.output + self.cache_create + self.cache_read
    }

    fn usage(&self) -> UsageFigures {
        UsageFigures {
            requests: self.requests,
            input_tokens: self.input,
            output_tokens: self.output,
            cache_creation_tokens: self.cache_create,
            cache_read_tokens: self.cache_read,
            cost: self.cost_micro as f64 / 1e6,
        }
    }
}

/// The usage of one claude-relay-service key, as in Redis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyUsage {
    pub days: BTreeMap<(String, Date), Figures>,
    pub months: BTreeMap<(String, (i32, u8)), Figures>,
    pub alltime: BTreeMap<String, Figures>,
    /// `usage:{id}` (tokens and requests).
    pub total: Option<Figures>,
    /// `usage:cost:total:{id}`, rated USD.
    pub cost_total: Option<f64>,
}

fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || text.len() != 10 {
        return None;
    }
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn parse_month(text: &str) -> Option<(i32, u8)> {
    let (year, month) = text.split_once('-')?;
    let month: u8 = month.parse().ok()?;
    (text.len() == 7 && (1..=12).contains(&month)).then_some((year.parse().ok()?, month))
}

#[must_use]
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The UTC date a local day of claude-relay-service is counted on: the date of its noon in UTC.
/// For offsets between -12 and +12 hours that is the same date (the local day overlaps it by
/// 12 hours or more); either way two local days never share one UTC date, so totals per key
/// are kept exactly.
#[must_use]
pub fn utc_day(local: Date, offset_minutes: i32) -> Date {
    (PrimitiveDateTime::new(local, Time::MIDNIGHT + time::Duration::hours(12))
        - time::Duration::minutes(i64::from(offset_minutes)))
    .date()
}

/// Every key's usage in the snapshot, by claude-relay-service key id.
pub fn read_usage(snapshot: &Snapshot) -> (BTreeMap<String, KeyUsage>, Vec<String>) {
    let mut out: BTreeMap<String, KeyUsage> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for (rest, _) in snapshot.with_prefix("usage:") {
        let name = format!("usage:{rest}");
        if let Some(id) = rest.strip_prefix("cost:total:") {
            match snapshot
                .string(&name)
                .and_then(|v| v.trim().parse::<f64>().ok())
            {
                Some(cost) if cost.is_finite() => {
                    out.entry(id.to_string()).or_default().cost_total = Some(cost)
                }
                _ => unreadable.push(name),
            }
            continue;
        }
        let Some(fields) = snapshot.hash(&name) else {
            unreadable.push(name);
            continue;
        };
        let record = Record::from_hash(fields);
        let (id, tail) = rest.split_once(':').unwrap_or((rest, ""));
        let usage = out.entry(id.to_string()).or_default();
        if tail.is_empty() {
            usage.total = Some(Figures::from_totals(&record));
        } else if let Some(model) = tail.strip_prefix("model:alltime:") {
            usage
                .alltime
                .insert(model.to_string(), Figures::from_model_hash(&record));
        } else if let Some(spec) = tail.strip_prefix("model:daily:") {
            match spec
                .rsplit_once(':')
                .and_then(|(m, d)| Some((m, parse_date(d)?)))
            {
                Some((model, date)) => {
                    usage
                        .days
                        .insert((model.to_string(), date), Figures::from_model_hash(&record));
                }
                None => unreadable.push(name),
            }
        } else if let Some(spec) = tail.strip_prefix("model:monthly:") {
            match spec
                .rsplit_once(':')
                .and_then(|(m, d)| Some((m, parse_month(d)?)))
            {
                Some((model, month)) => {
                    usage.months.insert(
                        (model.to_string(), month),
                        Figures::from_model_hash(&record),
                    );
                }
                None => unreadable.push(name),
            }
        }
    }
    (out, unreadable)
}

/// What the import contributes, compared with what earlier imports did.
#[derive(Debug, Default)]
pub struct UsagePlan {
    /// Every contribution from the source (new, changed and unchanged).
    pub contributions: Vec<UsageContribution>,
    /// The ones that differ from the ledger (to apply).
    pub changed: Vec<UsageContribution>,
    pub unchanged: u64,
    /// Earlier contributions whose source has expired from Redis: kept as imported.
    pub kept: u64,
    pub skipped: Vec<(String, String)>,
    pub notes: Vec<String>,
    /// Lifetime figures in claude-relay-service, and carried over (contributions incl. kept).
    pub source_total: (Figures, f64),
    pub imported_total: (Figures, f64),
}

/// A key being imported: its relaybox id and the date of its creation (UTC).
#[derive(Debug, Clone)]
pub struct KeyRef {
    pub id: String,
    pub name: String,
    pub created: Date,
}

fn item(key: &str, kind: &str, period: &str, model: &str) -> String {
    format!("usage/{key}/{kind}/{period}/{model}")
}

/// `(kind, period, model)` of a ledger item of `key`.
fn parse_item<'a>(key: &str, item: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
    let rest = item
        .strip_prefix("usage/")?
        .strip_prefix(key)?
        .strip_prefix('/')?;
    let mut parts = rest.splitn(3, '/');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

pub fn plan_usage(
    usage: &BTreeMap<String, KeyUsage>,
    keys: &BTreeMap<String, KeyRef>,
    ledger: &BTreeMap<String, UsageContribution>,
    offset_minutes: i32,
) -> UsagePlan {
    let mut plan = UsagePlan::default();
    for (crs_id, source) in usage {
        let Some(key) = keys.get(crs_id) else {
            let figures = source.total.unwrap_or_default();
            plan.skipped.push((
                format!("usage of key {crs_id}"),
                format!(
                    "there is no apikey:{crs_id} record (deleted, or expired from Redis after a year unused), so there is no key to count {} request(s) / {} token(s) for",
                    figures.requests,
                    figures.tokens()
                ),
            ));
            continue;
        };
        let prefix = format!("usage/{}/", key.id);
        let earlier: BTreeMap<&str, &UsageContribution> = ledger
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let mut desired: Vec<UsageContribution> = Vec::new();
        let mut kept: Vec<&UsageContribution> = Vec::new();
        let contribution =
            |kind: &str, period: &str, model: &str, day: Date, usage: UsageFigures| {
                UsageContribution {
                    item: item(&key.id, kind, period, model),
                    key_id: key.id.clone(),
                    model: model.to_string(),
                    day: format_date(day),
                    usage,
                }
            };
        let created = key.created;
        let mut models: BTreeSet<String> = BTreeSet::new();
        models.extend(source.days.keys().map(|(m, _)| m.clone()));
        models.extend(source.months.keys().map(|(m, _)| m.clone()));
        models.extend(source.alltime.keys().cloned());
        for item in earlier.keys() {
            if let Some((_, _, model)) = parse_item(&key.id, item)
                && model != UNATTRIBUTED
            {
                models.insert(model.to_string());
            }
        }
        let mut key_covered = Figures::default();
        for model in &models {
            // Days: from Redis, or kept from an earlier import.
            let mut days: BTreeMap<Date, Figures> = source
                .days
                .iter()
                .filter(|((m, _), _)| m == model)
                .map(|((_, d), f)| (*d, *f))
                .collect();
            for (item, earlier) in &earlier {
                if let Some(("day", period, m)) = parse_item(&key.id, item)
                    && m == model
                    && let Some(date) = parse_date(period)
                    && !days.contains_key(&date)
                {
                    days.insert(date, Figures::from_usage(&earlier.usage));
                    kept.push(earlier);
                }
            }
            for (date, figures) in &days {
                if source.days.contains_key(&(model.clone(), *date)) {
                    desired.push(contribution(
                        "day",
                        &format_date(*date),
                        model,
                        utc_day(*date, offset_minutes),
                        figures.usage(),
                    ));
                }
            }
            let mut covered = days.values().fold(Figures::default(), |a, f| a.add(*f));
            // Months: beyond their days.
            let mut month_keys: BTreeSet<(i32, u8)> = source
                .months
                .keys()
                .filter(|(m, _)| m == model)
                .map(|(_, month)| *month)
                .collect();
            for (item, earlier) in &earlier {
                if let Some(("month", period, m)) = parse_item(&key.id, item)
                    && m == model
                    && let Some(month) = parse_month(period)
                    && !source.months.contains_key(&(model.clone(), month))
                {
                    covered = covered.add(Figures::from_usage(&earlier.usage));
                    kept.push(earlier);
                    month_keys.remove(&month);
                }
            }
            for (year, month) in month_keys {
                let Some(figures) = source.months.get(&(model.clone(), (year, month))) else {
                    continue;
                };
                let in_month = days
                    .iter()
                    .filter(|(d, _)| d.year() == year && u8::from(d.month()) == month)
                    .fold(Figures::default(), |a, (_, f)| a.add(*f));
                let (rest, cut) = figures.rest(in_month);
                let period = format!("{year:04}-{month:02}");
                if cut {
                    plan.notes.push(format!(
                        "key {} model {model}: the days of {period} add up to more than the month; the month adds nothing",
                        key.name
                    ));
                }
                if !rest.is_zero()
                    && let Some(first) = Month::try_from(month)
                        .ok()
                        .and_then(|m| Date::from_calendar_date(year, m, 1).ok())
                {
                    desired.push(contribution(
                        "month",
                        &period,
                        model,
                        utc_day(first, offset_minutes),
                        rest.usage(),
                    ));
                    covered = covered.add(rest);
                }
            }
            // All time: beyond the months.
            match source.alltime.get(model) {
                Some(alltime) => {
                    let (rest, cut) = alltime.rest(covered);
                    if cut {
                        plan.notes.push(format!(
                            "key {} model {model}: days and months add up to more than its all-time figures; all time adds nothing",
                            key.name
                        ));
                    }
                    if !rest.is_zero() {
                        desired.push(contribution("total", "-", model, created, rest.usage()));
                        covered = covered.add(rest);
                    }
                }
                None => {
                    if let Some(earlier) = earlier.get(item(&key.id, "total", "-", model).as_str())
                    {
                        covered = covered.add(Figures::from_usage(&earlier.usage));
                        kept.push(earlier);
                    }
                }
            }
            key_covered = key_covered.add(covered);
        }
        // The key's totals beyond its models.
        let covered_cost = key_covered.cost_micro as f64 / 1e6;
        let source_figures = source.total.unwrap_or(key_covered);
        let source_cost = source.cost_total.unwrap_or(covered_cost);
        let (mut rest, cut) = source_figures.rest(Figures {
            cost_micro: 0,
            ..key_covered
        });
        rest.cost_micro = 0;
        if cut {
            plan.notes.push(format!(
                "key {}: its per-model figures add up to more than its totals (usage:{crs_id}); the totals add nothing",
                key.name
            ));
        }
        // Per-model costs are whole micro-dollars per request; the total is not rounded.
        let noise = (0.5 * source_figures.requests as f64 + 1.0) * 1e-6;
        let mut rest_cost = source_cost - covered_cost;
        if rest_cost.abs() <= noise {
            rest_cost = 0.0;
        } else {
            plan.notes.push(format!(
                "key {}: usage:cost:total differs from its per-model costs by ${rest_cost:.6} (cost adjustments in claude-relay-service); counted under the model {UNATTRIBUTED}",
                key.name
            ));
        }
        let total_item = item(&key.id, "total", "-", UNATTRIBUTED);
        if source.total.is_some() || source.cost_total.is_some() {
            if !rest.is_zero() || rest_cost != 0.0 {
                let mut usage = rest.usage();
                usage.cost = rest_cost;
                desired.push(contribution("total", "-", UNATTRIBUTED, created, usage));
            }
        } else if let Some(earlier) = earlier.get(total_item.as_str()) {
            kept.push(earlier);
        }

        // Earlier contributions the source no longer yields (e.g. a month whose days are all
        // in Redis now) are withdrawn: contributed again as zero.
        let kept_items: BTreeSet<&str> = kept.iter().map(|k| k.item.as_str()).collect();
        let wanted_items: BTreeSet<String> = desired.iter().map(|c| c.item.clone()).collect();
        for (item, e) in &earlier {
            if !kept_items.contains(item)
                && !wanted_items.contains(*item)
                && e.usage != UsageFigures::default()
            {
                desired.push(UsageContribution {
                    usage: UsageFigures::default(),
                    ..(*e).clone()
                });
            }
        }

        // Compare with the ledger; sum up for the verification.
        let mut imported = Figures::default();
        let mut imported_cost = 0.0;
        for c in &desired {
            imported = imported.add(Figures::from_usage(&c.usage));
            imported_cost += c.usage.cost;
            match earlier.get(c.item.as_str()) {
                Some(e) if *e == c => plan.unchanged += 1,
                _ => plan.changed.push(c.clone()),
            }
        }
        for k in &kept {
            imported = imported.add(Figures::from_usage(&k.usage));
            imported_cost += k.usage.cost;
        }
        plan.kept += kept.len() as u64;
        let (s, sc) = plan.source_total;
        plan.source_total = (
            s.add(Figures {
                cost_micro: 0,
                ..source.total.unwrap_or(key_covered)
            }),
            sc + source_cost,
        );
        let (i, ic) = plan.imported_total;
        plan.imported_total = (
            i.add(Figures {
                cost_micro: 0,
                ..imported
            }),
            ic + imported_cost,
        );
        plan.contributions.extend(desired);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        parse_date(text).unwrap()
    }

    #[test]
    fn local_days_map_to_the_utc_date_of_their_noon() {
        assert_eq!(utc_day(date("2026-11-21"), 8 * 60), date("2026-11-21"));
        assert_eq!(utc_day(date("2026-11-21"), -5 * 60), date("2026-11-21"));
        assert_eq!(utc_day(date("2026-11-21"), 13 * 60), date("2026-11-20"));
        assert_eq!(utc_day(date("2026-01-01"), 14 * 60), date("2025-12-31"));
        assert!(parse_date("2026-11-2").is_none());
        assert_eq!(parse_month("2026-10"), Some((2026, 10)));
        assert!(parse_month("2026-13").is_none());
    }

    fn figures(requests: i64, input: i64, cost_micro: i64) -> Figures {
        Figures {
            requests,
            input,
            cost_micro,
            ..Figures::default()
        }
    }

    #[test]
    fn months_and_totals_add_what_the_days_do_not_have() {
        let mut source = KeyUsage::default();
        source
            .days
            .insert(("m".into(), date("2026-11-21")), figures(2, 20, 200));
        source
            .months
            .insert(("m".into(), (2026, 11)), figures(3, 30, 300));
        source
            .months
            .insert(("m".into(), (2026, 10)), figures(1, 10, 100));
        source.alltime.insert("m".into(), figures(5, 50, 500));
        source.total = Some(figures(6, 60, 0));
        source.cost_total = Some(0.0006);
        let usage = BTreeMap::from([("k".to_string(), source)]);
        let keys = BTreeMap::from([(
            "k".to_string(),
            KeyRef {
                id: "crs-k".into(),
                name: "k".into(),
                created: date("2025-01-02"),
            },
        )]);
        let plan = plan_usage(&usage, &keys, &BTreeMap::new(), 8 * 60);
        let by_item: BTreeMap<&str, &UsageContribution> = plan
            .contributions
            .iter()
            .map(|c| (c.item.as_str(), c))
            .collect();
        assert_eq!(by_item["usage/crs-k/day/2026-11-21/m"].usage.requests, 2);
        assert_eq!(by_item["usage/crs-k/month/2026-11/m"].usage.requests, 1);
        assert_eq!(by_item["usage/crs-k/month/2026-11/m"].day, "2026-11-01");
        assert_eq!(by_item["usage/crs-k/month/2026-10/m"].usage.requests, 1);
        assert_eq!(by_item["usage/crs-k/total/-/m"].usage.requests, 1);
        assert_eq!(by_item["usage/crs-k/total/-/m"].day, "2025-01-02");
        let rest = by_item["usage/crs-k/total/-/(unattributed)"];
        assert_eq!(rest.usage.requests, 1);
        assert!((rest.usage.cost - 0.0001).abs() < 1e-12);
        assert_eq!(plan.source_total.0.requests, 6);
        assert_eq!(plan.imported_total.0.requests, 6);
        assert!((plan.imported_total.1 - 0.0006).abs() < 1e-12);
        assert_eq!(plan.changed.len(), plan.contributions.len());

        // Second run with the ledger: nothing changes.
        let ledger: BTreeMap<String, UsageContribution> = plan
            .contributions
            .iter()
            .map(|c| (c.item.clone(), c.clone()))
            .collect();
        let again = plan_usage(&usage, &keys, &ledger, 8 * 60);
        assert!(again.changed.is_empty());
        assert_eq!(again.unchanged, plan.contributions.len() as u64);

        // The day expires from Redis: it is kept, and the month does not count it twice.
        let mut expired = usage.clone();
        expired.get_mut("k").unwrap().days.clear();
        let later = plan_usage(&expired, &keys, &ledger, 8 * 60);
        assert!(later.changed.is_empty(), "{:?}", later.changed);
        assert_eq!(later.kept, 1);
        assert_eq!(later.imported_total.0.requests, 6);

        // The month's other request turns up as a day: the month's rest is withdrawn.
        let mut more = usage.clone();
        more.get_mut("k")
            .unwrap()
            .days
            .insert(("m".into(), date("2026-11-20")), figures(1, 10, 100));
        let filled = plan_usage(&more, &keys, &ledger, 8 * 60);
        let withdrawn: Vec<&UsageContribution> = filled
            .changed
            .iter()
            .filter(|c| c.item == "usage/crs-k/month/2026-11/m")
            .collect();
        assert_eq!(withdrawn.len(), 1);
        assert_eq!(withdrawn[0].usage, UsageFigures::default());
        assert_eq!(filled.imported_total.0.requests, 6);
    }
}
