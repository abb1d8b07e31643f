// Repeatable rows (materials, fees, steps, FAQs) on the entry form: add a blank row, remove a row.
// Without JavaScript the form still works: it always renders two blank rows.
(function () {
  "use strict";
  function nextIndex(container, prefix) {
    var max = -1;
    container.querySelectorAll("[name^='" + prefix + "-']").forEach(function (el) {
      var m = el.name.match(/^[mfsq]-(\d+)-/);
      if (m) { max = Math.max(max, parseInt(m[1], 10)); }
    });
    return max + 1;
  }
  function renumber(container) {
    container.querySelectorAll(".row-card").forEach(function (row, i) {
      var no = row.querySelector(".row-no");
      if (no) { no.textContent = String(i + 1); }
    });
  }
  document.querySelectorAll(".add-row").forEach(function (button) {
    button.addEventListener("click", function () {
      var container = document.getElementById(button.dataset.target);
      var rows = container.querySelectorAll(".row-card");
      if (!rows.length) { return; }
      var prefix = button.dataset.prefix;
      var index = nextIndex(container, prefix);
      var clone = rows[rows.length - 1].cloneNode(true);
      clone.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
      clone.querySelectorAll("[aria-invalid]").forEach(function (el) {
        el.removeAttribute("aria-invalid"); el.removeAttribute("aria-describedby");
      });
      clone.querySelectorAll("input, select, textarea, label").forEach(function (el) {
        ["name", "id", "for"].forEach(function (attr) {
          var v = el.getAttribute(attr);
          if (v) { el.setAttribute(attr, v.replace(/^([mfsq])-\d+-/, "$1-" + index + "-")); }
        });
        if ((el.tagName === "INPUT" && el.type !== "checkbox") || el.tagName === "TEXTAREA") {
          el.value = "";
        }
        if (el.tagName === "SELECT") { el.selectedIndex = 0; }
      });
      container.appendChild(clone);
      renumber(container);
      var first = clone.querySelector("input");
      if (first) { first.focus(); }
    });
  });
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLElement) || !target.classList.contains("remove-row")) { return; }
    var row = target.closest(".row-card");
    var container = row && row.parentElement;
    if (!row || !container) { return; }
    if (container.querySelectorAll(".row-card").length > 1) {
      row.remove();
    } else {
      row.querySelectorAll("input").forEach(function (el) {
        if (el.type === "checkbox") { return; }
        el.value = el.name.endsWith("-copies") ? "1" : "";
      });
    }
    renumber(container);
  });
}());
