//! A whole Messages answer ⇄ [`Response`]. (Being written.)

use crate::convert::ConvertError;
use crate::convert::ir::Response;

pub fn decode_response(_body: &[u8]) -> Result<Response, ConvertError> {
    Err(ConvertError::invalid("not written"))
}

#[must_use]
pub fn encode_response(_response: &Response) -> Vec<u8> {
    Vec::new()
}
