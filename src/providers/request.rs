//! The few top-level fields of a client's request body that routing reads, in one pass over
//! the body. Nothing else is built: serde skips every other field (Claude Code sends 100 kB
//! system prompts), and the strings kept borrow from the body unless they contain escapes.
//!
//! Each field is read only when it has the JSON type the relay expects. A value of any other
//! type reads as absent, so `"model": 5` becomes "no model" (the caller's clear error) and
//! `"metadata": "x"` is ignored, exactly as if the client had not sent it.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What routing needs out of a request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// The requested model; empty when the body names none (Gemini: see
    /// [`super::gemini::request_facts`], which takes the model from the path).
    pub model: String,
    /// `"stream": true` (Gemini: the `:streamGenerateContent` action).
    pub stream: bool,
    /// A client-side conversation id, for sticky routing and the log's `session_id`.
    pub session_id: Option<String>,
    /// OpenAI Chat: the client itself asked for `stream_options.include_usage`.
    pub wants_usage_chunk: bool,
}

/// The request fields every protocol's `request_facts` reads from.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RequestHead<'a> {
    #[serde(borrow, default)]
    model: Lenient<Cow<'a, str>>,
    #[serde(default)]
    stream: Lenient<bool>,
    /// Anthropic: `metadata.user_id`.
    #[serde(borrow, default)]
    metadata: Lenient<Metadata<'a>>,
    /// OpenAI Chat: `stream_options.include_usage`.
    #[serde(default)]
    stream_options: Lenient<StreamOptions>,
    #[serde(borrow, default)]
    prompt_cache_key: Lenient<Cow<'a, str>>,
    #[serde(borrow, default)]
    user: Lenient<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, default)]
    user_id: Lenient<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Lenient<bool>,
}

/// Why a request body has no head to read.
#[derive(Debug)]
pub enum BodyError {
    /// Not JSON at all (the parser's message says where).
    NotJson(serde_json::Error),
    /// JSON, but not an object.
    NotAnObject,
}

impl<'a> RequestHead<'a> {
    /// Read the head of a request body.
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, BodyError> {
        // serde would also read a struct from an array; a request body must be an object.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(match serde_json::from_slice::<IgnoredAny>(body) {
                Ok(_) => BodyError::NotAnObject,
                Err(e) => BodyError::NotJson(e),
            });
        }
        serde_json::from_slice(body).map_err(BodyError::NotJson)
    }

    /// `model`, trimmed; empty when absent or not a string.
    pub(crate) fn model(&self) -> &str {
        text(&self.model).unwrap_or_default()
    }

    pub(crate) fn stream(&self) -> bool {
        self.stream.0.unwrap_or(false)
    }

    /// Anthropic `metadata.user_id`, trimmed and non-empty.
    pub(crate) fn metadata_user_id(&self) -> Option<&str> {
        self.metadata.0.as_ref().and_then(|m| text(&m.user_id))
    }

    /// OpenAI Chat `stream_options.include_usage`.
    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .0
            .as_ref()
            .and_then(|o| o.include_usage.0)
            .unwrap_or(false)
    }

    /// `prompt_cache_key`, trimmed and non-empty.
    pub(crate) fn prompt_cache_key(&self) -> Option<&str> {
        text(&self.prompt_cache_key)
    }

    /// `user`, trimmed and non-empty.
    pub(crate) fn user(&self) -> Option<&str> {
        text(&self.user)
    }
}

fn text<'s>(field: &'s Lenient<Cow<'_, str>>) -> Option<&'s str> {
    field.0.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A field kept only when its JSON value has the type `T` is read from; `None` otherwise.
#[derive(Debug)]
struct Lenient<T>(Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Self(None)
    }
}

/// What a [`Lenient`] field accepts. Every method defaults to "not this type".
trait Expected<'de>: Sized {
    fn from_bool(_: bool) -> Option<Self> {
        None
    }

    fn from_str(_: Cow<'de, str>) -> Option<Self> {
        None
    }

    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

