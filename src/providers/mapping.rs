//! A channel's `modelMapping` (cc-bridge semantics): which upstream model a requested model
//! becomes.
//!
//! Match order:
//! 1. the exact requested name (`"o3(xhigh)"` → its target, as is);
//! 2. when the request has a `(suffix)`, the exact base name (`"o3"`), with the suffix put back
//!    on the target unless the target has its own suffix;
//! 3. substring matching, longest source first (ties in name order): a source contained in the
//!    requested model, or the requested model contained in the source ("bidirectional"); tried
//!    with the base name, then the full name; the suffix is put back as in 2.

use std::collections::BTreeMap;

/// Maps `model` through `mapping`; `None` when nothing matches. See the module docs.
#[must_use]
pub fn map_model(mapping: &BTreeMap<String, String>, model: &str) -> Option<String> {
    if mapping.is_empty() {
        return None;
    }
    let by_length = sorted_by_length(mapping.iter().map(|(s, t)| (s.as_str(), t.as_str())));
    resolve(
        |name| mapping.get(name).map(String::as_str),
        &by_length,
        model,
    )
}

/// A `modelMapping` prepared once (for a configuration snapshot), so that mapping a request
/// does not sort the entries each time.
#[derive(Debug, Clone, Default)]
pub struct ModelMapper {
    exact: BTreeMap<String, String>,
    /// (source, target), longest source first, ties in name order.
    by_length: Vec<(String, String)>,
}

impl ModelMapper {
    #[must_use]
    pub fn new(mapping: &BTreeMap<String, String>) -> Self {
        let by_length = sorted_by_length(mapping.iter().map(|(s, t)| (s.as_str(), t.as_str())))
            .into_iter()
            .map(|(s, t)| (s.to_owned(), t.to_owned()))
            .collect();
        Self {
            exact: mapping.clone(),
            by_length,
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }

    /// As [`map_model`], without sorting or allocating anything but the result.
    #[must_use]
    pub fn map(&self, model: &str) -> Option<String> {
        if self.exact.is_empty() {
            return None;
        }
        resolve(
            |name| self.exact.get(name).map(String::as_str),
            &self.by_length,
            model,
        )
    }
}

/// Entries with a non-empty source, longest source first; the input comes in name order and
/// the sort is stable, so ties stay in name order.
fn sorted_by_length<'a>(
    entries: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    let mut sorted: Vec<(&str, &str)> = entries.filter(|(s, _)| !s.is_empty()).collect();
    sorted.sort_by_key(|(source, _)| std::cmp::Reverse(source.len()));
    sorted
}

fn resolve<'m, S: AsRef<str>, T: AsRef<str>>(
    exact: impl Fn(&str) -> Option<&'m str>,
    by_length: &[(S, T)],
    model: &str,
) -> Option<String> {
    let model = model.trim();
    if model.is_empty() {
        return None;
    }
    if let Some(target) = exact(model) {
        return Some(target.to_owned());
    }
    let split = split_suffix(model);
    if let Some((base, suffix)) = split
        && let Some(target) = exact(base)
    {
        return Some(with_suffix(target, suffix));
    }
    let base = split.map_or(model, |(base, _)| base);
    let matches = |text: &str, source: &str| text.contains(source) || source.contains(text);
    let (_, target) = by_length.iter().find(|(source, _)| {
        let source = source.as_ref();
        matches(base, source) || (split.is_some() && matches(model, source))
    })?;
    let target = target.as_ref();
    Some(match split {
        Some((_, suffix)) => with_suffix(target, suffix),
        None => target.to_owned(),
    })
}

/// `"o3(high)"` → `("o3", "high")`. A name without a trailing `(…)`, or with nothing before
/// it, has no suffix.
fn split_suffix(model: &str) -> Option<(&str, &str)> {
    let inner = model.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let base = inner[..open].trim_end();
    (!base.is_empty()).then(|| (base, inner[open + 1..].trim()))
}

