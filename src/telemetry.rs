//! Logging setup: human-readable text or JSON lines, filtered by RELAYBOX_LOG_LEVEL.
//!
//! Text lines carry names an admin or an importer chose (channels, keys, files): every field
//! is written with its control characters escaped, so a name holding a newline or an ANSI
//! escape cannot forge a log line or repaint the terminal. JSON lines escape them already.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};

use crate::cli::LogFormat;

pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
