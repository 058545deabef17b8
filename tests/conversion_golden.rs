//! Golden tests of the conversion layer, across protocols: every recorded stream and answer of
//! each provider (`tests/golden/<protocol>/`, written from the providers' published examples)
//! converted into each of the other three protocols and
//! - compared byte for byte with the approved conversion in `tests/golden/converted/` (set
//!   `RELAYBOX_BLESS=1` to write them after reading the differences),
//! - decoded again by the target's own decoder: the same text, thinking, tool calls, stop
//!   reason and token figures as the original,
//! - cut at every byte: what the client gets is a prefix of the whole conversion, then at most
//!   one clean error event.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::path::{Path, PathBuf};

use relaybox::convert::{self, StreamConverter, StreamOptions, ir};
use relaybox::providers::{Protocol, SseParser};

const PROTOCOLS: [(Protocol, &str); 4] = [
    (Protocol::Anthropic, "anthropic"),
    (Protocol::OpenAiChat, "openai_chat"),
    (Protocol::OpenAiResponses, "responses"),
    (Protocol::Gemini, "gemini"),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The fixtures of one protocol with the given prefix and extension, by file name.
fn fixtures(folder: &str, prefix: &str, extension: &str) -> Vec<(String, Vec<u8>)> {
    let dir = golden_dir().join(folder);
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(extension)
        })
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no {prefix}*{extension} fixtures in {}",
        dir.display()
    );
    found
}

fn sse_options() -> StreamOptions {
    StreamOptions {
        include_usage: true,
        gemini_sse: true,
    }
}

/// One whole stream through a converter.
fn convert_stream(
    source: Protocol,
    target: Protocol,
    bytes: &[u8],
    options: StreamOptions,
) -> Vec<u8> {
    let mut converter = StreamConverter::new(source, target, options);
    let mut out = converter.feed(bytes).to_vec();
    out.extend_from_slice(&converter.finish());
    out
}

/// A stream in `protocol` decoded into IR events by that protocol's own decoder.
fn decode_stream(protocol: Protocol, bytes: &[u8]) -> Vec<ir::Event> {
    let mut parser = SseParser::new();
    let mut decoder = convert::stream_decoder(protocol);
    let mut events = Vec::new();
    let mut frames = parser.feed(bytes);
    frames.extend(parser.finish());
    for frame in frames {
        decoder.event(frame.event.as_deref(), &frame.data, &mut events);
    }
    decoder.end(&mut events);
    events
}

/// What a user of the answer sees, whatever the protocol: the blocks (kind and content), how it
/// stopped, the token figures every protocol can carry, and whether it ended in an error.
#[derive(Debug, PartialEq)]
struct Gist {
    blocks: Vec<(String, String)>,
    stop: Option<String>,
    output_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
    error: bool,
}

fn stop_name(stop: &ir::StopReason) -> String {
    match stop {
        // OpenAI says "stop" for both.
        ir::StopReason::EndTurn | ir::StopReason::StopSequence(_) => "end".into(),
        ir::StopReason::MaxTokens => "max_tokens".into(),
        ir::StopReason::ToolUse => "tool_use".into(),
        ir::StopReason::ContentFilter => "content_filter".into(),
    }
}

/// Tool arguments compared as JSON values (key order and spacing may change).
fn normal_arguments(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .map_or_else(|_| text.to_string(), |v| v.to_string())
}

fn gist_of_events(events: &[ir::Event]) -> Gist {
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut gist = Gist {
        blocks: Vec::new(),
        stop: None,
        output_tokens: None,
        prompt_tokens: None,
        error: false,
    };
    for event in events {
        match event {
            ir::Event::BlockStart { block, .. } => blocks.push(match block {
                ir::Block::Text => ("text".into(), String::new()),
                ir::Block::Thinking => ("thinking".into(), String::new()),
                ir::Block::RedactedThinking { .. } => ("redacted".into(), String::new()),
                ir::Block::ToolCall { name, .. } => (format!("tool:{name}"), String::new()),
            }),
            ir::Event::Delta { delta, .. } => {
                let last = blocks.last_mut().expect("a delta outside a block");
                match delta {
                    ir::Delta::Text(t) | ir::Delta::Thinking(t) | ir::Delta::ToolArguments(t) => {
                        last.1.push_str(t);
                    }
                    ir::Delta::Signature(_) => {}
                }
            }
            ir::Event::Finish { stop, usage } => {
                gist.stop = Some(stop_name(stop));
                gist.output_tokens = Some(usage.output);
                gist.prompt_tokens = Some(usage.prompt_total());
            }
            ir::Event::Error { .. } => gist.error = true,
            ir::Event::Start { .. } | ir::Event::BlockStop { .. } => {}
        }
    }
    gist.blocks = normalise_blocks(blocks);
    gist
}

