// The replay page: move through the steps with ←/→ or j/k. Each step's panel is an htmx
// fragment (loaded when opened; the links' hx-sync="#step-detail:replace" aborts a step still
// loading when another is asked for, so a quick j/k never ends on a stale step); this only picks
// the link, marks it current, keeps ?step= in the address and points the comment form and the
// verifier timeline at the step shown.
(function () {
  "use strict";
  var replay = document.getElementById("replay");
  if (!replay) return;
  var links = Array.prototype.slice.call(replay.querySelectorAll("a.step-link"));

  function typing(event) {
    var t = event.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  function currentPosition() {
    for (var i = 0; i < links.length; i++) if (links[i].classList.contains("current")) return i;
    return 0;
  }

  function markTimeline() {
    var detail = document.querySelector("#step-detail article.step");
    var index = detail ? detail.getAttribute("data-index") : null;
    document.querySelectorAll("#timeline-table tbody tr").forEach(function (row) {
      row.classList.toggle("current", row.getAttribute("data-index") === index);
    });
  }

  function select(position) {
    if (position < 0 || position >= links.length) return;
    links.forEach(function (link) { link.classList.remove("current"); link.removeAttribute("aria-current"); });
    var link = links[position];
    link.classList.add("current");
    link.setAttribute("aria-current", "step");
    link.scrollIntoView({ block: "nearest" });
    replay.setAttribute("data-current", String(position));
    var url = new URL(window.location.href);
    url.searchParams.set("step", String(position));
    window.history.replaceState(null, "", url.toString());
    var anchor = document.getElementById("comment-step");
    if (anchor) anchor.value = link.querySelector(".index").textContent;
  }

  links.forEach(function (link) {
    link.addEventListener("click", function () { select(links.indexOf(link)); });
  });

  document.addEventListener("keydown", function (event) {
    if (typing(event) || event.altKey || event.ctrlKey || event.metaKey) return;
    var delta = { ArrowRight: 1, j: 1, ArrowLeft: -1, k: -1 }[event.key];
    if (!delta) return;
    var next = currentPosition() + delta;
    if (next < 0 || next >= links.length) return;
    event.preventDefault();
    links[next].click();
  });

  document.body.addEventListener("htmx:afterSwap", markTimeline);
  markTimeline();
})();
