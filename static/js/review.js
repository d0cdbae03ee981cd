// Keyboard-first reviewing on the replay page: 1-7 pick a failure label, a / p / f / o a verdict
// (agent failure, verifier false pass, verifier false fail, correct), n completes the episode
// and moves on to the next one of the queue. On the review page, the counts chart.
(function () {
  "use strict";
  var form = document.getElementById("review-form");
  if (form) {
    var verdictKeys = { a: "agent_failure", p: "false_pass", f: "false_fail", o: "correct" };
    document.addEventListener("keydown", function (event) {
      var t = event.target;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) && t.type !== "radio")) return;
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      var radio = null;
      if (/^[1-9]$/.test(event.key)) {
        radio = form.querySelector('input[name="label"][data-key="' + event.key + '"]');
      } else if (verdictKeys[event.key]) {
        radio = form.querySelector('input[name="verdict"][value="' + verdictKeys[event.key] + '"]');
      } else if (event.key === "n") {
        var complete = document.getElementById("complete-next");
        if (complete) { event.preventDefault(); complete.click(); }
        return;
      }
      if (radio) { event.preventDefault(); radio.checked = true; radio.focus(); }
    });
  }

  var data = document.getElementById("review-chart");
  if (data && window.Plotly) {
    var chart = JSON.parse(data.textContent);
    var layout = function (title) {
      return { title: { text: title }, barmode: "stack", showlegend: true, margin: { t: 40, r: 10, b: 80, l: 40 }, height: 320 };
    };
    window.Plotly.newPlot("chart-verdict", chart.verdict, layout("By verdict"), { displaylogo: false, responsive: true });
    window.Plotly.newPlot("chart-label", chart.label, layout("By failure label"), { displaylogo: false, responsive: true });
  }
})();
