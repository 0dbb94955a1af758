// Plain forms marked data-once disable their submit button once sent (htmx forms use hx-disabled-elt).
// The server is idempotent anyway; this only spares a creator the second click.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-once]")) return;
  const buttons = form.querySelectorAll("button[type=submit]");
  // After this tick, so the clicked button's name/value still goes with the form.
  setTimeout(() => buttons.forEach((button) => { button.disabled = true; button.setAttribute("aria-busy", "true"); }));
});
