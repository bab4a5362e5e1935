//! The GraphiQL page of `graphql.playground` (SPEC §5): the page and every asset it loads are
//! served by Facade from files embedded in the binary (`graphiql/`, vendored from npm), under
//! `graphql.path`/assets/, with a Content-Security-Policy that allows no inline script and no
//! other origin. The page needs no token; the operations it sends do when `graphql.auth` says.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

/// The page's policy: everything from Facade itself, inline styles (GraphiQL sets some), images
/// from `data:` URLs.
pub const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:";

/// The embedded assets: name under `assets/`, content type, bytes. The stylesheet is served
/// from `stylesheet()`.
const ASSETS: [(&str, &str, &[u8]); 4] = [
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("graphiql/graphiql.min.js"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("graphiql/react-dom.production.min.js"),
    ),
    (
        "init.js",
        "text/javascript; charset=utf-8",
        include_bytes!("graphiql/init.js"),
    ),
];

/// The HTML page for GraphiQL at `path`.
pub fn page(path: &str) -> Response {
    let p = escape(path);
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Facade · GraphiQL</title>
<link rel="stylesheet" href="{p}/assets/graphiql.min.css">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql" data-endpoint="{p}">Loading GraphiQL…</div>
<script src="{p}/assets/react.production.min.js"></script>
<script src="{p}/assets/react-dom.production.min.js"></script>
<script src="{p}/assets/graphiql.min.js"></script>
<script src="{p}/assets/init.js"></script>
</body>
</html>
"#
    );
    let mut resp = (StatusCode::OK, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// GraphiQL's stylesheet embeds its fonts as `data:` URLs, which the page's policy does not
/// allow (`font-src` falls back to `'self'`). The stylesheet is served with each font moved to an
/// asset of its own (`font-3.woff2`), decoded once from the vendored file, which stays as
/// published.
struct Stylesheet {
    css: String,
    fonts: Vec<(String, &'static str, Vec<u8>)>,
}

fn stylesheet() -> &'static Stylesheet {
    static CSS: std::sync::OnceLock<Stylesheet> = std::sync::OnceLock::new();
    CSS.get_or_init(|| {
        use base64::Engine;
        let text = String::from_utf8_lossy(include_bytes!("graphiql/graphiql.min.css")).into_owned();
        let mut css = String::with_capacity(text.len());
        let mut fonts = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("url(data:font/") {
            let after = &rest[start + "url(data:font/".len()..];
            let decoded = after.split_once(";base64,").and_then(|(kind, data)| {
                let end = data.find(')')?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(&data[..end]).ok()?;
                let (ext, mime) = match kind {
                    "woff" => ("woff", "font/woff"),
                    _ => ("woff2", "font/woff2"),
                };
                Some((ext, mime, bytes, kind.len() + ";base64,".len() + end + 1))
            });
            let Some((ext, mime, bytes, used)) = decoded else {
                css.push_str(&rest[..start + 4]);
                rest = &rest[start + 4..];
                continue;
            };
            let name = format!("font-{}.{ext}", fonts.len());
            css.push_str(&rest[..start]);
            css.push_str(&format!("url({name})"));
            fonts.push((name, mime, bytes));
            rest = &after[used..];
        }
        css.push_str(rest);
        Stylesheet { css, fonts }
    })
}

/// An asset by its name under `assets/`, when it is one.
pub fn asset(name: &str) -> Option<Response> {
    let sheet = stylesheet();
    let found: Option<(&str, &[u8])> = if name == "graphiql.min.css" {
        Some(("text/css; charset=utf-8", sheet.css.as_bytes()))
    } else if let Some((_, mime, bytes)) = sheet.fonts.iter().find(|(n, _, _)| n == name) {
        Some((mime, bytes.as_slice()))
    } else {
        ASSETS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, mime, bytes)| (*mime, *bytes))
    };
    let (content_type, bytes) = found?;
    let mut resp = (StatusCode::OK, bytes.to_vec()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    Some(resp)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
