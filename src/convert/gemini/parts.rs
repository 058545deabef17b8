//! Parts ⇄ IR parts, shared by requests and whole answers.
//!
//! Thought signatures: a `thoughtSignature` belongs to the part it came on. A thought part's
//! signature is its own [`ir::Thinking::signature`] (consecutive thought parts are one run of
//! reasoning, streamed in pieces: they are joined, and the signature closes the run). A
//! signature on any other part (a function call, text) becomes an [`ir::Thinking`] with empty
//! text placed right before that part; encoding puts it back onto the part that follows it (or,
//! with nothing after it, onto an empty text part, as Gemini itself ends some answers).

use base64::Engine;

use super::super::ConvertError;
use super::super::ir::{self, Media, Part};
use super::PROTOCOL;
use super::wire::{self, OutBlob, OutFileData, OutFunctionCall, OutPart};

/// Google's documented placeholders for a function call that has no signature (history from
/// another model): they are dropped when read and written where a signature is required.
pub(super) const DUMMY_SIGNATURES: [&str; 2] = [
    "skip_thought_signature_validator",
    "context_engineering_is_the_way_to_go",
];

/// Ids for function calls that came without one.
#[derive(Debug)]
pub(super) struct CallIds {
    /// `None`: ids from the function name (a request: the same history gives the same ids).
    /// `Some`: from the answer's `responseId` (unique across the turns of a conversation).
    prefix: Option<String>,
    next: usize,
}

impl CallIds {
    pub fn for_request() -> Self {
        Self {
            prefix: None,
            next: 0,
        }
    }

    /// `response_id` empty: a random prefix.
    pub fn for_answer(response_id: &str) -> Self {
        let prefix = if response_id.is_empty() {
            uuid::Uuid::now_v7().simple().to_string()
        } else {
            id_safe(response_id)
        };
        Self {
            prefix: Some(prefix),
            next: 0,
        }
    }

    /// `call_<name>_<n>` (requests) or `call_<responseId>_<n>` (answers), `n` counting every
    /// call from 0.
    pub fn next(&mut self, name: &str) -> String {
        let n = self.next;
        self.next += 1;
        match &self.prefix {
            None => format!("call_{}_{n}", id_safe(name)),
            Some(prefix) => format!("call_{prefix}_{n}"),
        }
    }
}

/// Letters, digits, `_` and `-` only (what every protocol accepts in a tool-call id).
fn id_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The signature on a part, unless empty or a placeholder.
pub(super) fn signature<'p>(part: &'p wire::Part<'_>) -> Option<&'p str> {
    part.thought_signature
        .as_deref()
        .filter(|s| !s.is_empty() && !DUMMY_SIGNATURES.contains(s))
}

/// One part of a model turn (or answer) → IR parts appended to `out`.
pub(super) fn model_part(
    part: &wire::Part<'_>,
    path: &dyn Fn() -> String,
    ids: &mut CallIds,
    out: &mut Vec<Part>,
) -> Result<(), ConvertError> {
    let sig = signature(part);
    if part.thought == Some(true) && part.function_call.is_none() {
        let text = part.text.as_deref().unwrap_or_default();
        if let Some(Part::Thinking(run)) = out.last_mut()
            && run.signature.is_none()
            && !run.redacted
        {
            run.text.push_str(text);
            run.signature = sig.map(str::to_owned);
        } else if !text.is_empty() || sig.is_some() {
            out.push(Part::Thinking(ir::Thinking {
                text: text.to_owned(),
                signature: sig.map(str::to_owned),
                redacted: false,
            }));
        }
        return Ok(());
    }
    if let Some(sig) = sig {
        match out.last_mut() {
            // A text part signed right after an unsigned run of thoughts: the run's signature
            // (a function call's keeps a part of its own, to go back onto the call).
            Some(Part::Thinking(run))
                if part.function_call.is_none() && run.signature.is_none() && !run.redacted =>
            {
                run.signature = Some(sig.to_owned());
            }
            _ => out.push(Part::Thinking(ir::Thinking {
                text: String::new(),
                signature: Some(sig.to_owned()),
                redacted: false,
            })),
        }
    }
    if let Some(text) = &part.text {
        if !text.is_empty() {
            // Streamed text comes in many parts: one text.
            if let Some(Part::Text(previous)) = out.last_mut() {
                previous.push_str(text);
            } else {
                out.push(Part::Text(text.to_string()));
            }
        }
    } else if let Some(call) = &part.function_call {
        let name = call.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(ConvertError::invalid(format!(
                "{}.functionCall.name is missing",
                path()
            )));
        }
        out.push(Part::ToolCall(ir::ToolCall {
            id: match call.id.as_deref() {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => ids.next(name),
            },
            name: name.to_owned(),
            arguments: arguments(call.args, path)?,
        }));
    } else if part.inline_data.is_some() || part.file_data.is_some() {
        out.push(media_part(part, path)?);
    } else if part.function_response.is_some() {
        return Err(ConvertError::invalid(format!(
            "{}.functionResponse belongs in a user turn, not a model turn",
            path()
        )));
    } else {
        refuse_code_execution(part)?;
    }
    Ok(())
}

