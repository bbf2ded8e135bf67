// SPDX-License-Identifier: MIT
// zeromesh console: patch the page's figures from the SSE snapshots (/events) and draw the
// rates graph as inline SVG. No library, no build step.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const SERIES = ["enqueued", "acked", "requested", "answered"];

  function patchFigures(figs) {
    document.querySelectorAll("[data-fig]").forEach(function (el) {
      const key = el.getAttribute("data-fig");
      if (!(key in figs)) return;
      const value = figs[key] === null ? "" : String(figs[key]);
      // A cell holding a link keeps its link; only the text changes.
      const target = el.querySelector("a") || el;
      if (target.textContent !== value) target.textContent = value;
    });
  }

  function patchList(id, lines, empty, cls) {
    const list = document.getElementById(id);
    if (!list) return;
    list.replaceChildren();
    lines.forEach(function (line) {
      const item = document.createElement(list.tagName === "UL" ? "li" : "p");
      if (cls) item.className = cls;
      item.textContent = line;
      list.appendChild(item);
    });
    if (!lines.length && empty) {
      const item = document.createElement("li");
      item.className = "quiet";
      item.textContent = empty;
      list.appendChild(item);
    }
  }

  function drawRates(graph) {
    const svg = document.getElementById("rates");
    if (!svg || !graph || !graph.t) return;
    const w = 800, h = 200, pad = 30;
    const t = graph.t;
    let max = 1;
    SERIES.forEach(function (s) { (graph[s] || []).forEach(function (v) { if (v > max) max = v; }); });
    svg.replaceChildren();
    const axis = document.createElementNS(SVG, "text");
    axis.setAttribute("x", 2); axis.setAttribute("y", 12); axis.setAttribute("class", "axis");
    axis.textContent = max.toFixed(1) + "/s";
    svg.appendChild(axis);
    if (t.length < 2) return;
    // The x axis spans the history there is (10 s at least, 10 minutes at most), newest at the right.
    const span = Math.min(600, Math.max(10, t[t.length - 1] - t[0]));
    const t0 = t[t.length - 1] - span;
    const since = document.createElementNS(SVG, "text");
    since.setAttribute("x", pad); since.setAttribute("y", h - 2); since.setAttribute("class", "axis");
    since.textContent = "last " + Math.round(span) + " s";
    svg.appendChild(since);
    SERIES.forEach(function (s) {
      const values = graph[s] || [];
      const points = values.map(function (v, i) {
        const x = pad + (w - pad) * Math.max(0, (t[i] - t0)) / span;
        const y = h - 5 - (h - 20) * v / max;
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", points.join(" "));
      line.setAttribute("class", "line l-" + s);
      svg.appendChild(line);
    });
  }

  // A list page (body data-rows="q", "s" or "w") reloads when its rows no longer match the
  // mesh (a queue, service or worker came or went) or a queue's paused state flipped (its
  // button is stale); never while the operator has a box ticked or is typing, and at most
  // once every 3 s.
  const loadedAt = Date.now();
  function rowsOf(keys, kind) {
    const rows = new Set();
    keys.forEach(function (key) {
      if (key.startsWith(kind + ".")) rows.add(key.slice(0, key.lastIndexOf(".")));
    });
    return rows;
  }
  function structureChanged(figs) {
    const kind = document.body.getAttribute("data-rows");
    if (!kind) return false;
    const shown = [];
    const pausedShown = {};
    document.querySelectorAll("[data-fig]").forEach(function (el) {
      const key = el.getAttribute("data-fig");
      shown.push(key);
      if (key.endsWith(".paused")) pausedShown[key] = el.textContent.trim();
    });
    const onPage = rowsOf(shown, kind), now = rowsOf(Object.keys(figs), kind);
    if (onPage.size !== now.size) return true;
    for (const row of now) if (!onPage.has(row)) return true;
    return Object.keys(pausedShown).some(function (key) { return key in figs && figs[key] !== pausedShown[key]; });
  }
  function busy() {
    return document.querySelector("input[type=checkbox]:checked") !== null ||
      (document.activeElement && ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName));
  }

  function apply(snap) {
    if (Date.now() - loadedAt > 3000 && !busy() && structureChanged(snap.figs || {})) {
      window.location.reload();
      return;
    }
    patchFigures(snap.figs || {});
    patchList("alarms", snap.alarms || [], "none");
    patchList("banners", snap.banners || [], "", "banner");
    drawRates(snap.graph);
  }

  function connect() {
    if (!window.EventSource) return;
    const source = new EventSource("/events");
    source.onmessage = function (msg) {
      try { apply(JSON.parse(msg.data)); } catch (e) { /* a malformed snapshot is skipped */ }
    };
    // Close the stream when leaving the page: left to the browser, the connection can outlive the
    // page a while, and a browser opens at most six to one host (the next pages would wait).
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // A row's own Replay button replays that dead letter only, whatever boxes are ticked.
  document.addEventListener("click", function (ev) {
    const button = ev.target.closest && ev.target.closest("button[data-action='replay-one']");
    if (!button) return;
    button.form.querySelectorAll("input[type=checkbox]").forEach(function (c) { c.checked = false; });
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.hasAttribute("data-static")) return;
    connect();
  });
})();