/// Redacted thinking and signature-only thinking (Gemini's thought signatures) have no visible
/// content and not every protocol can carry them; empty text blocks carry nothing either. Tool
/// arguments are compared as JSON.
fn normalise_blocks(blocks: Vec<(String, String)>) -> Vec<(String, String)> {
    blocks
        .into_iter()
        .filter(|(kind, content)| {
            kind != "redacted" && !((kind == "text" || kind == "thinking") && content.is_empty())
        })
        .map(|(kind, content)| {
            if kind.starts_with("tool:") {
                let arguments = normal_arguments(&content);
                (kind, arguments)
            } else {
                (kind, content)
            }
        })
        .collect()
}

fn gist_of_response(response: &ir::Response) -> Gist {
    let blocks = response
        .parts
        .iter()
        .map(|part| match part {
            ir::Part::Text(t) => ("text".to_string(), t.clone()),
            ir::Part::Thinking(t) if t.redacted => ("redacted".into(), String::new()),
            ir::Part::Thinking(t) => ("thinking".into(), t.text.clone()),
            ir::Part::ToolCall(call) => (format!("tool:{}", call.name), call.arguments.clone()),
            other => (format!("{other:?}"), String::new()),
        })
        .collect();
    Gist {
        blocks: normalise_blocks(blocks),
        stop: Some(stop_name(&response.stop)),
        output_tokens: Some(response.usage.output),
        prompt_tokens: Some(response.usage.prompt_total()),
        error: false,
    }
}

/// The bytes with the clock taken out: encoders stamp `created` / `created_at` with the time of
/// the conversion when the upstream's answer has none.
fn without_clock(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(at) = ["\"created\":", "\"created_at\":"]
        .iter()
        .filter_map(|key| rest.find(key).map(|i| (i, key.len())))
        .min()
    {
        let (start, key_len) = at;
        out.push_str(&rest[..start + key_len]);
        rest = &rest[start + key_len..];
        let spaces = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..spaces]);
        rest = &rest[spaces..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push('0');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out.into_bytes()
}

/// Every number as `#`: two events that differ only in their figures.
fn figures_zeroed(event: &str) -> String {
    let mut out = String::with_capacity(event.len());
    for c in event.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// The event without its usage objects (`usage`, `usageMetadata`), whose figures and fields
/// depend on what the upstream had reported.
fn without_usage(event: &str) -> String {
    let mut out = event.to_string();
    while let Some(start) = out.find("\"usage") {
        let Some(open) = out[start..].find(['{', 'n']).map(|i| start + i) else {
            break;
        };
        let end = if out[open..].starts_with("null") {
            open + 4
        } else {
            let mut depth = 0;
            let mut end = out.len();
            for (i, c) in out[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            end
        };
        out.replace_range(start..end, "");
    }
    out
}

/// Compare with the approved file, or write it under `RELAYBOX_BLESS=1`.
fn approve(name: &str, actual: &[u8], mismatches: &mut Vec<String>) {
    let actual = without_clock(actual);
    let actual = actual.as_slice();
    let path = golden_dir().join("converted").join(name);
    if std::env::var_os("RELAYBOX_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    match std::fs::read(&path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => mismatches.push(format!(
            "{name} differs from the approved conversion:\n--- approved\n{}\n--- now\n{}",
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(actual)
        )),
        Err(_) => mismatches.push(format!(
            "{name}: no approved conversion yet (run with RELAYBOX_BLESS=1 and read it)"
        )),
    }
}

