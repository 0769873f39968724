// corehour's desktop page (voila_apps/desktop/server.py): noVNC 1.7.0 on the server's
// desktop-websockify/ socket, with quality and compression that reach TigerVNC, a clipboard
// that follows the browser's, and the data received so far.
import RFB from "./novnc/core/rfb.js";

const SETTINGS_KEY = "corehour.desktop.settings";
// noVNC's own defaults: JPEG at TigerVNC's quality 79 for photo-like parts, light zlib.
const DEFAULTS = { quality: 6, compression: 2 };
const RETRIES = 5;
const RETRY_SECONDS = 3;

const $ = (id) => document.getElementById(id);
const screen = $("screen");
const box = $("clipboard-text");
let rfb = null;
let retries = 0;
let receivedBytes = 0;
// The text last handed to the desktop or taken from it, so a focus that finds the browser's
// clipboard unchanged sends nothing.
let lastClipboard = "";

function status(text) {
  $("status").textContent = text;
  screen.dataset.state = text;
}

function settings() {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}") };
  } catch {
    return { ...DEFAULTS };
  }
}

function level(value, fallback) {
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n <= 9 ? n : fallback;
}

function showReceived() {
  const mb = receivedBytes / 1e6;
  $("received").textContent = `${mb < 10 ? mb.toFixed(1) : Math.round(mb)} MB received`;
  screen.dataset.receivedBytes = String(receivedBytes);
}

function connect() {
  const url = new URL("../desktop-websockify/", window.location);
  url.protocol = window.location.protocol === "https:" ? "wss" : "ws";
  // Our own socket, handed to noVNC, so that the page can count what arrives on it.
  const socket = new WebSocket(url);
  socket.addEventListener("message", (e) => {
    receivedBytes += e.data.byteLength || 0;
  });
  rfb = new RFB(screen, socket);
  rfb.resizeSession = true;
  rfb.background = "#2b2f36";
  const chosen = settings();
  rfb.qualityLevel = level(chosen.quality, DEFAULTS.quality);
  rfb.compressionLevel = level(chosen.compression, DEFAULTS.compression);
  rfb.addEventListener("connect", () => {
    retries = 0;
    status("Connected");
  });
  rfb.addEventListener("disconnect", (e) => {
    rfb = null;
    if (e.detail.clean) {
      status("Disconnected");
    } else if (retries < RETRIES) {
      retries += 1;
      status(`Connection lost; trying again in ${RETRY_SECONDS} s`);
      setTimeout(connect, RETRY_SECONDS * 1000);
    } else {
      status("The desktop does not answer; reload the page, or stop and start it from Home");
    }
  });
  rfb.addEventListener("clipboard", (e) => fromDesktop(e.detail.text));
}

// ---- quality and compression -------------------------------------------------------------

function setUpLevels() {
  const chosen = settings();
  for (const name of ["quality", "compression"]) {
    const select = $(name);
    select.value = String(level(chosen[name], DEFAULTS[name]));
    select.addEventListener("change", () => {
      const value = level(select.value, DEFAULTS[name]);
      localStorage.setItem(SETTINGS_KEY, JSON.stringify({ ...settings(), [name]: value }));
      // noVNC sends the new levels to the server at once; later updates use them.
      if (rfb) rfb[`${name}Level`] = value;
      screen.focus();
    });
  }
}

// ---- clipboard -----------------------------------------------------------------------------

function fromDesktop(text) {
  lastClipboard = text;
  box.value = text;
  // The browser's own clipboard too, where it lets this page write (a focused tab over HTTPS
  // or on localhost); otherwise the box is the way.
  if (navigator.clipboard && document.hasFocus()) {
    navigator.clipboard.writeText(text).then(
      () => (box.dataset.browser = "written"),
      () => (box.dataset.browser = "refused"),
    );
  }
}

function toDesktop(text) {
  if (!rfb || text === lastClipboard) return;
  lastClipboard = text;
  rfb.clipboardPasteFrom(text);
}

// Coming back to the desktop (after copying in another tab or program) hands the browser's
// clipboard to it, where the person has let this page read it.
async function browserToDesktop() {
  if (!navigator.clipboard || !navigator.clipboard.readText) return;
  try {
    const text = await navigator.clipboard.readText();
    box.dataset.browser = "read";
    if (text) {
      box.value = text;
      toDesktop(text);
    }
  } catch {
    box.dataset.browser = "refused";
  }
}

function setUpClipboard() {
  const button = $("clipboard-button");
  const panel = $("clipboard-container");
  button.addEventListener("click", () => {
    const open = panel.classList.toggle("hidden") === false;
    button.setAttribute("aria-expanded", String(open));
    if (open) box.focus();
  });
  // What is typed in the box is the newest clipboard: the browser's follows, so coming back
  // to the desktop does not replace it with an older one.
  const typed = () => {
    toDesktop(box.value);
    navigator.clipboard?.writeText(box.value).catch(() => {});
  };
  box.addEventListener("input", typed);
  box.addEventListener("change", typed);
  window.addEventListener("focus", browserToDesktop);
  screen.addEventListener("pointerdown", browserToDesktop);
}

setUpLevels();
setUpClipboard();
setInterval(showReceived, 1000);
connect();
