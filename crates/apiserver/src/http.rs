//! The HTTPS front end: TLS, authentication, routing and response encoding.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use subsea_store::ApiError;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::reply::{Body, Reply};
use crate::route::{self, Route};
use crate::state::Shared;
use crate::{auth, authz, discovery, handlers};
use subsea_rbac::User;

/// Largest request body accepted (kube-apiserver's limit).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

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
        Route::OpenApiV3(path) if path.is_empty() => {
            Ok(Reply::json(200, subsea_store::openapi::index(&shared.registry())))
        }
        Route::OpenApiV3(path) => subsea_store::openapi::document(&shared.registry(), &path)
            .map(|d| Reply::json(200, d))
            .ok_or_else(ApiError::no_route),
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
            let request = crate::request::Request {
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
    let accept = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let reply = match route(shared, req).await {
        Ok(r) => r,
        Err(e) => Reply::error(&e),
    }
    .negotiate(&accept);
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
