//! The anthropic wire format ⇄ the intermediate representation. (Being written.)

use super::ir::{Event, Request, Response};
use super::{ConvertError, StreamDecoder, StreamEncoder, StreamOptions};
use crate::providers::Protocol;

const PROTOCOL: Protocol = Protocol::Anthropic;

pub fn decode_request(_body: &[u8]) -> Result<Request, ConvertError> {
    Err(ConvertError::unsupported("conversion", PROTOCOL))
}

pub fn encode_request(_request: &Request) -> Result<Vec<u8>, ConvertError> {
    Err(ConvertError::unsupported("conversion", PROTOCOL))
}

pub fn decode_response(_body: &[u8]) -> Result<Response, ConvertError> {
    Err(ConvertError::invalid("not written"))
}

#[must_use]
pub fn encode_response(_response: &Response) -> Vec<u8> {
    Vec::new()
}

#[derive(Debug, Default)]
pub struct Decoder {}

impl StreamDecoder for Decoder {
    fn event(&mut self, _name: Option<&str>, _data: &str, _out: &mut Vec<Event>) {}
    fn end(&mut self, _out: &mut Vec<Event>) {}
}

#[derive(Debug)]
pub struct Encoder {}

impl Encoder {
    #[must_use]
    pub fn new(_options: StreamOptions) -> Self {
        Self {}
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, _event: &Event, _out: &mut Vec<u8>) {}
    fn close(&mut self, _out: &mut Vec<u8>) {}
}
