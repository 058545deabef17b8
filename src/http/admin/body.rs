//! The JSON body of every admin request, read once: a JSON object or array whose objects name
//! no key twice. serde keeps the last of two equal keys without a word (and `flatten` or a map
//! cannot see them), so a body like `{"costPerDay": 1, "costPerDay": -5}` is refused here,
//! before any type reads it.

use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::http::error::AdminError;

/// A parsed admin JSON body without duplicate keys.
pub struct AdminJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for AdminJson {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().ends_with("json"))
            });
        if !is_json {
            return Err(AdminError::BadRequest(
                "send the body as JSON (Content-Type: application/json)".into(),
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| AdminError::BadRequest(e.body_text()))?;
        parse(&bytes).map(AdminJson)
    }
}

/// `bytes` as JSON, refusing a key given twice in one object (the error names it and where).
pub fn parse(bytes: &[u8]) -> Result<Value, AdminError> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value = Strict { path: "" }
        .deserialize(&mut reader)
        .and_then(|value| reader.end().map(|()| value))
        .map_err(|e| AdminError::BadRequest(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// Deserializes a [`Value`] like serde_json does, with the path so far for messages.
struct Strict<'p> {
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = join(self.path, &items.len().to_string());
            match seq.next_element_seed(Strict { path: &path })? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(self.path, &key);
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key '{path}' is given twice"
                )));
            }
            let value = map.next_value_seed(Strict { path: &path })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::parse;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_and_named() {
        for (body, key) in [
            (r#"{"a":1,"a":2}"#, "'a'"),
            (
                r#"{"limits":{"costPerDay":1,"costPerDay":-5}}"#,
                "'limits.costPerDay'",
            ),
            (r#"[{"x":{"y":1}},{"x":{"y":1,"y":1}}]"#, "'1.x.y'"),
        ] {
            let err = parse(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("twice"), "{body}: {err}");
        }
        let fine = r#"{"a":{"b":[1,2.5,"x",null,true]},"b":{"a":1}}"#;
        assert_eq!(
            parse(fine.as_bytes()).unwrap(),
            serde_json::from_str::<serde_json::Value>(fine).unwrap()
        );
        assert!(parse(b"{} x").is_err(), "trailing bytes");
        assert!(parse(b"").is_err());
    }
}
