//! Logging setup: human-readable text or JSON lines, filtered by RELAYBOX_LOG_LEVEL.
//!
//! Colours only when stderr is a terminal and `NO_COLOR` is unset: `docker logs`, journald and
//! Unraid's log viewer get plain text.
//!
//! Text lines carry names an admin or an importer chose (channels, keys, files): every field
//! is written with its control characters escaped, so a name holding a newline or an ANSI
//! escape cannot forge a log line or repaint the terminal. JSON lines escape them already.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};

use crate::cli::LogFormat;

/// The log levels a filter may name.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Check a `--log-level` value: comma-separated `LEVEL` or `TARGET=LEVEL` directives. A bare
/// word that is not a level would be taken for a target (`verbose` = "only the logs of a module
/// named verbose", i.e. nothing): refused instead.
pub fn parse_log_filter(text: &str) -> Result<String, String> {
    let hint =
        "use error, warn, info, debug, trace or off, or TARGET=LEVEL (e.g. relaybox=debug,info)";
    for directive in text.split(',').map(str::trim) {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        if directive.is_empty() || !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!("unknown log level '{directive}': {hint}"));
        }
    }
    EnvFilter::try_new(text)
        .map_err(|err| format!("'{text}' is not a log filter ({err}): {hint}"))?;
    Ok(text.to_string())
}

/// Whether log lines may carry colour codes: stderr is a terminal and `NO_COLOR` is unset or
/// empty (<https://no-color.org>).
#[must_use]
pub fn use_colour() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(use_colour())
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = match format {
        LogFormat::Text => builder.fmt_fields(EscapedFields::default()).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The default text field formatting, with control characters escaped (`\n`, `\u{1b}`).
#[derive(Debug, Default)]
pub struct EscapedFields(DefaultFields);

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut plain = String::new();
        self.0.format_fields(Writer::new(&mut plain), fields)?;
        write_escaped(&mut writer, &plain)
    }
}

/// `text` with every control character written as its Rust escape.
pub fn write_escaped(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(out, "{}", c.escape_default())?;
        } else {
            out.write_char(c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_filters_name_levels() {
        for good in ["info", "DEBUG", "relaybox=debug,info", "warn,hyper=off"] {
            assert!(super::parse_log_filter(good).is_ok(), "{good}");
        }
        for bad in ["verbose", "", "info,", "relaybox=loud", "relaybox"] {
            let err = super::parse_log_filter(bad).unwrap_err();
            assert!(err.contains("unknown log level"), "{bad}: {err}");
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        let forged = "evil\n2026-01-01T00:00:00Z  INFO admin key created\x1b[2J\r\tend";
        super::write_escaped(&mut out, forged).ok();
        assert_eq!(
            out,
            "evil\\n2026-01-01T00:00:00Z  INFO admin key created\\u{1b}[2J\\r\\tend"
        );
        assert!(!out.chars().any(char::is_control));
    }
}
