// The launch form of a clone: the table of settings that differ from the parent run, kept up to
// date as the form changes (values are set with textContent only).
(function () {
  "use strict";

  function same(before, after) {
    if (before === null || before === undefined) before = "";
    const a = String(before).trim();
    const b = String(after).trim();
    if (a === b) return true;
    const x = Number(a);
    const y = Number(b);
    return a !== "" && b !== "" && !Number.isNaN(x) && !Number.isNaN(y) && x === y;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const source = document.getElementById("parent-config");
    const form = document.querySelector("form.launch-form");
    if (!source || !form) return;
    const parent = JSON.parse(source.textContent);
    const body = document.querySelector("#diff tbody");
    const empty = document.getElementById("diff-empty");

    function refresh() {
      const rows = [];
      for (const [key, before] of Object.entries(parent)) {
        const input = form.elements.namedItem(key);
        if (!input) continue;
        const field = input.closest(".field");
        const changed = !same(before, input.value);
        if (field) field.classList.toggle("changed", changed);
        if (!changed) continue;
        const tr = document.createElement("tr");
        for (const [text, cls] of [[key, ""], [String(before), "before"], [input.value, "after"]]) {
          const td = document.createElement("td");
          td.textContent = text;
          if (cls) td.className = cls;
          tr.appendChild(td);
        }
        rows.push(tr);
      }
      body.replaceChildren(...rows);
      empty.hidden = rows.length > 0;
    }

    form.addEventListener("input", refresh);
    form.addEventListener("change", refresh);
    refresh();
  });
})();
