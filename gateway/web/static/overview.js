// The overview's chart and its refresh: fetches /dashboard/overview.json every data-refresh seconds and
// redraws the tiles, tables and the SVG chart in place (no reload, no inline script: CSP default-src 'self').
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = {
    received: "#8aa4c2", parsed: "#6fb1ff", mapped: "#3d8bd6", done: "#217a3c", failed: "#b42318",
    duplicate: "#b0b8c3", rendered: "#c9a227", sent: "#5aa469"
  };
  var meta = document.getElementById("overview-meta");
  if (!meta) { return; }
  var source = meta.getAttribute("data-source");
  var every = Math.max(1, parseInt(meta.getAttribute("data-refresh"), 10) || 5) * 1000;
  var select = document.getElementById("chart-channel");
  var last = null;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = String(text); }
    return node;
  }
  function label(d, key) { return (d.labels && d.labels[key]) || key; }
  function fill(tbody, rows) {
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c, i) { tr.appendChild(el("td", i ? { "class": "num" } : {}, c)); });
      tbody.appendChild(tr);
    });
  }

  function tiles(d) {
    var box = document.getElementById("status-tiles");
    var dead = document.getElementById("dead-deliveries");
    dead.querySelector(".number").textContent = String(d.dead);
    dead.classList.toggle("alert", d.dead > 0);
    Array.prototype.slice.call(box.querySelectorAll("[data-status]")).forEach(function (n) { box.removeChild(n); });
    d.statuses.forEach(function (st) {
      var tile = el("div", { "class": "tile status-" + st, "data-status": st });
      tile.appendChild(el("span", { "class": "label" }, label(d, "status." + st)));
      tile.appendChild(el("span", { "class": "number" }, d.by_status[st]));
      box.appendChild(tile);
    });
  }

  function tables(d) {
    var table = document.getElementById("by-channel");
    var head = table.querySelector("thead tr");
    while (head.children.length > 1) { head.removeChild(head.lastChild); }
    d.statuses.forEach(function (st) { head.appendChild(el("th", {}, label(d, "status." + st))); });
    head.appendChild(el("th", {}, label(d, "col.total")));
    fill(table.querySelector("tbody"), Object.keys(d.by_channel).map(function (ch) {
      var row = d.by_channel[ch], total = 0;
      var cells = d.statuses.map(function (st) { total += row[st] || 0; return row[st] || 0; });
      return [ch].concat(cells, [total]);
    }));
    document.getElementById("none").hidden = d.total > 0;
    fill(document.querySelector("#queues tbody"), d.queue.map(function (q) {
      return [q.channel, q.received, q.lag_seconds + " s"];
    }));
    fill(document.querySelector("#routes tbody"), d.routes.map(function (r) {
      return [r.route, r.pending, r.sending, r.held];
    }));
    var channels = document.querySelector("#channels tbody");
    if (channels) {
      while (channels.firstChild) { channels.removeChild(channels.firstChild); }
      (d.channels || []).forEach(function (c) {
        var tr = el("tr", { "data-channel": c.name, "data-up": c.up ? "true" : "false" });
        if (!c.up) { tr.setAttribute("class", "alert"); }
        tr.appendChild(el("td", {}, c.name));
        tr.appendChild(el("td", {}, label(d, c.up ? "overview.up" : "overview.down")));
        channels.appendChild(tr);
      });
    }
    var oldest = document.getElementById("oldest-failure");
    while (oldest.firstChild) { oldest.removeChild(oldest.firstChild); }
    var f = d.oldest_failure;
    if (f) {
      oldest.appendChild(el("a", { href: "/dashboard/messages/" + f.id }, "#" + f.id));
      oldest.appendChild(document.createTextNode(" " + (f.message_type || "") + " · " + f.channel + " · "));
      oldest.appendChild(el("code", {}, f.error_code || ""));
      oldest.appendChild(document.createTextNode(" · " + f.received_at.slice(0, 19).replace("T", " ") + " UTC"));
    } else {
      oldest.appendChild(el("span", { "class": "empty" }, label(d, "overview.no_failure")));
    }
    var options = [""].concat(Object.keys(d.by_channel));
    var chosen = select.value;
    while (select.options.length > 1) { select.remove(1); }
    options.slice(1).forEach(function (ch) { select.appendChild(el("option", { value: ch }, ch)); });
    select.value = options.indexOf(chosen) >= 0 ? chosen : "";
    document.getElementById("updated-at").textContent = d.generated_at.slice(11, 19);
  }

  function chart(d) {
    var box = document.getElementById("chart");
    var channel = select.value;
    var W = 960, H = 260, left = 40, bottom = 28, top = 10, right = 10;
    var stacks = {};
    d.hours.forEach(function (h) { stacks[h] = {}; });
    d.series.forEach(function (p) {
      if ((channel && p[1] !== channel) || !stacks[p[0]]) { return; }
      stacks[p[0]][p[2]] = (stacks[p[0]][p[2]] || 0) + p[3];
    });
    var max = 1;
    d.hours.forEach(function (h) {
      var sum = 0; Object.keys(stacks[h]).forEach(function (st) { sum += stacks[h][st]; });
      max = Math.max(max, sum);
    });
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: "100%", "data-max": max });
    var plotH = H - top - bottom, slot = (W - left - right) / d.hours.length;
    [0, 0.5, 1].forEach(function (f) {
      var y = top + plotH * (1 - f);
      root.appendChild(svg("line", { x1: left, x2: W - right, y1: y, y2: y, "class": "grid" }));
      root.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", "class": "axis" }, Math.round(max * f)));
    });
    d.hours.forEach(function (h, i) {
      var x = left + i * slot + slot * 0.15, y = top + plotH;
      d.statuses.forEach(function (st) {
        var n = stacks[h][st] || 0;
        if (!n) { return; }
        var bh = plotH * n / max;
        y -= bh;
        var rect = svg("rect", {
          x: x.toFixed(1), y: y.toFixed(1), width: (slot * 0.7).toFixed(1), height: bh.toFixed(1),
          fill: COLORS[st] || "#888", "data-hour": h, "data-status": st, "data-count": n
        });
        rect.appendChild(svg("title", {}, h + ":00 UTC · " + label(d, "status." + st) + " · " + n));
        root.appendChild(rect);
      });
      if (i % 3 === 0) {
        root.appendChild(svg("text", { x: left + i * slot + slot / 2, y: H - 8, "text-anchor": "middle", "class": "axis" }, h.slice(11) + ":00"));
      }
    });
    var legend = el("div", { "class": "legend" });
    d.statuses.forEach(function (st) {
      var item = el("span", { "data-legend": st });
      var swatch = el("i", { "class": "swatch status-bg-" + st });
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(label(d, "status." + st)));
      legend.appendChild(item);
    });
    while (box.firstChild) { box.removeChild(box.firstChild); }
    box.appendChild(root);
    box.appendChild(legend);
    box.setAttribute("data-total", String(d.total));
  }

  function draw(d) { last = d; tiles(d); tables(d); chart(d); }

  function refresh() {
    fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.redirected || !r.ok) { throw new Error("overview: " + r.status); }
        return r.json();
      })
      .then(draw)
      .catch(function () { meta.classList.add("stale"); })
      .then(function () { window.setTimeout(refresh, every); });
  }

  select.addEventListener("change", function () { if (last) { chart(last); } });
  refresh();
})();
