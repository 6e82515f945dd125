"""The style sheet and the one script of the Images pages, inlined into each page under its CSP nonce.

Inlined rather than served: every route of the plugin app checks the user, and a page that needs
nothing else draws at once. The script only adds the "Copy URI" buttons (hidden without it).
"""

from __future__ import annotations

STYLE = """
:root{color-scheme:light dark;--fg:#1a202c;--muted:#5a6475;--line:#d9dee7;--card:#fff;--bg:#f6f8fb;
--accent:#0b63c5}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#a3adbd;--line:#333b48;--card:#1b2029;
--bg:#11151c;--accent:#6fb1ff}}
*{box-sizing:border-box}
body{margin:0;padding:16px 20px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
h1{font-size:20px;margin:0 0 2px}h2{font-size:17px;margin:22px 0 6px}h3{font-size:14px;margin:14px 0 6px;
font-weight:600}small{color:var(--muted);font-weight:400;font-size:13px}
a{color:var(--accent)}code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.sub,.folder,.note{color:var(--muted);margin:2px 0}.counts{margin:6px 0}
.notice{border-left:4px solid #d97706;background:rgba(217,119,6,.08);padding:8px 12px;margin:10px 0}
.empty{color:var(--muted);font-style:italic}
.state{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;
background:#e2e8f0;color:#1a202c}
.state-success{background:#c6f6d5;color:#22543d}.state-failed,.state-upstream_failed{background:#fed7d7;
color:#822727}.state-running{background:#c4f1f9;color:#086f83}.state-up_for_retry{background:#fefcbf;
color:#744210}.state-queued,.state-scheduled{background:#e9d8fd;color:#44337a}
.grid{list-style:none;margin:10px 0;padding:0;display:grid;gap:14px;
grid-template-columns:repeat(auto-fill,minmax(230px,1fr))}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden;display:flex;
flex-direction:column}
.thumb{display:flex;align-items:center;justify-content:center;height:256px;background:
repeating-conic-gradient(rgba(127,127,127,.12) 0 25%,transparent 0 50%) 0 0/16px 16px}
.thumb img{max-width:100%;max-height:256px;height:auto;display:block}
.nothumb{color:var(--muted)}
.meta{padding:8px 10px 10px;display:flex;flex-direction:column;gap:4px;flex:1}
.prompt{margin:0;font-weight:600;overflow-wrap:anywhere}.revised{margin:0;color:var(--muted);
overflow-wrap:anywhere}.revised span{font-size:11px;text-transform:uppercase;letter-spacing:.04em}
.prompt[missing]{color:var(--muted);font-weight:400;font-style:italic}
dl{display:grid;grid-template-columns:auto 1fr;gap:1px 10px;margin:4px 0;font-size:12px}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.links{margin:auto 0 0;font-size:13px}
.copy{font:inherit;font-size:12px;margin-left:6px;padding:1px 8px;border:1px solid var(--line);
border-radius:4px;background:transparent;color:var(--fg);cursor:pointer}
.uri{width:100%;font:11px ui-monospace,monospace;color:var(--muted);background:transparent;
border:1px solid var(--line);border-radius:4px;padding:2px 4px}
.pager,.more{margin:14px 0}
"""

COPY_SCRIPT = """
for (const button of document.querySelectorAll("button.copy")) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const uri = button.dataset.uri;
    try {
      await navigator.clipboard.writeText(uri);
    } catch (err) {
      const field = button.closest(".card").querySelector("input.uri");
      field.select();
      document.execCommand("copy");
    }
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy URI"; }, 1500);
  });
}
"""
