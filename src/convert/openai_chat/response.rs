//! Whole `chat.completion` bodies ⇄ [`Response`]. (Being written.)

use crate::convert::ConvertError;
use crate::convert::ir::Response;

pub(super) fn decode(_body: &[u8]) -> Result<Response, ConvertError> {
    Err(ConvertError::invalid("not written"))
}

pub(super) fn encode(_response: &Response) -> Vec<u8> {
    Vec::new()
}
