// The course's small addition to the theme's scripts (Jupyter Book includes every .js file in _static/).
//
// A formula wider than its line scrolls sideways (_static/course.css). A box that scrolls must be
// reachable with the keyboard (axe: scrollable-region-focusable), so such a formula is a tab stop,
// as the theme does for code, outputs and tables; formulas that fit are not. Checked again when
// MathJax adds formulas and when the window is resized.
(() => {
  const SCROLLABLE_MATH = "span.math, div.math mjx-container";
  const update = () => {
    document.querySelectorAll(SCROLLABLE_MATH).forEach((box) => {
      if (box.scrollWidth > box.clientWidth) {
        if (!box.hasAttribute("tabindex")) {
          box.tabIndex = 0;
          box.dataset.courseTabStop = "";
        }
      } else if ("courseTabStop" in box.dataset) {
        box.removeAttribute("tabindex");
        delete box.dataset.courseTabStop;
      }
    });
  };
  let timer = null;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(update, 200);
  };
  const start = () => {
    update();
    window.addEventListener("resize", later);
    const main = document.getElementById("main-content") || document.body;
    new MutationObserver(later).observe(main, { subtree: true, childList: true });
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
