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

/// The library; its URL names its version, so browsers keep it for a year.
pub async fn plotly_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        PLOTLY_JS.as_str(),
    )
}

/// The library's licence notice.
pub async fn plotly_licence() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], include_str!("plotly-LICENSE.txt"))
}

/// Where the page loads the library from.
pub const PLOTLY_PATH: &str = "/assets/plotly-3.0.1.min.js";

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
    fn first_script_takes_the_first_body() {
        assert_eq!(first_script("<script type=\"x\">a()</script>\n<script>b()</script>"), "a()");
        assert_eq!(first_script("no script"), "");
        assert_eq!(first_script("<script>unterminated"), "");
    }
}
