// Keyboard access to scrollable tables: a .table-scroll wrapper that actually overflows (wide tables
// on a phone) becomes a focusable, labelled region so it can be scrolled with the arrow keys.
(function () {
  "use strict";
  function label(box) {
    var caption = box.querySelector("caption");
    var section = box.closest("section");
    var heading = section && section.querySelector("h1, h2, h3");
    var text = (caption || heading || {}).textContent || "";
    return (text.trim() || "表格") + "（可滚动）";
  }
  function update() {
    document.querySelectorAll(".table-scroll").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", label(box));
        box.dataset.a11yFixed = "auto";
      } else if (!scrolls && box.dataset.a11yFixed === "auto") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
        delete box.dataset.a11yFixed;
      }
    });
  }
  var timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(update, 150);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", update);
  } else {
    update();
  }
}());
