// The course site's one script. sphinx-book-theme 1.4 draws its sidebar buttons in the article
// header; pydata-sphinx-theme 0.20 adds another pair to its top bar (hidden by course.css) and
// both themes attach their handlers to the first button of each kind only (pydata-sphinx-theme
// issue 2451), so the visible buttons did nothing. A click on any later button is passed on to
// the first one: on a wide screen it folds the sidebar away, on a phone it opens it.
document.addEventListener("DOMContentLoaded", () => {
  for (const kind of [".primary-toggle", ".secondary-toggle"]) {
    const [first, ...others] = document.querySelectorAll(kind);
    for (const button of others) {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopImmediatePropagation();
        first.click();
      });
    }
  }
});
