//! The HTTPS front end: TLS, authentication, routing and response encoding.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use subsea_store::ApiError;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::route::{self, Route};
use crate::state::Shared;
use crate::{auth, authz, discovery, handlers};
use subsea_rbac::User;

/// Largest request body accepted (kube-apiserver's limit).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

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
    code: u16,
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

    fn raw(code: u16, b: &'static [u8], ct: &'static str) -> Self {
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

    fn error(e: &ApiError) -> Self {
        Self::json(e.code, e.to_status())
    }

    fn into_response(self) -> Response<Body> {
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

/// The caller behind the request's bearer token.
fn authenticate(shared: &Shared, req: &Request<Incoming>) -> Option<User> {
    let h = req.headers().get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    // The scheme is case-insensitive (RFC 7235).
    let (scheme, token) = h.trim_start().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    if auth::same_secret(token, &shared.admin_token) {
        return Some(User::admin());
    }
    shared.authenticate_token(token)
}

/// Reads a request body up to [`MAX_BODY`]. An oversized body is drained (up to a bound) before
/// the 413 goes out, so the client sees the answer instead of a reset connection.
async fn read_body(mut body: Incoming) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("failed to read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= MAX_BODY {
                buf.extend_from_slice(&data);
            } else if seen > 4 * MAX_BODY {
                break;
            }
        }
    }
    if seen > MAX_BODY {
        return Err(ApiError::too_large(MAX_BODY));
    }
    Ok(Bytes::from(buf))
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let r = route::parse(req.uri().path());
    match r {
        Route::Health => return Ok(Reply::raw(200, b"ok", "text/plain; charset=utf-8")),
        Route::Version => return Ok(Reply::json(200, discovery::version())),
        _ => {}
    }
    let caller = authenticate(&shared, &req).ok_or_else(ApiError::unauthorized)?;
    // `kubectl --as`: the request acts as the impersonated identity, or is refused.
    let wanted = crate::impersonate::wanted(req.headers())?;
    let user = crate::impersonate::resolve(&shared.store(), caller, wanted)?;
    let accept = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let aggregated = discovery::wants_aggregated(accept);
    match r {
        // An empty protobuf document: kubectl finds no schemas, skips client-side validation
        // and leaves validation to the server (fieldValidation=Strict).
        Route::OpenApiV2 => Ok(Reply::raw(
            200,
            b"",
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        )),
        Route::CoreVersions | Route::Groups if aggregated => Ok(Reply::json_as(
            200,
            discovery::aggregated(&shared.registry(), r == Route::CoreVersions),
            discovery::AGGREGATED_CONTENT_TYPE,
        )),
        Route::CoreVersions => Ok(Reply::json(200, discovery::core_versions())),
        Route::Groups => Ok(Reply::json(200, discovery::groups(&shared.registry()))),
        Route::Group(g) => discovery::group(&shared.registry(), &g)
            .map(|d| Reply::json(200, d))
            .ok_or_else(ApiError::no_route),
        Route::Resources(g, v) => discovery::resources(&shared.registry(), &g, &v)
            .map(|d| Reply::json(200, d))
            .ok_or_else(ApiError::no_route),
        Route::Resource(path) => {
            let query = route::query(req.uri().query());
            let attrs = authz::attributes(req.method(), &path, &query);
            let self_review =
                path.group == "authorization.k8s.io" && path.plural == "selfsubjectaccessreviews";
            let cluster = {
                let store = shared.store();
                if !self_review && !authz::allowed(&store, &user, &attrs) {
                    return Err(authz::forbidden(&user, &attrs));
                }
                authz::cluster_scope(&store, &user)
            };
            let (parts, body) = req.into_parts();
            let body = read_body(body).await?;
            let request = handlers::Request {
                method: parts.method,
                path,
                query,
                headers: parts.headers,
                body,
                user,
                cluster,
            };
            handlers::handle(&shared, request).await
        }
        _ => Err(ApiError::no_route()),
    }
}

async fn serve_request(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let reply = match route(shared, req).await {
        Ok(r) => r,
        Err(e) => Reply::error(&e),
    };
    tracing::debug!(%method, %path, code = reply.code, "request");
    Ok(reply.into_response())
}

/// Accepts TLS connections until the task is dropped.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper::service::service_fn(move |req| serve_request(shared.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
