// Closer manager console: draws every <canvas data-chart='…'> with the vendored Chart.js, so pages emit
// data only. Load /static/vendor/chart.js/chart.umd.min.js first, then this script (both with `defer`).
// The attribute is a Chart.js configuration as JSON: {"type": "bar" | "line" | …, "data": {"labels": […],
// "datasets": [{"label": …, "data": […]}]}, "options": {…}} (https://www.chartjs.org/docs/latest/configuration/).
// In a Jinja2 template write it in single quotes: <canvas data-chart='{{ config|tojson }}'> (tojson
// escapes quotes and HTML). A canvas whose JSON or configuration is rejected gets data-chart-error
// with the reason, stays blank, and the error goes to the browser console.
(() => {
  "use strict";
  const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function draw(canvas) {
    try {
      const config = JSON.parse(canvas.dataset.chart);
      if (reduceMotion) config.options = { ...config.options, animation: false };
      new Chart(canvas, config);
    } catch (error) {
      canvas.dataset.chartError = String(error);
      console.error("chart not drawn:", canvas, error);
    }
  }

  function drawAll() {
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
