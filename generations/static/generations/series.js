// Series pages: the watch page's playlist (one <video>, advancing on `ended`), and keeping the
// keyboard focus on a scene's move buttons when the board is redrawn after a move.
(() => {
  function setUpPlaylist() {
    const video = document.getElementById("series-player");
    if (!video) return;
    const items = Array.from(document.querySelectorAll(".playlist-item[data-src]"));
    const nowPlaying = document.getElementById("now-playing");
    const prev = document.getElementById("playlist-prev");
    const next = document.getElementById("playlist-next");
    const keepGoing = document.getElementById("playlist-continue");
    let current = 0;

    function select(index, play) {
      if (index < 0 || index >= items.length) return;
      current = index;
      const item = items[index];
      video.src = item.dataset.src;
      if (item.dataset.poster) video.poster = item.dataset.poster; else video.removeAttribute("poster");
      video.dataset.index = String(index);
      items.forEach((other, i) => {
        if (i === index) other.setAttribute("aria-current", "true"); else other.removeAttribute("aria-current");
      });
      nowPlaying.textContent = item.dataset.label;
      prev.disabled = index === 0;
      next.disabled = index === items.length - 1;
      if (play) video.play().catch(() => {}); // a browser may refuse autoplay; the controls stay
    }

    video.addEventListener("ended", () => {
      if (keepGoing && !keepGoing.checked) return;
      if (current + 1 < items.length) select(current + 1, true);
      else nowPlaying.textContent = "The end. Choose a scene to watch it again.";
    });
    items.forEach((item, index) => item.addEventListener("click", () => select(index, true)));
    prev.addEventListener("click", () => select(current - 1, true));
    next.addEventListener("click", () => select(current + 1, true));
  }

  // After a move the board is redrawn; htmx puts the focus back on the button with the same id,
  // unless that button is now disabled (the scene reached the top or bottom): then use its twin.
  let moved = null;
  document.addEventListener("htmx:beforeRequest", (event) => {
    const form = event.target.closest && event.target.closest("form.move");
    const active = document.activeElement;
    moved = form && active && active.id ? active.id : null;
  });
  document.addEventListener("htmx:afterSettle", () => {
    if (!moved) return;
    const id = moved;
    moved = null;
    const button = document.getElementById(id);
    if (!button || document.activeElement === button) return;
    const twin = document.getElementById(id.endsWith("-up") ? id.replace(/-up$/, "-down") : id.replace(/-down$/, "-up"));
    const target = button.disabled ? twin : button;
    if (target && !target.disabled) target.focus();
  });

  // Escape while editing a scene in place puts it back as it was. The request is made here rather than by
  // triggering the <li>'s own `cancelEdit`: a fast Escape, before htmx has wired the form it just swapped in,
  // would otherwise be lost (a key filter in hx-trigger would need htmx's eval, which the CSP does not allow).
  document.addEventListener("keyup", (event) => {
    const editing = event.key === "Escape" && event.target.closest && event.target.closest(".scene-item.editing");
    if (editing) htmx.ajax("GET", editing.getAttribute("hx-get"), { target: editing, swap: "outerHTML" });
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUpPlaylist);
  else setUpPlaylist();
})();
