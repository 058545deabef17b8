//! The Anthropic codec against the golden fixtures of `tests/golden/anthropic/` (written from
//! Anthropic's published examples; see the README there).

mod answers;
mod requests;
mod streams;

use serde_json::Value;

use crate::convert::ConvertError;
use crate::convert::ir::{Message, Part, Role};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn user(parts: Vec<Part>) -> Message {
    Message {
        role: Role::User,
        parts,
    }
}

fn assistant(parts: Vec<Part>) -> Message {
    Message {
        role: Role::Assistant,
        parts,
    }
}

fn text(s: &str) -> Part {
    Part::Text(s.to_owned())
}

fn invalid_message<T: std::fmt::Debug>(result: Result<T, ConvertError>) -> String {
    match result {
        Err(ConvertError::Invalid(message)) => message,
        other => panic!("expected an invalid input, got {other:?}"),
    }
}
