//! Integration tests: the mock served on a real socket, spoken to over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod anthropic;
mod binary;
mod common;
mod features;
mod gemini;
mod openai;
mod responses;
mod scenarios;
mod stats;
