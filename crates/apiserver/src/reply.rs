//! A handler's answer and its HTTP response: JSON documents, raw bytes, and streamed watch
//! lines (each holding its share of the stream's byte budget until the connection takes it).

use std::convert::Infallible;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use serde_json::Value;
use subsea_store::ApiError;

/// Response body type.
pub type Body = BoxBody<Bytes, Infallible>;

enum Payload {
    Json(Value),
    JsonAs(Value, &'static str),
    Raw(Bytes, &'static str),
    Stream(Lines),
}

/// The lines of a streamed body, each holding its share of the stream's byte budget until the
/// connection takes it.
pub type Lines = tokio::sync::mpsc::UnboundedReceiver<(Bytes, tokio::sync::OwnedSemaphorePermit)>;

/// A handler's answer.
pub struct Reply {
    pub(crate) code: u16,
    payload: Payload,
    warnings: Vec<String>,
}

impl Reply {
    /// A JSON document.
    pub fn json(code: u16, v: Value) -> Self {
        Self {
            code,
            payload: Payload::Json(v),
            warnings: Vec::new(),
        }
    }

    /// A JSON document with a specific content type.
    pub fn json_as(code: u16, v: Value, ct: &'static str) -> Self {
        Self {
            code,
            payload: Payload::JsonAs(v, ct),
            warnings: Vec::new(),
        }
    }

    /// A streamed (watch) body.
    pub fn stream(lines: Lines) -> Self {
        Self {
            code: 200,
            payload: Payload::Stream(lines),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn raw(code: u16, b: &'static [u8], ct: &'static str) -> Self {
        Self {
            code,
            payload: Payload::Raw(Bytes::from_static(b), ct),
            warnings: Vec::new(),
        }
    }

    /// Plain text (a pod's log).
    pub fn text(code: u16, body: Vec<u8>) -> Self {
        Self {
            code,
            payload: Payload::Raw(Bytes::from(body), "text/plain"),
            warnings: Vec::new(),
        }
    }

    /// Adds `Warning: 299` headers.
    pub fn with_warnings(mut self, w: Vec<String>) -> Self {
        self.warnings = w;
        self
    }

    pub(crate) fn error(e: &ApiError) -> Self {
        Self::json(e.code, e.to_status())
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        let mut b = Response::builder()
            .status(StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        for w in &self.warnings {
            b = b.header("Warning", format!("299 - {w:?}"));
        }
        let (ct, body) = match self.payload {
            Payload::Json(v) => (
                "application/json",
                Full::new(Bytes::from(serde_json::to_vec(&v).unwrap_or_default())).boxed(),
            ),
            Payload::JsonAs(v, ct) => (
                ct,
                Full::new(Bytes::from(serde_json::to_vec(&v).unwrap_or_default())).boxed(),
            ),
            Payload::Raw(bytes, ct) => (ct, Full::new(bytes).boxed()),
            Payload::Stream(rx) => {
                // The permit is released here, once the connection has taken the line.
                let stream = futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|(b, _permit)| (b, rx))
                })
                .map(|b| Ok::<_, Infallible>(Frame::data(b)));
                ("application/json", BodyExt::boxed(StreamBody::new(stream)))
            }
        };
        b.header("Content-Type", ct)
            .header("Cache-Control", "no-cache, private")
            .body(body)
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
    }
}
