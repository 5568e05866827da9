//! The dashboard's charting library, Plotly.js, as the `plotly` crate embeds
//! it, served from here with its licence notice: the page asks no other host.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;

/// Plotly.js alone, taken from the script tags `offline_js_sources` returns
/// (the first of them; the second is MathJax, which the dashboard does not use).
static PLOTLY_JS: LazyLock<String> = LazyLock::new(|| first_script(&plotly::Plot::offline_js_sources()).to_owned());

/// The body of the first `<script …>…</script>` in `html`, or "" if none.
fn first_script(html: &str) -> &str {
    let Some(open) = html.find("<script") else { return "" };
    let Some(body) = html[open..].find('>').map(|i| open + i + 1) else { return "" };
    match html[body..].find("</script>") {
        Some(end) => &html[body..body + end],
        None => "",
    }
}

/// The library gzipped once, at its best level (4.6 MB to 1.4 MB): the
/// compression layer would spend a core's second on it for every visitor.
static PLOTLY_JS_GZIP: LazyLock<Vec<u8>> = LazyLock::new(|| {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(PLOTLY_JS.as_bytes()).expect("writing to memory");
    gz.finish().expect("writing to memory")
});

/// Compresses the library before the first visitor asks for it.
pub fn warm() {
    std::thread::spawn(|| LazyLock::force(&PLOTLY_JS_GZIP));
}

/// The library; its URL names its version, so browsers keep it for a year.
/// Gzipped when the browser takes gzip (they all do).
pub async fn plotly_js(headers: axum::http::HeaderMap) -> axum::response::Response {
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.split(';').next().is_some_and(|name| name.trim().eq_ignore_ascii_case("gzip")));
    let kept = [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        (header::VARY, "accept-encoding"),
    ];
    let body: axum::body::Body = match gzip {
        true => {
            let gz = tokio::task::spawn_blocking(|| PLOTLY_JS_GZIP.as_slice()).await.expect("compressing the library");
            return (kept, [(header::CONTENT_ENCODING, "gzip")], gz).into_response();
        }
        false => PLOTLY_JS.as_str().into(),
    };
    (kept, body).into_response()
}

/// The library's licence notice.
pub async fn plotly_licence() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], include_str!("plotly-LICENSE.txt"))
}

/// Where the page loads the library from.
pub const PLOTLY_PATH: &str = "/assets/plotly-3.0.1.min.js";

/// The dashboard's own script and style: files of their own, so that the
/// page's content policy allows no inline script.
const DASHBOARD_JS: &str = include_str!("dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard.css");

/// Their paths name a hash of their text: a browser keeps them for a year
/// and fetches a new one when it changes.
pub static DASHBOARD_JS_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/assets/dashboard-{:016x}.js", fnv1a(DASHBOARD_JS)));
/// See [`DASHBOARD_JS_PATH`].
pub static DASHBOARD_CSS_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/assets/dashboard-{:016x}.css", fnv1a(DASHBOARD_CSS)));

/// The page, naming its versioned script and style.
pub static DASHBOARD_PAGE: LazyLock<String> = LazyLock::new(|| {
    include_str!("dashboard.html")
        .replace("{{DASHBOARD_JS}}", &DASHBOARD_JS_PATH)
        .replace("{{DASHBOARD_CSS}}", &DASHBOARD_CSS_PATH)
});

/// FNV-1a, 64 bits: a version stamp, not a security measure.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The dashboard's script.
pub async fn dashboard_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        DASHBOARD_JS,
    )
}

/// The dashboard's style.
pub async fn dashboard_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        DASHBOARD_CSS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_is_plotly_3_alone() {
        assert!(PLOTLY_JS.starts_with("/**\n* plotly.js v3.0.1"), "{}", &PLOTLY_JS[..60]);
        // Plotly.js is 4.7 MB; with MathJax (2.1 MB) it would be more.
        assert!((1_000_000..5_000_000).contains(&PLOTLY_JS.len()), "{} bytes", PLOTLY_JS.len());
    }

    #[test]
    fn the_page_names_its_versioned_script_and_style_and_holds_no_inline_script() {
        let page = DASHBOARD_PAGE.as_str();
        assert!(page.contains(&format!("<script src=\"{}\" defer></script>", *DASHBOARD_JS_PATH)), "{page}");
        assert!(page.contains(&format!("href=\"{}\"", *DASHBOARD_CSS_PATH)));
        assert!(!page.contains("<script>") && !page.contains("<style>"), "inline script or style left in the page");
        assert!(!page.contains("{{"), "a placeholder left in the page");
        assert_ne!(*DASHBOARD_JS_PATH, format!("/assets/dashboard-{:016x}.js", fnv1a("")));
    }

    #[test]
    fn first_script_takes_the_first_body() {
        assert_eq!(first_script("<script type=\"x\">a()</script>\n<script>b()</script>"), "a()");
        assert_eq!(first_script("no script"), "");
        assert_eq!(first_script("<script>unterminated"), "");
    }
}
