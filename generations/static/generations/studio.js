// Sora Studio's few behaviours htmx does not cover. Every page works without them.

// Plain forms marked data-once disable their submit button once sent (htmx forms use hx-disabled-elt).
// The server is idempotent anyway; this only spares a creator the second click.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-once]")) return;
  const buttons = form.querySelectorAll("button[type=submit]");
  // After this tick, so the clicked button's name/value still goes with the form.
  setTimeout(() => buttons.forEach((button) => { button.disabled = true; button.setAttribute("aria-busy", "true"); }));
});

// GET forms marked data-drop-empty leave unset filters out of the URL they push ("?status=failed",
// not "?q=&status=failed&series=&…").
document.addEventListener("htmx:configRequest", (event) => {
  const { elt, verb, formData } = event.detail;
  if (verb !== "get" || !elt.closest("form[data-drop-empty]") || !formData) return;
  const empty = [...formData.entries()].filter(([, value]) => value === "").map(([key]) => key);
  empty.forEach((key) => formData.delete(key));
});

// The live estimate on the new-video form re-prices on any change in its box except the backend and
// model pickers, which re-offer their choices first (and their answer carries the estimate). A filter
// in hx-trigger would need htmx's eval, which the Content-Security-Policy does not allow.
document.addEventListener("change", (event) => {
  const box = event.target.closest && event.target.closest("[data-estimate]");
  if (box && !event.target.closest("[data-offer-source]")) htmx.trigger(box, "estimate");
});

// On a phone the secondary filters fold away (unless one is on), so the videos come first.
document.addEventListener("DOMContentLoaded", () => {
  if (!window.matchMedia("(max-width: 820px)").matches) return;
  document.querySelectorAll("details[data-fold-narrow]:not([data-active])").forEach((details) => { details.open = false; });
});

// --- The tab title counts the jobs still running on this page: "(2) Gallery · Sora Studio" -------

function updateRunningCount() {
  const running = new Set([...document.querySelectorAll("[data-generation][data-active]")].map((el) => el.dataset.generation));
  const base = document.title.replace(/^\(\d+\) /, "");
  document.title = running.size ? `(${running.size}) ${base}` : base;
}
document.addEventListener("DOMContentLoaded", updateRunningCount);
document.addEventListener("htmx:afterSettle", updateRunningCount);

// --- A toast when a job ends: the poll that sees the end sends HX-Trigger {"jobFinished": {...}} ---

const TOAST_SECONDS = 8;

function showToast({ message, status, url }) {
  const region = document.getElementById("toasts");
  if (!region || !message) return;
  const toast = document.createElement("div");
  toast.className = `toast toast-${status || "info"}`;
  const text = document.createElement(url && location.pathname !== url ? "a" : "span");
  text.textContent = message;
  if (text.tagName === "A") text.href = url;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => toast.remove());
  toast.append(text, close);
  region.append(toast);
  // Stay while the pointer or focus is on it; go after a while otherwise.
  let timer;
  const schedule = () => { timer = setTimeout(() => toast.remove(), TOAST_SECONDS * 1000); };
  toast.addEventListener("mouseenter", () => clearTimeout(timer));
  toast.addEventListener("focusin", () => clearTimeout(timer));
  toast.addEventListener("mouseleave", schedule);
  schedule();
}
document.addEventListener("jobFinished", (event) => showToast(event.detail || {}));

// --- Gallery cards: hovering or focusing a finished card plays its muted preview ----------------

const calm = window.matchMedia("(prefers-reduced-motion: reduce)");

function preview(card, on) {
  const video = card && card.querySelector("video.preview");
  if (!video) return;
  if (on && !calm.matches) {
    video.hidden = false;
    video.play().catch(() => { video.hidden = true; });
  } else {
    video.pause();
    video.hidden = true;
  }
}
for (const [enter, leave] of [["mouseover", "mouseout"], ["focusin", "focusout"]]) {
  document.addEventListener(enter, (event) => {
    const card = event.target.closest && event.target.closest(".card");
    if (card && !card.contains(event.relatedTarget)) preview(card, true);
  });
  document.addEventListener(leave, (event) => {
    const card = event.target.closest && event.target.closest(".card");
    if (card && !card.contains(event.relatedTarget)) preview(card, false);
  });
}