impl Expected<'_> for bool {
    fn from_bool(v: bool) -> Option<Self> {
        Some(v)
    }
}

impl<'de: 'a, 'a> Expected<'de> for Cow<'a, str> {
    fn from_str(v: Cow<'de, str>) -> Option<Self> {
        Some(v)
    }
}

impl<'de: 'a, 'a> Expected<'de> for Metadata<'a> {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        Self::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

impl<'de> Expected<'de> for StreamOptions {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        Self::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

impl<'de, T: Expected<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(LenientVisitor(PhantomData))
            .map(Lenient)
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Expected<'de>> Visitor<'de> for LenientVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<T>, E> {
        Ok(T::from_bool(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Option<T>, E> {
        Ok(T::from_str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
        Ok(T::from_str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Option<T>, E> {
        Ok(T::from_str(Cow::Owned(v)))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::from_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_routing_needs_and_borrows_them() {
        let body = br#"{"messages":[{"role":"user","content":"hi \"there\""}],"model":" claude-sonnet-4-5 ",
            "stream":true,"metadata":{"user_id":"u_session_1","extra":[1,{"a":2}]},
            "stream_options":{"include_usage":true},"prompt_cache_key":"conv-7","user":"bob"}"#;
        let head = RequestHead::parse(body).expect("valid");
        assert_eq!(head.model(), "claude-sonnet-4-5");
        assert!(matches!(head.model.0, Some(Cow::Borrowed(_))));
        assert!(head.stream());
        assert_eq!(head.metadata_user_id(), Some("u_session_1"));
        assert!(head.include_usage());
        assert_eq!(head.prompt_cache_key(), Some("conv-7"));
        assert_eq!(head.user(), Some("bob"));
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let head = RequestHead::parse(br#"{"model":"gpt\u002d4o"}"#).expect("valid");
        assert_eq!(head.model(), "gpt-4o");
    }

    #[test]
    fn values_of_another_type_read_as_absent() {
        let body = br#"{"model":5,"stream":"yes","metadata":"x","stream_options":[true],
            "prompt_cache_key":{"k":"v"},"user":null}"#;
        let head = RequestHead::parse(body).expect("valid");
        assert_eq!(head.model(), "");
        assert!(!head.stream());
        assert_eq!(head.metadata_user_id(), None);
        assert!(!head.include_usage());
        assert_eq!(head.prompt_cache_key(), None);
        assert_eq!(head.user(), None);
        let nested = RequestHead::parse(
            br#"{"metadata":{"user_id":7},"stream_options":{"include_usage":1}}"#,
        )
        .expect("valid");
        assert_eq!(nested.metadata_user_id(), None);
        assert!(!nested.include_usage());
        let blank = RequestHead::parse(br#"{"model":"  ","user":""}"#).expect("valid");
        assert_eq!((blank.model(), blank.user()), ("", None));
    }

    #[test]
    fn not_json_or_not_an_object_is_an_error() {
        for body in [
            &b"{\"model\":"[..],
            b"not json",
            b"",
            b"[1",
            b"{\"model\":\"m\"} x",
        ] {
            let error = RequestHead::parse(body).err();
            assert!(
                matches!(error, Some(BodyError::NotJson(_))),
                "{}: {error:?}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [
            &b"[]"[..],
            b" [{\"model\":\"m\"}]",
            b"\"text\"",
            b"12",
            b"null",
        ] {
            let error = RequestHead::parse(body).err();
            assert!(
                matches!(error, Some(BodyError::NotAnObject)),
                "{}: {error:?}",
                String::from_utf8_lossy(body)
            );
        }
        let error = RequestHead::parse(br#"{"model":"a","model":"b"}"#).err();
        assert!(
            matches!(error, Some(BodyError::NotJson(_))),
            "a duplicate key: {error:?}"
        );
    }
}
