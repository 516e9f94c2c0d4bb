// The statistics charts: one uPlot line chart per measure, the data from the
// #stats-data JSON block the server rendered (no inline script; see pages.py).
(function () {
  "use strict";
  var node = document.getElementById("stats-data");
  if (!node || typeof uPlot === "undefined") {
    return;
  }
  var data = JSON.parse(node.textContent);
  var colors = { cell: "#d9480f", wifi: "#0088ff", blue: "#7048e8" };
  var height = 280;

  function short(value) {
    if (value == null) {
      return "";
    }
    var units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(value) >= units[i][0]) {
        return +(value / units[i][0]).toFixed(1) + units[i][1];
      }
    }
    return String(value);
  }

  function full(u, value) {
    return value == null ? "–" : value.toLocaleString();
  }

  function chart(id, measure) {
    var el = document.getElementById(id);
    if (!el) {
      return null;
    }
    var series = [{}];
    var columns = [data.days];
    data.types.forEach(function (type) {
      series.push({ label: type.label, stroke: colors[type.key], width: 2, value: full, spanGaps: true });
      columns.push(data[measure][type.key]);
    });
    var plot = new uPlot({
      width: el.clientWidth,
      height: height,
      series: series,
      scales: { x: { time: true } },
      axes: [{}, { size: 56, values: function (u, ticks) { return ticks.map(short); } }],
    }, columns, el);
    el.dataset.ready = "true";
    return plot;
  }

  var plots = [chart("chart-stations", "stations"), chart("chart-observations", "observations")];
  window.addEventListener("resize", function () {
    plots.forEach(function (plot) {
      if (plot) {
        plot.setSize({ width: plot.root.parentNode.clientWidth, height: height });
      }
    });
  });
})();
