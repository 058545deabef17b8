//! The UI files embedded at build time (see `build.rs`): looked up by path, each with its
//! content type and a strong ETag (a SHA-256 of the bytes, computed once on first use).

use std::collections::HashMap;
use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

#[derive(Debug)]
pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    /// Quoted, as sent in the `ETag` header.
    pub etag: String,
}

/// The embedded file at `path` (relative to `assets/`, no leading slash).
pub fn find(path: &str) -> Option<&'static Asset> {
    static CATALOG: OnceLock<HashMap<&'static str, Asset>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            embedded::FILES
                .iter()
                .map(|(path, bytes)| {
                    let digest = Sha256::digest(bytes);
                    let asset = Asset {
                        bytes,
                        content_type: content_type(path),
                        etag: format!("\"{}\"", hex::encode(&digest[..16])),
                    };
                    (*path, asset)
                })
                .collect()
        })
        .get(path)
}

/// The content type for a file name, by its extension.
fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Whether an `If-None-Match` header value names `etag` (weak comparison, as RFC 9110 asks
/// for this header; `*` matches any).
pub fn none_match_hits(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_extension_and_etag_matching() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type("fonts/x.woff2"), "font/woff2");
        assert_eq!(content_type("noextension"), "application/octet-stream");
        assert!(none_match_hits("\"a\", W/\"b\"", "\"b\""));
        assert!(none_match_hits("*", "\"b\""));
        assert!(!none_match_hits("\"a\"", "\"b\""));
    }

    #[test]
    fn readme_is_not_embedded_and_index_is() {
        assert!(find("README.md").is_none());
        let index = find("index.html");
        assert!(index.is_some_and(|asset| asset.etag.len() == 34));
    }
}
