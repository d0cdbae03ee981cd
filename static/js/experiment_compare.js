// The comparison page: draws the overlaid curves handed over as JSON (json_script).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const source = document.getElementById("compare-figures");
    if (!source || typeof Plotly === "undefined") return;
    const figures = JSON.parse(source.textContent);
    for (const element of document.querySelectorAll("[data-figure]")) {
      const figure = figures[element.dataset.figure];
      if (!figure) continue;
      Plotly.react(element, figure.data, figure.layout, { displaylogo: false, responsive: true });
      element.dataset.points = String(figure.data.reduce((n, t) => n + t.x.length, 0));
    }
  });
})();