/// `target` with `(suffix)` appended, unless the suffix is empty or the target has its own.
fn with_suffix(target: &str, suffix: &str) -> String {
    if suffix.is_empty() || split_suffix(target).is_some() {
        target.to_owned()
    } else {
        format!("{target}({suffix})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(s, t)| ((*s).to_owned(), (*t).to_owned()))
            .collect()
    }

    /// Checks both entry points agree.
    fn map(m: &BTreeMap<String, String>, model: &str) -> Option<String> {
        let direct = map_model(m, model);
        assert_eq!(ModelMapper::new(m).map(model), direct, "{model}");
        direct
    }

    #[test]
    fn exact_match_first() {
        let m = mapping(&[("claude-sonnet-4-5", "glm-4.6"), ("sonnet", "kimi-k2")]);
        assert_eq!(map(&m, "claude-sonnet-4-5").as_deref(), Some("glm-4.6"));
        assert_eq!(map(&m, " claude-sonnet-4-5 ").as_deref(), Some("glm-4.6"));
    }

    #[test]
    fn suffix_handling() {
        // Base-name match propagates the suffix.
        let m = mapping(&[("o3", "gpt-5.2")]);
        assert_eq!(map(&m, "o3(xhigh)").as_deref(), Some("gpt-5.2(xhigh)"));
        assert_eq!(map(&m, "o3(wild)").as_deref(), Some("gpt-5.2(wild)"));
        // Identity mapping keeps the suffix.
        let m = mapping(&[("gpt-5.2", "gpt-5.2")]);
        assert_eq!(map(&m, "gpt-5.2(high)").as_deref(), Some("gpt-5.2(high)"));
        // An explicit full-name mapping is returned as is.
        let m = mapping(&[("o3(xhigh)", "gpt-5.2"), ("o3", "other")]);
        assert_eq!(map(&m, "o3(xhigh)").as_deref(), Some("gpt-5.2"));
        // The target's own suffix wins.
        let m = mapping(&[("o3", "gpt-5.2(high)")]);
        assert_eq!(map(&m, "o3(xhigh)").as_deref(), Some("gpt-5.2(high)"));
        // An empty suffix is not re-applied.
        let m = mapping(&[("o3", "gpt-5.2")]);
        assert_eq!(map(&m, "o3()").as_deref(), Some("gpt-5.2"));
        // Fuzzy matches carry the suffix too.
        let m = mapping(&[("sonnet", "glm-4.6")]);
        assert_eq!(
            map(&m, "claude-sonnet-4-5(thinking)").as_deref(),
            Some("glm-4.6(thinking)")
        );
    }

    #[test]
    fn longest_source_first_substring_match() {
        let m = mapping(&[
            ("codex", "gpt-5-codex-mini"),
            ("gpt-5.1-codex", "gpt-5.1-codex-max"),
        ]);
        assert_eq!(
            map(&m, "gpt-5.1-codex-high").as_deref(),
            Some("gpt-5.1-codex-max")
        );
        assert_eq!(map(&m, "my-codex").as_deref(), Some("gpt-5-codex-mini"));
        let m = mapping(&[
            ("haiku", "claude-haiku-4-5"),
            ("claude-3-5-haiku", "haiku-old"),
        ]);
        assert_eq!(
            map(&m, "claude-3-5-haiku-20241022").as_deref(),
            Some("haiku-old")
        );
        // Length decides, not specificity: `claude` (6) is tried before `haiku` (5).
        let m = mapping(&[
            ("haiku", "claude-haiku-4-5"),
            ("claude", "claude-sonnet-4-5"),
        ]);
        assert_eq!(
            map(&m, "claude-3-5-haiku-20241022").as_deref(),
            Some("claude-sonnet-4-5")
        );
    }

    #[test]
    fn bidirectional_match() {
        // The requested model contained in a source.
        let m = mapping(&[("claude-opus-4-1-20250805", "glm-4.6")]);
        assert_eq!(map(&m, "opus").as_deref(), Some("glm-4.6"));
        assert_eq!(map(&m, "gpt-4o"), None);
    }

    #[test]
    fn ties_resolve_in_name_order() {
        let m = mapping(&[("bbb", "to-b"), ("aaa", "to-a")]);
        assert_eq!(map(&m, "aaa-bbb").as_deref(), Some("to-a"));
    }

    #[test]
    fn nothing_to_map() {
        assert_eq!(map(&BTreeMap::new(), "claude-sonnet-4-5"), None);
        let m = mapping(&[("", "x"), ("haiku", "y")]);
        assert_eq!(map(&m, "gpt-4o"), None);
        assert_eq!(map(&m, "  "), None);
        // The empty source matches exactly only.
        assert_eq!(map(&m, "").as_deref(), None);
        assert!(ModelMapper::default().is_empty());
        assert_eq!(ModelMapper::default().map("x"), None);
    }
}
