// Live "for 1m 23s" counters next to the current step. The server renders
// the start time; the browser counts, so the poller can answer 204.
function formatElapsed(seconds) {
  const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
  return m ? `${m}m ${s}s` : `${s}s`;
}
function tickElapsed() {
  for (const el of document.querySelectorAll(".elapsed[data-since]")) {
    const since = Date.parse(el.dataset.since);
    if (!isNaN(since)) el.textContent = formatElapsed(Math.max(0, (Date.now() - since) / 1000));
  }
}
setInterval(tickElapsed, 1000);
document.addEventListener("DOMContentLoaded", tickElapsed);
document.addEventListener("htmx:afterSettle", tickElapsed);
