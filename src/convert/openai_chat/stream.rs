//! Streamed Chat Completions. (Being written.)

use crate::convert::ir::Event;
use crate::convert::{StreamDecoder, StreamEncoder, StreamOptions};

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