#[test]
fn every_recorded_stream_converts_to_every_other_protocol_with_the_same_content() {
    let mut mismatches = Vec::new();
    for (source, source_dir) in PROTOCOLS {
        for (fixture, bytes) in fixtures(source_dir, "stream_", ".sse") {
            let original = gist_of_events(&decode_stream(source, &bytes));
            assert!(
                original.error || original.stop.is_some(),
                "{source_dir}/{fixture}: the fixture decodes to an unfinished answer: {original:?}"
            );
            for (target, target_dir) in PROTOCOLS {
                if target == source {
                    continue;
                }
                let converted = convert_stream(source, target, &bytes, sse_options());
                let stem = fixture.trim_end_matches(".sse");
                approve(
                    &format!("{source_dir}/{stem}.to_{target_dir}.sse"),
                    &converted,
                    &mut mismatches,
                );
                let again = gist_of_events(&decode_stream(target, &converted));
                if again != original {
                    mismatches.push(format!(
                        "{source_dir}/{fixture} → {target_dir}: the content changed\n  original: {original:?}\n  converted: {again:?}\n  bytes: {}",
                        String::from_utf8_lossy(&converted)
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn every_recorded_answer_converts_to_every_other_protocol_with_the_same_content() {
    let mut mismatches = Vec::new();
    for (source, source_dir) in PROTOCOLS {
        for (fixture, bytes) in fixtures(source_dir, "answer_", ".json") {
            let original = convert::decode_response(source, &bytes)
                .unwrap_or_else(|e| panic!("{source_dir}/{fixture}: {e}"));
            let original_gist = gist_of_response(&original);
            for (target, target_dir) in PROTOCOLS {
                if target == source {
                    continue;
                }
                let converted = convert::encode_response(target, &original);
                let stem = fixture.trim_end_matches(".json");
                let pretty = serde_json::to_vec_pretty(
                    &serde_json::from_slice::<serde_json::Value>(&converted).unwrap_or_else(|e| {
                        panic!("{source_dir}/{fixture} → {target_dir} is not JSON: {e}")
                    }),
                )
                .unwrap();
                approve(
                    &format!("{source_dir}/{stem}.to_{target_dir}.json"),
                    &pretty,
                    &mut mismatches,
                );
                let again = convert::decode_response(target, &converted)
                    .unwrap_or_else(|e| panic!("{source_dir}/{fixture} → {target_dir}: {e}"));
                let again = gist_of_response(&again);
                if again != original_gist {
                    mismatches.push(format!(
                        "{source_dir}/{fixture} → {target_dir}: the content changed\n  original: {original_gist:?}\n  converted: {again:?}"
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn every_recorded_request_converts_to_every_other_protocol() {
    for (source, source_dir) in PROTOCOLS {
        for (fixture, bytes) in fixtures(source_dir, "request_", ".json") {
            let original = match convert::decode_request(source, &bytes) {
                Ok(request) => request,
                Err(e) => panic!("{source_dir}/{fixture}: {e}"),
            };
            for (target, target_dir) in PROTOCOLS {
                if target == source {
                    continue;
                }
                match convert::encode_request(target, &original) {
                    Ok(body) => {
                        let again = convert::decode_request(target, &body).unwrap_or_else(|e| {
                            panic!("{source_dir}/{fixture} → {target_dir} does not decode: {e}")
                        });
                        // What every protocol carries survives: the turns' text, the tools' names.
                        let texts = |r: &ir::Request| -> Vec<String> {
                            r.messages
                                .iter()
                                .flat_map(|m| &m.parts)
                                .filter_map(|p| match p {
                                    ir::Part::Text(t) => Some(t.clone()),
                                    _ => None,
                                })
                                .collect()
                        };
                        assert_eq!(
                            texts(&again),
                            texts(&original),
                            "{source_dir}/{fixture} → {target_dir}"
                        );
                        let tools = |r: &ir::Request| -> Vec<String> {
                            r.tools.iter().map(|t| t.name.clone()).collect()
                        };
                        assert_eq!(
                            tools(&again),
                            tools(&original),
                            "{source_dir}/{fixture} → {target_dir}"
                        );
                        // A response format may add an instruction, so the original is contained.
                        assert!(
                            again
                                .system
                                .join("\n")
                                .contains(&original.system.join("\n")),
                            "{source_dir}/{fixture} → {target_dir}: the system prompt"
                        );
                    }
                    // Refusing is allowed only by naming the feature.
                    Err(convert::ConvertError::Unsupported { feature, .. }) => {
                        assert!(!feature.is_empty(), "{source_dir}/{fixture} → {target_dir}");
                    }
                    Err(e) => panic!("{source_dir}/{fixture} → {target_dir}: {e}"),
                }
            }
        }
    }
}

/// Split a client's stream into its events (SSE blocks, or a Gemini JSON array's elements).
fn client_events(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(&without_clock(bytes))
        .replace("\r\n", "\n")
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn is_error_event(event: &str) -> bool {
    event.contains("error")
}

#[test]
fn a_stream_cut_at_any_byte_gives_a_prefix_and_at_most_one_clean_error() {
    let mut problems = Vec::new();
    for (source, source_dir) in PROTOCOLS {
        for (fixture, bytes) in fixtures(source_dir, "stream_", ".sse") {
            for (target, target_dir) in PROTOCOLS {
                let whole = client_events(&convert_stream(source, target, &bytes, sse_options()));
                for cut in 0..bytes.len() {
                    let out = client_events(&convert_stream(
                        source,
                        target,
                        &bytes[..cut],
                        sse_options(),
                    ));
                    let shared = out.iter().zip(&whole).take_while(|(a, b)| a == b).count();
                    let rest = &out[shared..];
                    let tail = &whole[shared.min(whole.len())..];
                    let clean = match rest {
                        [] => true,
                        // The closing bytes of OpenAI (`[DONE]`) may follow the error event.
                        [error] | [error, _] if is_error_event(error) => true,
                        // An OpenAI Chat upstream cut after its `finish_reason` chunk but
                        // before its usage chunk: the answer is whole and finishes, with the
                        // token figures known so far.
                        _ if source == Protocol::OpenAiChat => {
                            rest.len() == tail.len()
                                && rest.iter().zip(tail).all(|(a, b)| {
                                    figures_zeroed(&without_usage(a))
                                        == figures_zeroed(&without_usage(b))
                                })
                        }
                        _ => false,
                    };
                    if !clean {
                        problems.push(format!(
                            "{source_dir}/{fixture} → {target_dir} cut at byte {cut}: after {shared} shared events came {rest:?}"
                        ));
                        break;
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
