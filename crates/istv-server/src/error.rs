//! Errors as HTTP responses: a status and `{"error": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What a busy answer asks the client to wait, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a parameter or the request is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or unknown token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but the role, scope or profile does not allow
    /// it, or a cookie request lacks its CSRF token.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the name is taken (a user, a token).
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// 415: a content type or encoding istv does not read.
    #[error("{0}")]
    UnsupportedMedia(String),
    /// 422: the file cannot be read as a feed.
    #[error("{0}")]
    Unprocessable(String),
    /// 429: too many uploads at once for this token.
    #[error("{0}")]
    TooMany(String),
    /// 429 with `Retry-After`: too many failed sign-ins, or queries past
    /// the caller's rate.
    #[error("{message}")]
    RateLimited {
        /// What was exceeded.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// 503: shutting down or not ready.
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: too many queries at once, or one took
    /// longer than the limit.
    #[error("{0}")]
    Busy(String),
    /// 500: the store or an internal step failed. The detail goes to the
    /// log with a request id; the client gets the id and a generic message
    /// (a database's error text can name tables, values or settings).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooMany(_) | ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<istv_store::StoreError> for ApiError {
    fn from(e: istv_store::StoreError) -> Self {
        ApiError::Internal(format!("store failure: {e}"))
    }
}

impl From<istv_access::Denied> for ApiError {
    fn from(e: istv_access::Denied) -> Self {
        ApiError::Forbidden(e.to_string())
    }
}

/// A fresh request id for a failure: random-looking, unique in the process.
fn request_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}", KEYS.get_or_init(RandomState::new).hash_one(n))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            let id = request_id();
            tracing::error!(request_id = %id, error = %detail, "internal error");
            let body = serde_json::json!({
                "error": format!("internal error; the service log has the detail under request id {id}"),
                "request_id": id,
            });
            return (self.status(), axum::Json(body)).into_response();
        }
        let body = serde_json::json!({ "error": self.to_string() });
        if let ApiError::Busy(_) = self {
            let retry = [(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECONDS)];
            return (self.status(), retry, axum::Json(body)).into_response();
        }
        if let ApiError::RateLimited { retry_after, .. } = self {
            let retry = [(axum::http::header::RETRY_AFTER, retry_after.to_string())];
            return (self.status(), retry, axum::Json(body)).into_response();
        }
        if let ApiError::Unauthorized(_) = self {
            let challenge = [(axum::http::header::WWW_AUTHENTICATE, "Bearer")];
            return (self.status(), challenge, axum::Json(body)).into_response();
        }
        (self.status(), axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn internal_errors_answer_a_request_id_not_the_detail() {
        let e = ApiError::from(istv_store::StoreError::Corrupt {
            column: "records.secret_column",
            value: "a stored value".into(),
        });
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let b = body(r).await;
        let text = b.to_string();
        assert!(
            !text.contains("secret_column") && !text.contains("stored value"),
            "{text}"
        );
        let id = b["request_id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 16);
        assert!(b["error"].as_str().unwrap().ends_with(&id));
        // Each failure its own id.
        let again = body(ApiError::Internal("x".into()).into_response()).await;
        assert_ne!(again["request_id"].as_str().unwrap(), id);
        // Other errors keep their specific message.
        let bad = body(ApiError::BadRequest("unknown parameter `x`".into()).into_response()).await;
        assert_eq!(bad["error"], "unknown parameter `x`");
    }
}
