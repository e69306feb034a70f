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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    Json,
    Protobuf,
    ProtobufOnly,
}

/// What an Accept header prefers: the first media type listed that this server produces wins.
/// Protobuf asked with `as=` (a Table, metadata only) is not served, so it does not count.
fn protobuf_wanted(accept: &str) -> Wanted {
    let types: Vec<(&str, bool)> = accept
        .split(',')
        .map(|part| {
            let mut params = part.split(';');
            let media = params.next().unwrap_or_default().trim();
            (media, params.any(|p| p.trim().starts_with("as=")))
        })
        .collect();
    let is_pb = |(m, with_as): &(&str, bool)| *m == subsea_store::protobuf::MEDIA_TYPE && !with_as;
    let other = |(m, _): &(&str, bool)| {
        matches!(
            *m,
            "application/json" | "application/*" | "*/*" | "application/yaml"
        )
    };
    match types.iter().find(|t| is_pb(t) || other(t)) {
        Some(t) if is_pb(t) && types.iter().any(other) => Wanted::Protobuf,
        Some(t) if is_pb(t) => Wanted::ProtobufOnly,
        _ => Wanted::Json,
    }
}

/// Response body type.
pub type Body = BoxBody<Bytes, Infallible>;

enum Payload {
    Json(Value),
    JsonAs(Value, &'static str),
    Raw(Bytes, &'static str),
    /// Watch events as JSON lines; `protobuf` when the watched kind has a protobuf form.
    Stream {
        lines: Lines,
        protobuf: bool,
    },
    /// The same events re-framed for a client that asked for protobuf.
    ProtobufStream(Lines),
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

    /// A streamed (watch) body of JSON lines; `protobuf` says whether the watched kind has a
    /// protobuf form, so [`Reply::negotiate`] may re-frame it.
    pub fn stream(lines: Lines, protobuf: bool) -> Self {
        Self {
            code: 200,
            payload: Payload::Stream { lines, protobuf },
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

    /// The reply in the encoding the client's Accept header prefers: a built-in object, list or
    /// Status as Kubernetes protobuf when asked for first, else JSON. Where protobuf is the only
    /// thing accepted and this reply has no protobuf form (a custom resource, a watch stream),
    /// 406 says so.
    pub(crate) fn negotiate(self, accept: &str) -> Self {
        let wanted = protobuf_wanted(accept);
        if wanted == Wanted::Json {
            return self;
        }
        let only = wanted == Wanted::ProtobufOnly;
        let refused = |what: String| {
            Self::error(&ApiError::not_acceptable(format!(
                "{what} has no protobuf form here; accept application/json"
            )))
        };
        let Self {
            code,
            payload,
            warnings,
        } = self;
        let payload = match payload {
            Payload::Json(v) if v["apiVersion"].is_string() && v["kind"].is_string() => {
                match subsea_store::protobuf::encode(&v) {
                    Ok(bytes) => Payload::Raw(Bytes::from(bytes), subsea_store::protobuf::MEDIA_TYPE),
                    Err(_) if only => return refused(format!("{} {}", v["apiVersion"], v["kind"])),
                    Err(_) => Payload::Json(v),
                }
            }
            Payload::Stream { protobuf: false, .. } if only => {
                return refused("a watch stream of this kind".into());
            }
            Payload::Stream {
                lines,
                protobuf: true,
            } => Payload::ProtobufStream(lines),
            other => other,
        };
        Self {
            code,
            payload,
            warnings,
        }
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
            Payload::Stream { lines, .. } => ("application/json", stream_body(lines, Bytes::from)),
            Payload::ProtobufStream(lines) => (
                subsea_store::protobuf::WATCH_MEDIA_TYPE,
                stream_body(lines, protobuf_frame),
            ),
        };
        b.header("Content-Type", ct)
            .header("Cache-Control", "no-cache, private")
            .body(body)
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
    }
}

/// A watch body: each line as `frame` renders it. The permit is released here, once the
/// connection has taken the line.
fn stream_body(lines: Lines, frame: fn(Bytes) -> Bytes) -> Body {
    let stream = futures::stream::unfold(lines, |mut rx| async move {
        rx.recv().await.map(|(b, _permit)| (b, rx))
    })
    .map(move |b| Ok::<_, Infallible>(Frame::data(frame(b))));
    BodyExt::boxed(StreamBody::new(stream))
}

/// A JSON watch line (`{"type": …, "object": …}`) as a protobuf watch frame. An object without a
/// protobuf form (none reaches here: the stream's kind has one) becomes an ERROR event.
fn protobuf_frame(line: Bytes) -> Bytes {
    let event: Value = serde_json::from_slice(&line).unwrap_or_default();
    let ty = event["type"].as_str().unwrap_or("ERROR");
    let frame = subsea_store::protobuf::encode_watch_event(ty, &event["object"]).or_else(|e| {
        subsea_store::protobuf::encode_watch_event("ERROR", &ApiError::internal(e.message).to_status())
    });
    Bytes::from(frame.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers() {
        for (accept, wanted) in [
            ("", Wanted::Json),
            ("application/json", Wanted::Json),
            ("application/vnd.kubernetes.protobuf, */*", Wanted::Protobuf),
            (
                "application/vnd.kubernetes.protobuf,application/json",
                Wanted::Protobuf,
            ),
            ("application/vnd.kubernetes.protobuf", Wanted::ProtobufOnly),
            (
                "application/json, application/vnd.kubernetes.protobuf",
                Wanted::Json,
            ),
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json",
                Wanted::Json,
            ),
        ] {
            assert_eq!(protobuf_wanted(accept), wanted, "{accept}");
        }
    }

    fn body_of(r: Reply) -> (u16, &'static str) {
        let code = r.code;
        match r.payload {
            Payload::Raw(_, ct) => (code, ct),
            Payload::Json(_) | Payload::JsonAs(..) => (code, "application/json"),
            Payload::Stream { .. } => (code, "stream"),
            Payload::ProtobufStream(_) => (code, subsea_store::protobuf::WATCH_MEDIA_TYPE),
        }
    }

    #[test]
    fn built_in_objects_in_protobuf_custom_ones_in_json_or_406() {
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let pb = "application/vnd.kubernetes.protobuf";
        assert_eq!(body_of(Reply::json(200, cm.clone()).negotiate(pb)), (200, pb));
        assert_eq!(
            body_of(Reply::json(200, cm).negotiate("application/json")),
            (200, "application/json")
        );
        let ep = serde_json::json!({"apiVersion": "submariner.io/v1", "kind": "Endpoint"});
        assert_eq!(
            body_of(Reply::json(200, ep.clone()).negotiate("application/vnd.kubernetes.protobuf, */*")),
            (200, "application/json")
        );
        assert_eq!(body_of(Reply::json(200, ep).negotiate(pb)).0, 406);
        let lines = || tokio::sync::mpsc::unbounded_channel().1;
        assert_eq!(
            body_of(Reply::stream(lines(), true).negotiate(pb)),
            (200, subsea_store::protobuf::WATCH_MEDIA_TYPE)
        );
        assert_eq!(body_of(Reply::stream(lines(), false).negotiate(pb)).0, 406);
        assert_eq!(
            body_of(Reply::stream(lines(), false).negotiate("application/vnd.kubernetes.protobuf, */*")),
            (200, "stream")
        );
    }

    #[test]
    fn json_watch_lines_become_protobuf_frames() {
        let line =
            br#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}}"#;
        let frame = protobuf_frame(Bytes::from_static(line));
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        assert_eq!(
            frame,
            subsea_store::protobuf::encode_watch_event("ADDED", &cm).expect("frame")
        );
    }
}
