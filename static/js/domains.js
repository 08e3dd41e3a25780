// Copy buttons of the Domains card (templates/stores/_domains_list.html):
// one listener for the whole page, so cards swapped in by htmx work too.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy[data-copy]");
  if (!button) return;
  try {
    await navigator.clipboard.writeText(button.dataset.copy);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Select and copy";  // no clipboard (plain http, old browser)
  }
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
});