/// A function call's `args` as JSON text of an object (`{}` when absent).
pub(super) fn arguments(
    args: Option<&serde_json::value::RawValue>,
    path: &dyn Fn() -> String,
) -> Result<String, ConvertError> {
    match args.map(|a| a.get().trim()) {
        None | Some("null") => Ok("{}".to_owned()),
        Some(text) if text.starts_with('{') => Ok(text.to_owned()),
        Some(_) => Err(ConvertError::invalid(format!(
            "{}.functionCall.args must be an object",
            path()
        ))),
    }
}

pub(super) fn refuse_code_execution(part: &wire::Part<'_>) -> Result<(), ConvertError> {
    if part.executable_code.is_some() {
        return Err(ConvertError::unsupported("executableCode parts", PROTOCOL));
    }
    if part.code_execution_result.is_some() {
        return Err(ConvertError::unsupported(
            "codeExecutionResult parts",
            PROTOCOL,
        ));
    }
    Ok(())
}

/// `inlineData` / `fileData` → an image or a document, by MIME type.
pub(super) fn media_part(
    part: &wire::Part<'_>,
    path: &dyn Fn() -> String,
) -> Result<Part, ConvertError> {
    if part.video_metadata.is_some() {
        return Err(ConvertError::unsupported("video input", PROTOCOL));
    }
    let (mime, media) = if let Some(blob) = &part.inline_data {
        let mime = blob.mime_type.as_deref().unwrap_or_default();
        if mime.is_empty() {
            return Err(ConvertError::invalid(format!(
                "{}.inlineData.mimeType is missing",
                path()
            )));
        }
        let Some(data) = blob.data.as_deref().filter(|d| !d.is_empty()) else {
            return Err(ConvertError::invalid(format!(
                "{}.inlineData.data is missing",
                path()
            )));
        };
        let media = Media::Base64 {
            media_type: mime.to_owned(),
            data: data.to_owned(),
        };
        (mime.to_owned(), media)
    } else if let Some(file) = &part.file_data {
        let Some(uri) = file.file_uri.as_deref().filter(|u| !u.is_empty()) else {
            return Err(ConvertError::invalid(format!(
                "{}.fileData.fileUri is missing",
                path()
            )));
        };
        let given = file.mime_type.as_deref().filter(|m| !m.is_empty());
        if let Some(rest) = uri.strip_prefix("data:") {
            let (mime, data) = data_url(rest).ok_or_else(|| {
                ConvertError::invalid(format!(
                    "{}.fileData.fileUri is a data: URL that is not base64",
                    path()
                ))
            })?;
            let mime = given.unwrap_or(mime).to_owned();
            let media = Media::Base64 {
                media_type: mime.clone(),
                data,
            };
            (mime, media)
        } else if uri.starts_with("https://") || uri.starts_with("http://") {
            if is_uploaded_file(uri) {
                return Err(ConvertError::unsupported(
                    "fileData of a file uploaded to the Gemini Files API",
                    PROTOCOL,
                ));
            }
            let mime = given.unwrap_or_else(|| guess_mime(uri, false)).to_owned();
            (
                mime,
                Media::Url {
                    url: uri.to_owned(),
                },
            )
        } else {
            return Err(ConvertError::unsupported(
                format!(
                    "fileData.fileUri {} (only http(s) and data: URLs convert)",
                    uri.split_once(':').map_or(uri, |(scheme, _)| scheme)
                ),
                PROTOCOL,
            ));
        }
    } else {
        return Err(ConvertError::invalid(format!("{} has no data", path())));
    };
    let mime_lower = mime.to_ascii_lowercase();
    if mime_lower.starts_with("image/") {
        Ok(Part::Image(media))
    } else if mime_lower == "application/pdf" || mime_lower.starts_with("text/") {
        Ok(Part::Document(ir::Document {
            source: media,
            title: None,
        }))
    } else if mime_lower.starts_with("audio/") {
        Err(ConvertError::unsupported("audio input", PROTOCOL))
    } else if mime_lower.starts_with("video/") {
        Err(ConvertError::unsupported("video input", PROTOCOL))
    } else {
        Err(ConvertError::unsupported(format!("{mime} input"), PROTOCOL))
    }
}

