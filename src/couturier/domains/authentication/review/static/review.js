// The review console's keyboard: every action has a key, so a case is worked without a mouse.
// No build step: plain JavaScript, loaded with htmx. Keys are ignored while typing in a field
// (Esc leaves it; Ctrl+Enter saves from the note).
(function () {
  "use strict";
  let lastActive = Date.now();
  ["keydown", "mousemove", "mousedown", "scroll", "touchstart"].forEach(function (e) {
    document.addEventListener(e, function () { lastActive = Date.now(); }, { passive: true });
  });
  // the lease is renewed every 30 s while somebody uses the page (a key, a click or a scroll
  // in the last 5 minutes): a reviewer who walks away loses it. An event, not an htmx trigger
  // filter: those are evaluated as code, which the console's Content-Security-Policy forbids.
  window.setInterval(function () {
    const lease = document.getElementById("lease");
    if (lease && window.htmx && Date.now() - lastActive < 5 * 60 * 1000) {
      window.htmx.trigger(lease, "renew");
    }
  }, 30 * 1000);

  let point = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr.point")); }
  function select(i) {
    const r = rows();
    if (!r.length) { return; }
    point = Math.max(0, Math.min(i, r.length - 1));
    r.forEach(function (row, j) { row.classList.toggle("selected", j === point); });
  }
  function setPoint(value) {
    const row = rows()[point];
    if (!row) { return; }
    const input = row.querySelector('input[type=radio][value="' + value + '"]');
    if (input) { input.checked = true; }
  }
  function click(id) { const b = document.getElementById(id); if (b) { b.click(); } }
  function check(id) { const b = document.getElementById(id); if (b) { b.checked = true; } }
  function focus(el) { if (el) { el.focus(); } }

  document.addEventListener("keydown", function (ev) {
    const page = document.body.dataset.page;
    const t = ev.target;
    const typing = t && ((t.tagName === "INPUT" && ["text", "password", "search", ""].indexOf(t.type) >= 0)
      || t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.inputMode === "decimal"));
    if (typing) {
      if (ev.key === "Escape") { t.blur(); ev.preventDefault(); }
      else if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && page === "case") { ev.preventDefault(); click("save"); }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    const k = ev.key;
    if (k === "t" && page !== "login") { ev.preventDefault(); window.location.href = "/review/throughput"; return; }
    if (k === "q" && page !== "login") { ev.preventDefault(); window.location.href = "/review"; return; }
    if (page === "queue") {
      if (k === "n") { ev.preventDefault(); click("next"); }
      return;
    }
    if (page !== "case") { return; }
    if (k === "a") { check("verdict-authentic"); }
    else if (k === "c") { check("verdict-counterfeit"); }
    else if (k >= "1" && k <= "9") { select(Number(k) - 1); }
    else if (k === "j" || k === "ArrowDown") { select(point + 1); }
    else if (k === "k" || k === "ArrowUp") { select(point - 1); }
    else if (k === "p") { setPoint("pass"); }
    else if (k === "f") { setPoint("fail"); }
    else if (k === "u") { setPoint(""); }
    else if (k === "m") { const row = rows()[point]; focus(row && row.querySelector("input.measure")); }
    else if (k === "o") { focus(document.getElementById("note")); }
    else if (k === "s") { click("save"); }
    else if (k === "e") { click("escalate"); }
    else if (k === "n") { click("skip"); }
    else { return; }
    ev.preventDefault();
  });
})();
