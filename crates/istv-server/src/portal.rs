//! The portal: the web page's built bundle (`web/dist`, committed), embedded
//! in the binary and served at `/` (the page) and `/assets/...` (scripts,
//! styles, the icon). The files hold no figures and need no credential; the
//! page signs in and asks the query API for everything it shows.

use crate::error::ApiError;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The built bundle.
#[derive(rust_embed::Embed)]
#[folder = "../../web/dist"]
struct Bundle;

/// The content security policy of the portal's own files: its scripts,
/// styles, images and API calls from this origin only, nothing inline,
/// no other origin, no frames, no form posts.
pub(crate) const PORTAL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Marks an answer as one of the portal's files: the security headers then
/// carry [`PORTAL_CSP`] and keep the file's own `Cache-Control`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PortalFile;

/// The page itself: revalidated on every load (a new release changes it),
/// so its ETag decides whether it is sent again.
const PAGE_CACHE: &str = "no-cache";

/// Assets have a content hash in their names: cached for a year.
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

/// `GET /`: the page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    file("index.html", &headers, PAGE_CACHE)
}

/// `GET /assets/{path}`: a script, style sheet or image of the page.
pub(crate) async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    file(&format!("assets/{path}"), &headers, ASSET_CACHE)
}

/// The content type of a bundle file, from its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The ETag of a bundle file: the first 128 bits of its SHA-256.
fn etag(file: &rust_embed::EmbeddedFile) -> String {
    let hash = file.metadata.sha256_hash();
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// The ETag the portal sends for a bundle file (for tests).
#[cfg(test)]
pub(crate) fn etag_of(path: &str) -> String {
    etag(&Bundle::get(path).expect("a bundle file"))
}

/// The path of the page's script, as the page names it (for tests).
#[cfg(test)]
pub(crate) fn script_path() -> String {
    let page = Bundle::get("index.html").expect("index.html embedded");
    std::str::from_utf8(&page.data)
        .unwrap()
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .expect("the page names its script")
        .to_string()
}

fn file(path: &str, headers: &HeaderMap, cache: &'static str) -> Response {
    let Some(found) = Bundle::get(path) else {
        return ApiError::NotFound(format!("no portal file {path}")).into_response();
    };
    let etag = etag(&found);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut answer = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, content_type(path))],
            found.data.into_owned(),
        )
            .into_response()
    };
    let h = answer.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    answer.extensions_mut().insert(PortalFile);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page names its script and style sheet, and both are in the bundle.
    #[test]
    fn the_page_and_the_assets_it_names_are_embedded() {
        let page = Bundle::get("index.html").expect("index.html embedded");
        let page = std::str::from_utf8(&page.data).unwrap();
        let named: Vec<&str> = page
            .split('"')
            .filter(|s| s.starts_with("/assets/"))
            .collect();
        assert!(named.iter().any(|s| s.ends_with(".js")), "{named:?}");
        assert!(named.iter().any(|s| s.ends_with(".css")), "{named:?}");
        for name in named {
            assert!(Bundle::get(&name[1..]).is_some(), "{name} not embedded");
        }
        // Nothing inline for the policy to refuse, nothing from elsewhere.
        assert!(!page.contains("<script>"), "inline script");
        assert!(!page.contains("style="), "inline style");
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/app-X.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("assets/app-X.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("assets/icon-X.svg"), "image/svg+xml");
    }
}
