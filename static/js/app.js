// What the pages do in the browser. The server renders everything; this
// file only formats times in the viewer's time zone, counts elapsed time,
// keeps focus and announces status changes across htmx's live updates,
// copies to the clipboard and shows/hides the admin login. No inline
// scripts or handlers anywhere (the pages run under a Content-Security-Policy).
"use strict";

// -- Live "for 1m 23s" counters next to the current step ---------------------
// The server renders the start time; the browser counts, so the poller can
// answer 204.
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

// -- Times in the viewer's time zone ------------------------------------------
// <time datetime="ISO" data-format="..."> from the server (UTC text inside):
//   datetime  "Nov 30, 2026, 2:05 PM"
//   relative  "3 min ago" (a date once it is older than a week)
//   both      "Nov 30, 2026, 2:05 PM (3 min ago)"
//   time      "14:05:09", with the date in front when it is not today
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const dayYearFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
const dayKey = new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit" });

function relative(date) {
  const seconds = Math.round((Date.now() - date) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  if (days < 7) return days === 1 ? "yesterday" : `${days} days ago`;
  return shortDay(date);
}
function shortDay(date) {
  const sameYear = date.getFullYear() === new Date().getFullYear();
  return (sameYear ? dayFormat : dayYearFormat).format(date);
}
function formatTimes(root) {
  const today = dayKey.format(new Date());
  for (const el of (root || document).querySelectorAll("time[data-format]")) {
    const date = new Date(el.getAttribute("datetime"));
    if (isNaN(date)) continue;
    const style = el.dataset.format;
    let text;
    if (style === "relative") text = relative(date);
    else if (style === "both") text = `${dateTimeFormat.format(date)} (${relative(date)})`;
    else if (style === "time") {
      const clock = clockFormat.format(date);
      text = dayKey.format(date) === today ? clock : `${shortDay(date)}, ${clock}`;
    } else text = dateTimeFormat.format(date);
    if (el.textContent !== text) el.textContent = text;
    el.title = `${fullFormat.format(date)} (${zone})`;
  }
  for (const el of document.querySelectorAll(".time-zone")) el.textContent = zone;
}

// -- Status changes, read out by screen readers --------------------------------
// Elements with data-announce (a store's row, the store page's header) carry
// their status and the sentence to say when it changes.
const announcer = () => document.getElementById("announcer");
const statuses = new Map();
function noteStatuses(speak) {
  const said = [];
  for (const el of document.querySelectorAll("[data-announce][data-status]")) {
    const before = statuses.get(el.id);
    if (speak && before !== undefined && before !== el.dataset.status) said.push(el.dataset.announce);
    statuses.set(el.id, el.dataset.status);
  }
  if (said.length) announce(said.join(" "));
}
function announce(text) {
  const region = announcer();
  if (!region) return;
  // Emptied first, so that the same sentence twice is read twice.
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

// -- Keyboard focus across live updates -----------------------------------------
// A live update replaces the element that had focus with a fresh copy; focus
// would fall back to <body>. Focusable elements in live parts carry ids, so
// focus goes back to the new copy.
let focusedId = null;
function rememberFocus() {
  const el = document.activeElement;
  if (el && el !== document.body && el.id && focusedId === null) focusedId = el.id;
}
function restoreFocus() {
  if (focusedId === null) return;
  const id = focusedId;
  focusedId = null;
  const active = document.activeElement;
  if (active && active !== document.body && active.isConnected && active.id === id) return;
  const el = document.getElementById(id);
  if (el) el.focus({ preventScroll: true });
}

// -- Copy, show and hide --------------------------------------------------------
async function copy(button) {
  const source = button.dataset.copyFrom ? document.getElementById(button.dataset.copyFrom) : null;
  const text = source ? source.dataset.value || source.textContent : button.dataset.copy;
  try {
    await navigator.clipboard.writeText(text);
  } catch (error) {
    // navigator.clipboard exists on https and localhost only; a platform
    // served over plain http elsewhere gets the older way.
    if (!copyWithSelection(text)) {
      announce("Copying did not work here; select the text and copy it yourself.");
      return;
    }
  }
  const label = button.textContent;
  button.textContent = "Copied";
  announce(`${button.dataset.what || "Text"} copied.`);
  setTimeout(() => { button.textContent = label; }, 1500);
}
function copyWithSelection(text) {
  const focused = document.activeElement;
  const area = document.createElement("textarea");
  area.value = text;
  area.className = "visually-hidden";
  area.setAttribute("readonly", "");
  document.body.append(area);
  area.select();
  let done = false;
  try { done = document.execCommand("copy"); } catch (error) { done = false; }
  area.remove();
  if (focused) focused.focus();
  return done;
}
function toggleSecret(button) {
  const secret = document.getElementById(button.getAttribute("aria-controls"));
  if (!secret) return;
  const show = button.getAttribute("aria-pressed") !== "true";
  secret.textContent = show ? secret.dataset.value : "••••••••••••";
  button.setAttribute("aria-pressed", String(show));
  button.textContent = show ? "Hide" : "Show";
}
function hideLogin() {
  const panel = document.getElementById("credentials");
  if (panel) panel.replaceChildren();
  const opener = document.getElementById("show-login");
  if (opener) opener.focus();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.matches("[data-copy], [data-copy-from]")) copy(button);
  else if (button.matches("[data-toggle-secret]")) toggleSecret(button);
  else if (button.matches("[data-hide-login]")) hideLogin();
});

// -- The create form's name: how many characters are left -------------------------
function countName() {
  const input = document.getElementById("store-name");
  const counter = document.querySelector(".name-count");
  if (!input || !counter) return;
  const max = Number(input.dataset.maxLength);
  const length = input.value.trim().length;
  counter.textContent = length ? `${length}/${max}` : "";
  counter.classList.toggle("over", length > max);
}
document.addEventListener("input", (event) => {
  if (event.target.id === "store-name") countName();
});

// -- Wiring -----------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  tickElapsed();
  formatTimes();
  noteStatuses(false);
  countName();
});
setInterval(tickElapsed, 1000);
setInterval(() => formatTimes(), 30000);
document.addEventListener("htmx:beforeSwap", rememberFocus);
document.addEventListener("htmx:oobBeforeSwap", rememberFocus);
document.addEventListener("htmx:afterSettle", () => {
  tickElapsed();
  formatTimes();
  noteStatuses(true);
  restoreFocus();
});