/// `image/png;base64,AAAA` → (`image/png`, `AAAA`).
fn data_url(rest: &str) -> Option<(&str, String)> {
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let data = data.trim();
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()
        .map(|_| {
            (
                if mime.is_empty() { "text/plain" } else { mime },
                data.to_owned(),
            )
        })
}

/// A Gemini Files API URI: only the key that uploaded it can read it.
fn is_uploaded_file(uri: &str) -> bool {
    uri.contains("generativelanguage.googleapis.com/") && uri.contains("/files/")
}

/// A MIME type from a URL's extension (`fileData` wants one): the common image and document
/// types, else JPEG for an image and PDF for a document.
pub(super) fn guess_mime(url: &str, document: bool) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        _ if document => "application/pdf",
        _ => "image/jpeg",
    }
}

/// An image or document as `inlineData` or `fileData`.
pub(super) fn media_out(media: &Media, document: bool) -> OutPart<'_> {
    match media {
        Media::Base64 { media_type, data } => OutPart {
            inline_data: Some(OutBlob {
                mime_type: media_type,
                data,
            }),
            ..OutPart::default()
        },
        Media::Url { url } => OutPart {
            file_data: Some(OutFileData {
                mime_type: guess_mime(url, document),
                file_uri: url,
            }),
            ..OutPart::default()
        },
    }
}

/// The parts of a model turn or answer. `strict` (requests): tool-call arguments that are not
/// a JSON object are refused, and a tool result in a model turn is an error; otherwise
/// (answers) they become `{}` and are skipped.
pub(super) fn model_parts_out(
    parts: &[Part],
    strict: bool,
) -> Result<Vec<OutPart<'_>>, ConvertError> {
    fn flush<'a>(pending: &mut Option<&'a str>, out: &mut Vec<OutPart<'a>>) {
        if let Some(sig) = pending.take() {
            out.push(signature_only(sig));
        }
    }
    let mut out: Vec<OutPart<'_>> = Vec::with_capacity(parts.len());
    // A signature waiting for the part it belongs to.
    let mut pending: Option<&str> = None;
    for part in parts {
        match part {
            Part::Thinking(thinking) if thinking.redacted => {}
            Part::Thinking(thinking) if thinking.text.is_empty() => {
                if let Some(sig) = thinking.signature.as_deref() {
                    flush(&mut pending, &mut out);
                    pending = Some(sig);
                }
            }
            Part::Thinking(thinking) => {
                // A waiting signature stays on a part of its own: on a thought part it would
                // read back as this run's signature.
                flush(&mut pending, &mut out);
                out.push(OutPart {
                    text: Some(&thinking.text),
                    thought: Some(true),
                    thought_signature: thinking.signature.as_deref(),
                    ..OutPart::default()
                });
            }
            Part::Text(text) => {
                if !text.is_empty() || pending.is_some() {
                    out.push(OutPart {
                        text: Some(text),
                        thought_signature: pending.take(),
                        ..OutPart::default()
                    });
                }
            }
            Part::ToolCall(call) => {
                let args = match wire::raw(&call.arguments) {
                    Some(args) if args.get().starts_with('{') => args,
                    _ if call.arguments.trim().is_empty() || !strict => wire::empty_object(),
                    _ => {
                        return Err(ConvertError::invalid(format!(
                            "the arguments of tool call {} are not a JSON object",
                            call.id
                        )));
                    }
                };
                out.push(OutPart {
                    function_call: Some(OutFunctionCall {
                        id: Some(&call.id)
                            .filter(|id| !id.is_empty())
                            .map(String::as_str),
                        name: &call.name,
                        args,
                    }),
                    thought_signature: pending.take(),
                    ..OutPart::default()
                });
            }
            Part::Image(media) => out.push(with_signature(media_out(media, false), &mut pending)),
            Part::Document(document) => out.push(with_signature(
                media_out(&document.source, true),
                &mut pending,
            )),
            Part::ToolResult(result) => {
                if strict {
                    return Err(ConvertError::invalid(format!(
                        "the tool result for {} is in an assistant turn",
                        result.call_id
                    )));
                }
            }
        }
    }
    flush(&mut pending, &mut out);
    Ok(out)
}

fn with_signature<'a>(mut part: OutPart<'a>, pending: &mut Option<&'a str>) -> OutPart<'a> {
    part.thought_signature = pending.take();
    part
}

/// `{"text": "", "thoughtSignature": …}`: a signature with no part after it.
pub(super) fn signature_only(sig: &str) -> OutPart<'_> {
    OutPart {
        text: Some(""),
        thought_signature: Some(sig),
        ..OutPart::default()
    }
}
