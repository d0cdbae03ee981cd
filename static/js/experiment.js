// The experiment page: draws the figures of curves.json with plotly, polls progress.json and
// curves.json while the experiment runs, and turns a click on a point or a heatmap cell into the
// episodes behind it. Text from the server is set with textContent only, never as markup.
(function () {
  "use strict";

  const FINISHED = ["completed", "failed", "cancelled"];
  const config = JSON.parse(document.getElementById("experiment-config").textContent);
  let latest = null; // the last curves.json
  let smoothing = 0;
  let order = "suite";
  let status = config.status;
  let timer = null;

  function ema(values, alpha) {
    if (!alpha) return values;
    const out = [];
    let last = null;
    for (const v of values) {
      if (v === null || v === undefined) { out.push(v); continue; }
      last = last === null ? v : alpha * last + (1 - alpha) * v;
      out.push(last);
    }
    return out;
  }

  function episodesUrl(params) {
    const query = new URLSearchParams({ experiment: String(config.experiment), ...params, sort: "-reward" });
    return config.episodesUrl + "?" + query.toString();
  }

  // A trace as drawn: smoothed when it asks for it, heatmap rows in the chosen order.
  function prepared(trace) {
    const copy = Object.assign({}, trace);
    if (trace.meta && trace.meta.smooth) copy.y = ema(trace.y, smoothing);
    if (trace.type === "heatmap" && order === "newly_failing") {
      const rows = trace.meta.tasks;
      const position = new Map(rows.map((pk, i) => [pk, i]));
      const permutation = trace.meta.newly_failing.filter((pk) => position.has(pk)).map((pk) => position.get(pk));
      copy.y = permutation.map((i) => trace.y[i]);
      copy.z = permutation.map((i) => trace.z[i]);
      copy.meta = Object.assign({}, trace.meta, { tasks: permutation.map((i) => rows[i]) });
    }
    return copy;
  }

  function clicked(element, event) {
    const point = event.points && event.points[0];
    if (!point) return;
    const trace = point.data;
    if (trace.type === "heatmap") {
      const row = Array.isArray(point.pointIndex) ? point.pointIndex[0] : point.pointNumber[0];
      window.location.assign(episodesUrl({ iteration: String(point.x), task: String(trace.meta.tasks[row]), split: "train" }));
      return;
    }
    if (!trace.meta || !trace.meta.split) return; // a band, not a curve
    window.location.assign(episodesUrl({ iteration: String(point.x), split: trace.meta.split }));
  }

  function draw() {
    if (!latest || typeof Plotly === "undefined") return;
    for (const element of document.querySelectorAll("[data-figure]")) {
      const figure = latest.figures[element.dataset.figure];
      if (!figure) continue;
      const options = { displaylogo: false, responsive: true };
      Plotly.react(element, figure.data.map(prepared), figure.layout, options);
      element.dataset.points = String(figure.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0));
      if (!element.dataset.bound) {
        element.on("plotly_click", (event) => clicked(element, event));
        element.dataset.bound = "1";
      }
    }
    drawTrends();
  }

  function percent(value) {
    return value === null || value === undefined ? "—" : (100 * value).toFixed(0) + "%";
  }

  function signed(value) {
    if (value === null || value === undefined) return "—";
    const text = (100 * value).toFixed(0) + " pts";
    return value > 0 ? "+" + text : text;
  }

  function drawTrends() {
    const body = document.querySelector("#trends tbody");
    if (!body) return;
    const byPk = new Map(latest.trends.map((t) => [t.pk, t]));
    const heatmap = latest.figures.heatmap.data[0];
    const pks = order === "newly_failing" ? heatmap.meta.newly_failing : latest.trends.map((t) => t.pk);
    const rows = [];
    for (const pk of pks) {
      const trend = byPk.get(pk);
      if (!trend) continue;
      const tr = document.createElement("tr");
      if (trend.drop !== null && trend.drop >= 0.25) tr.className = "regressed";
      else if (trend.change !== null && trend.change >= 0.25) tr.className = "improved";
      const name = document.createElement("td");
      const link = document.createElement("a");
      link.href = episodesUrl({ task: String(pk) });
      link.textContent = trend.task_id;
      name.appendChild(link);
      tr.appendChild(name);
      const cells = [percent(trend.first), percent(trend.best), percent(trend.latest), signed(trend.drop === null ? null : -trend.drop), signed(trend.change), percent(trend.heldout_latest)];
      for (const text of cells) {
        const td = document.createElement("td");
        td.className = "num";
        td.textContent = text;
        tr.appendChild(td);
      }
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  async function fetchJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(url + ": HTTP " + response.status);
    return response.json();
  }

  async function loadCurves() {
    latest = await fetchJson(config.curvesUrl);
    draw();
  }

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element) element.textContent = text;
  }

  function showProgress(progress) {
    setText("exp-iteration", String(progress.iteration));
    setText("exp-episodes", String(progress.episodes_done));
    const bar = document.getElementById("exp-progress");
    if (bar) { bar.max = Math.max(progress.episodes_total, 1); bar.value = progress.episodes_done; }
    let eta = "";
    if (progress.eta_seconds !== null && !FINISHED.includes(progress.status)) {
      const minutes = progress.eta_seconds / 60;
      eta = minutes >= 2 ? "ETA about " + Math.round(minutes) + " min" : "ETA about " + Math.round(progress.eta_seconds) + " s";
    }
    setText("exp-eta", eta);
    if (progress.status !== status) {
      status = progress.status;
      // The controls and the error depend on the status: take the panel as the server renders it.
      refresh("#experiment-panel");
    }
    const records = progress.iteration + "/" + progress.checkpoints + "/" + progress.status;
    if (records !== shownRecords) {
      // A new iteration or checkpoint: the latest groups and the checkpoint list, as rendered.
      if (shownRecords !== null) refresh("#experiment-records");
      shownRecords = records;
    }
  }

  function refresh(selector) {
    if (window.htmx) {
      window.htmx.ajax("GET", window.location.pathname, { target: selector, select: selector, swap: "outerHTML" });
    }
  }

  let shownRecords = null; // iteration/checkpoints/status the records section was drawn for

  async function poll() {
    try {
      showProgress(await fetchJson(config.progressUrl));
      await loadCurves();
    } catch (error) {
      console.warn("experiment page: polling failed", error);
    }
    if (FINISHED.includes(status)) {
      timer = null; // finished: the curves drawn last are final
      return;
    }
    timer = window.setTimeout(poll, config.pollMs);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const slider = document.getElementById("smoothing");
    if (slider) {
      slider.addEventListener("input", () => {
        smoothing = Number(slider.value);
        setText("smoothing-value", slider.value);
        draw();
      });
    }
    const select = document.getElementById("heatmap-order");
    if (select) {
      select.addEventListener("change", () => { order = select.value; draw(); });
    }
    document.addEventListener("submit", (event) => {
      const question = event.target.dataset && event.target.dataset.confirm;
      if (question && !window.confirm(question)) event.preventDefault();
    });
    if (FINISHED.includes(status)) {
      loadCurves().catch((error) => console.warn("experiment page:", error));
    } else {
      poll();
    }
  });
})();
