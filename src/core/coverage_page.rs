//! The coverage report as one self-contained HTML page (`ebssnap coverage --html`): totals, a
//! chart of each volume's newest restore-point age against its targets' intervals, and a sortable,
//! filterable table. No external scripts, styles, fonts or images: the report is embedded as a
//! JSON data block, the script and the style are inline, and the page's Content-Security-Policy
//! allows exactly those two (by hash) and nothing else, not even a network request.

use base64::Engine;
use sha2::{Digest, Sha256};

const SCRIPT: &str = include_str!("coverage_page/page.js");
const STYLE: &str = include_str!("coverage_page/page.css");

fn csp_hash(text: &str) -> String {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// JSON made safe inside a `<script>` data block: no `<`, `>` or `&` can end or open a tag.
fn embed(report: &serde_json::Value) -> String {
    report
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The page of a coverage report (the `--json` object).
pub fn render(report: &serde_json::Value) -> String {
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'none'; connect-src 'none'; font-src 'none'; form-action 'none'; base-uri 'none'",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    );
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ebssnap coverage</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>ebssnap coverage</h1><p id="generated"></p></header>
<section id="scopes" aria-label="Accounts and Regions"></section>
<section id="totals" aria-label="Totals"></section>
<section aria-label="Restore-point age">
<h2>Newest restore point, by age against its targets' interval</h2>
<p class="hint">One bar per volume, as a share of the age at which it turns stale (twice its targets' longest interval). Bars past the line are stale; full red bars have no restore point.</p>
<div id="chart"></div>
</section>
<section aria-label="Volumes">
<h2>Volumes</h2>
<div class="filters">
<label>Filter <input id="filter" type="search" placeholder="volume, name, instance, target, account…"></label>
<label>Status <select id="status"><option value="">all</option><option>unprotected</option><option>stale</option><option>excluded</option><option>protected</option></select></label>
<span id="shown"></span>
</div>
<table id="volumes"><thead></thead><tbody></tbody></table>
</section>
<script type="application/json" id="report">{data}</script>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        data = embed(report)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_embeds_the_report_safely_and_allows_only_its_own_script_and_style() {
        let page = render(
            &serde_json::json!({"volumes": [{"name": "</script><script>alert(1)</script>"}]}),
        );
        assert!(!page.contains("</script><script>alert"), "tag broken out");
        assert!(page.contains("\\u003c/script\\u003e"));
        assert!(page.contains(&csp_hash(SCRIPT)));
        assert!(page.contains("default-src 'none'"));
        // Nothing outside the page: no src= or href= at all.
        assert!(!page.contains(" src="));
        assert!(!page.contains("href="));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
