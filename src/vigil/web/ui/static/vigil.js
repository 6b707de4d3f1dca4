// vigil's pages: draw each chart from its JSON endpoint with plotly (served from the installed
// package), sort tables, auto-refresh the charts. No other script.
(function () {
  "use strict";
  var SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "cross"];
  var DASHES = ["solid", "dot", "dashdot", "longdash", "solid", "dot"];
  var COLORS = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#4b5563"];

  function yaxisFor(unit, logY) {
    var y = { automargin: true, zeroline: false };
    if (unit === "ratio") { y.tickformat = ".2%"; }
    else if (unit === "seconds") { y.ticksuffix = " s"; }
    else if (unit === "per_second") { y.ticksuffix = "/s"; }
    else if (unit === "bytes") { y.tickformat = ".3s"; y.ticksuffix = "B"; }
    else if (unit === "percent") { y.ticksuffix = "%"; }
    if (logY) { y.type = "log"; }
    return y;
  }

  function traces(chart) {
    var out = [];
    var lineNo = 0;
    (chart.series || []).forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      if (s.style === "bar") {
        out.push({ type: "bar", name: s.name, x: s.x, y: s.y, marker: { color: color, pattern: { shape: i % 2 ? "/" : "" } } });
      } else if (s.style === "dash") {
        out.push({ type: "scatter", mode: "lines", name: s.name, x: s.x, y: s.y, line: { dash: "dash", width: 1.5, color: "#6b7280" }, hoverinfo: "name+y" });
      } else if (s.style === "marker") {
        out.push({ type: "scatter", mode: "markers+lines", name: s.name, x: s.x, y: s.y, marker: { symbol: SYMBOLS[i % SYMBOLS.length], size: 9, color: color } });
      } else {
        out.push({ type: "scatter", mode: s.x.length > 60 ? "lines" : "lines+markers", name: s.name, x: s.x, y: s.y, connectgaps: false,
          line: { dash: DASHES[lineNo % DASHES.length], width: 2, color: color }, marker: { symbol: SYMBOLS[lineNo % SYMBOLS.length], size: 5 } });
        lineNo += 1;
      }
    });
    return out;
  }

  function draw(el) {
    var src = el.getAttribute("data-src");
    return fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("signed out"); }
        return r.json().then(function (j) { if (!r.ok) { throw new Error((j.error && j.error.message) || r.statusText); } return j; });
      })
      .then(function (j) {
        var chart = src.indexOf("part=counts") >= 0 ? j.counts_chart : j.chart;
        var xType = chart.x_unit ? (chart.x_log ? "log" : "linear") : "date";
        var layout = {
          margin: { l: 60, r: 10, t: 10, b: 40 }, height: 300, hovermode: "x unified",
          legend: { orientation: "h", y: -0.2 }, barmode: chart.stacked ? "stack" : "group",
          xaxis: { type: xType, automargin: true, ticksuffix: chart.x_unit === "seconds" ? " s" : "" },
          yaxis: yaxisFor(chart.unit, chart.log_y), paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)"
        };
        var data = traces(chart);
        var points = data.reduce(function (n, t) { return n + (t.y || []).filter(function (v) { return v !== null; }).length; }, 0);
        el.setAttribute("data-points", String(points));
        if (points === 0) {
          el.innerHTML = "<p class='empty'>No data in this range.</p>";
          el.setAttribute("data-drawn", "empty");
          return;
        }
        if (el.querySelector(".loading, .empty")) { el.innerHTML = ""; }
        return Plotly.react(el, data, layout, { responsive: true, displaylogo: false }).then(function () {
          el.setAttribute("data-drawn", "yes");
        });
      })
      .catch(function (e) {
        if (e.message === "signed out") { return; }
        el.innerHTML = "<p class='alert' role='alert'>Chart unavailable: " + String(e.message).replace(/</g, "&lt;") + "</p>";
        el.setAttribute("data-drawn", "error");
      });
  }

  function drawAll() {
    var els = Array.prototype.slice.call(document.querySelectorAll(".plot[data-src]"));
    return Promise.all(els.map(draw)).then(function () { document.body.setAttribute("data-charts", "drawn"); });
  }

  function sortable(table) {
    var buttons = table.querySelectorAll("thead button");
    Array.prototype.forEach.call(buttons, function (btn, col) {
      btn.addEventListener("click", function () {
        var th = btn.parentNode;
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(table.querySelectorAll("thead th"), function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var num = btn.getAttribute("data-kind") === "num";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
          var c = num ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);
    if (typeof Plotly !== "undefined") { drawAll(); }
    var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
    if (every > 0) { setInterval(drawAll, every * 1000); }
  });
})();
