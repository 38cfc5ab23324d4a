"""The API's documentation page at `/docs`: one self-contained HTML page that renders `/openapi.json`.

FastAPI's default page loads Swagger UI from a CDN, which an offline or private machine cannot
reach, and which would tell a third party who reads the docs. This page has no remote asset: its
script and style are inline, and its Content-Security-Policy lets it fetch from its own origin
only (the script is allowed by its hash, not by 'unsafe-inline'). It lists each operation, its
request body and responses with their fields, and has a form to try `POST` routes. Everything
from the schema is inserted as text (`textContent`), never as markup.
"""

from __future__ import annotations

import base64
import hashlib

_SCRIPT = r"""
const $ = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls; return e; };
let spec = {};
function resolve(s) {
  while (s && s.$ref) s = s.$ref.split('/').slice(1).reduce((o, k) => (o || {})[k], spec);
  return s || {};
}
function typeOf(s) {
  s = resolve(s);
  if (s.anyOf) return s.anyOf.map(typeOf).join(' | ');
  if (s.type === 'array') return typeOf(s.items) + '[]';
  return s.title && !s.type ? s.title : (s.type || 'object');
}
function fields(schema) {
  const s = resolve(schema), table = $('table');
  const props = s.properties || (s.items ? resolve(s.items).properties : null);
  if (!props) { table.append($('tr')); table.lastChild.append($('td', typeOf(schema))); return table; }
  const head = $('tr'); ['field', 'type', 'required', 'description'].forEach(h => head.append($('th', h)));
  table.append(head);
  const required = new Set(s.required || (s.items ? resolve(s.items).required : []) || []);
  for (const [name, p] of Object.entries(props)) {
    const row = $('tr');
    row.append($('td', name, 'mono'), $('td', typeOf(p), 'mono'), $('td', required.has(name) ? 'yes' : ''),
               $('td', resolve(p).description || p.description || ''));
    table.append(row);
  }
  return table;
}
function tryIt(path, op, box) {
  const example = {};
  const body = ((op.requestBody || {}).content || {})['application/json'];
  if (body) for (const [k, p] of Object.entries(resolve(body.schema).properties || {}))
    if (p.examples) example[k] = p.examples[0];
  const input = $('textarea'); input.value = JSON.stringify(example, null, 2); input.rows = 5;
  const send = $('button', 'Send'), out = $('pre', '', 'out');
  send.onclick = async () => {
    out.textContent = '…';
    const r = await fetch(path, {method: 'POST', headers: {'content-type': 'application/json'}, body: input.value});
    const text = await r.text();
    let shown = text; try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) {}
    out.textContent = r.status + ' ' + r.statusText + '\n' + shown;
  };
  box.append($('h4', 'Try it'), input, send, out);
}
async function main() {
  const root = document.getElementById('api');
  try { spec = await (await fetch('openapi.json')).json(); }
  catch (e) { root.textContent = 'could not load openapi.json: ' + e; return; }
  document.title = spec.info.title + ' — API';
  root.append($('h1', spec.info.title + ' — API ' + spec.info.version), $('p', spec.info.description || ''));
  for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) {
    const box = $('section', undefined, 'op');
    const title = $('h2'); title.append($('span', method.toUpperCase(), 'method ' + method), $('span', ' ' + path, 'mono'));
    box.append(title, $('p', op.summary || ''), $('p', op.description || '', 'desc'));
    const body = ((op.requestBody || {}).content || {})['application/json'];
    if (body) box.append($('h3', 'Request body (JSON)'), fields(body.schema));
    box.append($('h3', 'Responses'));
    for (const [status, r] of Object.entries(op.responses || {})) {
      box.append($('h4', status + ' — ' + (r.description || '')));
      const content = (r.content || {})['application/json'];
      if (content && content.schema) box.append(fields(content.schema));
    }
    if (method === 'post') tryIt(path, op, box);
    root.append(box);
  }
}
main();
"""

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 1em auto; padding: 0 1em; color: #111827; }
.op { border: 1px solid #d1d5db; border-radius: 6px; padding: 0.5em 1em; margin: 1em 0; }
.method { font-weight: 700; padding: 0.1em 0.4em; border-radius: 4px; color: white; background: #2563eb; }
.method.post { background: #059669; }
.mono, pre, textarea { font-family: ui-monospace, monospace; }
table { border-collapse: collapse; margin: 0.3em 0; } td, th { border: 1px solid #e5e7eb; padding: 0.2em 0.5em; }
textarea { width: 100%; } pre.out { background: #f3f4f6; padding: 0.5em; white-space: pre-wrap; }
"""

_DIGEST = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")

DOCS_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_STYLE}</style></head>
<body><main id="api"></main><script>{_SCRIPT}</script></body></html>
"""

#: Only this origin may be reached from the page; the inline script runs because of its hash.
DOCS_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'sha256-{_DIGEST}'; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}