// --- @ autocomplete in the prompt: a combobox over the creator's characters ---------------------
// The server renders the options (GET data-mentions-url?q=prefix); this only moves the highlight
// and inserts "@handle ". ArrowUp/Down move, Enter or Tab insert, Escape closes.

const MENTION_BEFORE_CARET = /(^|[^\w@])@([a-z0-9_]{0,30})$/i;

function setUpMentions(box) {
  const textarea = box.querySelector("textarea");
  const url = box.dataset.mentionsUrl;
  if (!textarea || !url || textarea.dataset.mentions) return;
  textarea.dataset.mentions = "on";
  textarea.setAttribute("role", "combobox");
  textarea.setAttribute("aria-autocomplete", "list");
  textarea.setAttribute("aria-controls", "mention-listbox");
  textarea.setAttribute("aria-expanded", "false");
  let active = -1;
  let mention = null; // {start, end} of "@prefix" being typed
  let asked = 0;

  const listbox = () => box.querySelector("[role=listbox]");
  const options = () => [...box.querySelectorAll("[role=option]")];

  function close() {
    const list = listbox();
    if (list) list.hidden = true;
    textarea.setAttribute("aria-expanded", "false");
    textarea.removeAttribute("aria-activedescendant");
    active = -1;
    mention = null;
  }

  function highlight(index) {
    const all = options();
    if (!all.length) return;
    active = (index + all.length) % all.length;
    all.forEach((option, i) => option.setAttribute("aria-selected", String(i === active)));
    textarea.setAttribute("aria-activedescendant", all[active].id);
    all[active].scrollIntoView({ block: "nearest" });
  }

  function insert(option) {
    if (!option || !mention) return;
    const value = textarea.value;
    // Replace the "@prefix" as it is now: the creator may have typed on while the options were asked for.
    const typed = textarea.selectionStart === textarea.selectionEnd && value.slice(0, textarea.selectionStart).match(MENTION_BEFORE_CARET);
    const start = typed ? textarea.selectionStart - typed[2].length - 1 : mention.start;
    const end = typed ? textarea.selectionStart : mention.end;
    const after = value.slice(end);
    const text = `@${option.dataset.handle}${after.startsWith(" ") ? "" : " "}`;
    textarea.value = value.slice(0, start) + text + after;
    const caret = start + text.length + (after.startsWith(" ") ? 1 : 0);
    textarea.setSelectionRange(caret, caret);
    close();
    // The live estimate listens for keyup/change on the prompt: tell it the prompt changed.
    textarea.dispatchEvent(new Event("change", { bubbles: true }));
  }

  async function suggest() {
    const caret = textarea.selectionStart;
    const match = textarea.selectionStart === textarea.selectionEnd && textarea.value.slice(0, caret).match(MENTION_BEFORE_CARET);
    if (!match) return close();
    const prefix = match[2];
    const ticket = ++asked;
    let html;
    try {
      const response = await fetch(`${url}?${new URLSearchParams({ q: prefix })}`, { headers: { "HX-Request": "true" } });
      if (!response.ok) return close();
      html = await response.text();
    } catch {
      return close();
    }
    if (ticket !== asked) return; // a later keystroke asked again
    const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[role=listbox]");
    if (!fresh) return close();
    listbox().replaceWith(fresh);
    mention = { start: caret - prefix.length - 1, end: caret };
    if (!options().length) return close();
    fresh.hidden = false;
    textarea.setAttribute("aria-expanded", "true");
    highlight(0);
  }

  textarea.addEventListener("input", suggest);
  textarea.addEventListener("click", suggest);
  textarea.addEventListener("blur", () => setTimeout(close, 150));
  textarea.addEventListener("keydown", (event) => {
    if (textarea.getAttribute("aria-expanded") !== "true") return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      highlight(active + (event.key === "ArrowDown" ? 1 : -1));
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && active >= 0) {
      event.preventDefault();
      insert(options()[active]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  // mousedown, not click: keep the focus in the prompt.
  box.addEventListener("mousedown", (event) => {
    const option = event.target.closest("[role=option]");
    if (!option) return;
    event.preventDefault();
    insert(option);
  });
}

// --- Start and end images: the upload field shows only for "Upload", and a preview shows the crop --------------
// The studio crops the image to the video's size (scaled to cover it, centred). A still or a video's last frame
// is previewed as the server crops it; an upload is read here and shown the same way (object-fit: cover in a
// box of the video's shape). The size is the form's size field, or the scene's series' (data-video-size).

function videoSize(pick) {
  const field = pick.closest("form") && pick.closest("form").querySelector("[name=size]");
  const size = pick.dataset.videoSize || (field && field.value) || "";
  const match = /^(\d+)x(\d+)$/.exec(size);
  return match ? { text: size, width: Number(match[1]), height: Number(match[2]) } : null;
}

function updateFramePick(pick) {
  const select = pick.querySelector("select");
  const file = pick.querySelector("input[type=file]");
  const upload = pick.querySelector("[data-frame-upload]");
  const figure = pick.querySelector("[data-crop-preview]");
  if (!select || !file || !figure) return;
  const image = figure.querySelector("img");
  const frame = figure.querySelector(".crop-frame");
  const caption = figure.querySelector("[data-crop-caption]");
  const size = videoSize(pick);
  upload.hidden = select.value !== "upload";
  const show = (src) => {
    if (size) frame.style.aspectRatio = `${size.width} / ${size.height}`;
    caption.textContent = size
      ? `Cropped to ${size.width}×${size.height}, the video's size: what is outside the frame is left out.`
      : "Cropped to the video's size.";
    image.src = src;
    figure.hidden = false;
  };
  if (select.value === "upload" && file.files && file.files[0]) {
    const reader = new FileReader();
    reader.addEventListener("load", () => show(reader.result));
    reader.readAsDataURL(file.files[0]);
  } else if (select.value === "kept" && pick.dataset.keptUrl) {
    show(pick.dataset.keptUrl);
  } else if (select.value && select.value !== "upload" && size) {
    const query = new URLSearchParams({ source: select.value, size: size.text });
    show(`${pick.dataset.previewUrl}?${query}`);
  } else {
    figure.hidden = true;
    image.removeAttribute("src");
  }
}

function setUpFramePick(pick) {
  if (pick.dataset.ready) return;
  pick.dataset.ready = "1";
  const image = pick.querySelector("[data-crop-preview] img");
  if (image) {
    image.addEventListener("error", () => {
      if (!image.getAttribute("src")) return;
      pick.querySelector("[data-crop-caption]").textContent = "This image cannot be used: choose another.";
    });
  }
  updateFramePick(pick);
}

document.addEventListener("change", (event) => {
  const pick = event.target.closest && event.target.closest("[data-frame-pick]");
  if (pick) updateFramePick(pick);
  // A new size re-crops every preview on the form.
  if (event.target.name === "size" && event.target.form) {
    event.target.form.querySelectorAll("[data-frame-pick]").forEach(updateFramePick);
  }
});
// The size field is re-rendered when the backend or the model changes.
document.addEventListener("htmx:afterSettle", () => document.querySelectorAll("[data-frame-pick]").forEach(updateFramePick));

function setUpAll(root) {
  root.querySelectorAll("[data-mentions-url]").forEach(setUpMentions);
  root.querySelectorAll("[data-frame-pick]").forEach(setUpFramePick);
}
document.addEventListener("DOMContentLoaded", () => setUpAll(document));
// The new-generation form is re-rendered in place when it has errors.
document.addEventListener("htmx:load", (event) => setUpAll(event.detail.elt));
