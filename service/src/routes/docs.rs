//! The OpenAPI document and a browsable page for it that works offline (no CDN: the page
//! and its script are served from here).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

pub async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.openapi.as_ref().clone())
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GoodGo API</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#263238}
h1{margin-bottom:.2em} .op{border:1px solid #cfd8dc;border-radius:6px;margin:.6em 0;padding:.5em .8em}
.m{display:inline-block;min-width:4.5em;font-weight:bold;text-transform:uppercase}
.get{color:#1565c0}.post{color:#2e7d32}.patch{color:#ef6c00}.delete{color:#c62828}
code{background:#eceff1;padding:0 .3em;border-radius:3px} details{margin-top:.3em} pre{background:#f5f5f5;padding:.6em;overflow:auto}
</style></head><body><h1>GoodGo API</h1><p id="info">Loading <code>/openapi.json</code>…</p><div id="ops"></div>
<script src="/docs/app.js"></script></body></html>
"#;

const SCRIPT: &str = r#"(async function () {
  const spec = await (await fetch('/openapi.json')).json();
  document.getElementById('info').textContent = spec.info.title + ' ' + spec.info.version + ' (OpenAPI ' + spec.openapi + ')';
  const ops = document.getElementById('ops');
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const div = document.createElement('div'); div.className = 'op';
      const head = document.createElement('div');
      const m = document.createElement('span'); m.className = 'm ' + method; m.textContent = method; head.appendChild(m);
      const p = document.createElement('code'); p.textContent = path; head.appendChild(p);
      const s = document.createElement('span'); s.textContent = ' ' + (op.summary || ''); head.appendChild(s);
      div.appendChild(head);
      const d = document.createElement('details'); const sum = document.createElement('summary'); sum.textContent = 'details';
      d.appendChild(sum); const pre = document.createElement('pre'); pre.textContent = JSON.stringify(op, null, 2); d.appendChild(pre);
      div.appendChild(d); ops.appendChild(div);
    }
  }
})();
"#;

fn with_csp(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"));
    res
}

pub async fn page() -> Response {
    with_csp(PAGE, "text/html; charset=utf-8")
}

pub async fn script() -> Response {
    with_csp(SCRIPT, "text/javascript; charset=utf-8")
}
