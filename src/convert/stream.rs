//! [`StreamConverter`]: an upstream's event stream in, the client's event stream out, one
//! event at a time (nothing waits for the end of the answer).

use bytes::Bytes;

use super::ir::Event;
use super::{StreamDecoder, StreamEncoder, StreamOptions, stream_decoder, stream_encoder};
use crate::providers::{ErrorKind, Protocol, SseParser};

/// Converts one streamed answer. The upstream's bytes go in as they arrive ([`feed`]); what
/// comes out is complete events in the client's protocol.
///
/// [`feed`]: StreamConverter::feed
pub struct StreamConverter {
    parser: SseParser,
    decoder: Box<dyn StreamDecoder>,
    encoder: Box<dyn StreamEncoder>,
    /// Reused between chunks.
    events: Vec<Event>,
    /// A `Finish` or `Error` went out: later upstream events are ignored.
    done: bool,
    /// The closing bytes went out.
    closed: bool,
}

impl std::fmt::Debug for StreamConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConverter")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl StreamConverter {
    #[must_use]
    pub fn new(upstream: Protocol, client: Protocol, options: StreamOptions) -> Self {
        Self {
            parser: SseParser::new(),
            decoder: stream_decoder(upstream),
            encoder: stream_encoder(client, options),
            events: Vec::new(),
            done: false,
            closed: false,
        }
    }

    /// The client's bytes for this piece of the upstream's stream (empty while an event is
    /// still incomplete).
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = Vec::new();
        for event in self.parser.feed(chunk) {
            if self.done {
                break;
            }
            self.decoder
                .event(event.event.as_deref(), &event.data, &mut self.events);
            self.encode_pending(&mut out);
        }
        Bytes::from(out)
    }

    /// The upstream ended its stream: what was still pending, an error event if the answer was
    /// cut short, and the protocol's closing bytes.
    pub fn finish(&mut self) -> Bytes {
        let mut out = Vec::new();
        if !self.done {
            if let Some(event) = self.parser.finish() {
                self.decoder
                    .event(event.event.as_deref(), &event.data, &mut self.events);
                self.encode_pending(&mut out);
            }
            if !self.done {
                self.decoder.end(&mut self.events);
                self.encode_pending(&mut out);
            }
        }
        self.close(&mut out);
        Bytes::from(out)
    }

    /// End the stream early with an error in the client's protocol (the upstream broke off or
    /// went quiet, or the relay is shutting down).
    pub fn error(&mut self, kind: ErrorKind, message: &str) -> Bytes {
        let mut out = Vec::new();
        if !self.done {
            self.events.push(Event::Error {
                kind,
                message: message.to_string(),
            });
            self.encode_pending(&mut out);
        }
        self.close(&mut out);
        Bytes::from(out)
    }

    /// The answer finished properly (a `Finish` went out, no error).
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn encode_pending(&mut self, out: &mut Vec<u8>) {
        for event in self.events.drain(..) {
            if self.done {
                break;
            }
            self.done = matches!(event, Event::Finish { .. } | Event::Error { .. });
            self.encoder.event(&event, out);
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if !self.closed {
            self.closed = true;
            self.encoder.close(out);
        }
    }
}
