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
    /// 404.
    #[error("{0}")]
    NotFound(String),
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
    /// 503: shutting down or not ready.
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: too many queries at once, or one took
    /// longer than the limit.
    #[error("{0}")]
    Busy(String),
    /// 500: the store or an internal step failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<istv_store::StoreError> for ApiError {
    fn from(e: istv_store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        if let ApiError::Busy(_) = self {
            let retry = [(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECONDS)];
            return (self.status(), retry, axum::Json(body)).into_response();
        }
        (self.status(), axum::Json(body)).into_response()
    }
}
