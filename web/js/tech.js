// The technicians' dashboard (/tech): login with a token, then every machine with its controls,
// alerts, a machine's temperature chart and the job history.
import { api, ApiError, token } from "./api.js";
import { temperatureChart } from "./chart.js";
import { apiText, init, onLangChange, picker, t } from "./i18n.js";
import { drawFilters, drawHistory, drawMachineFilter, loadHistory } from "./tech-history.js";
import { renderAlerts, renderMachines, requestFor } from "./tech-machines.js";
import { start, state, subscribe } from "./store.js";

const $ = (id) => document.getElementById(id);
let started = false;
let detailId = null;
let detailTimer = null;

function render() {
  if (!started) return;
  const conn = $("conn");
  conn.classList.toggle("down", !state.connected);
  conn.textContent = t(state.connected ? "conn.live" : "conn.lost");
  renderAlerts($("alerts"));
  renderMachines($("machines"));
  drawMachineFilter();
}

function toast(text) {
  $("toast").textContent = text;
  $("toast").classList.toggle("hidden", !text);
}

function showLogin(message = "") {
  started && location.reload(); // a revoked token mid-shift: start clean
  $("login").classList.remove("hidden");
  $("dash").classList.add("hidden");
  $("logout").classList.add("hidden");
  $("login-error").textContent = message;
  $("login-error").classList.toggle("hidden", !message);
}

async function act(button) {
  const req = requestFor(button);
  if (!req) {
    // First click of a two-step action: show "confirm", and fall back after the timeout.
    render();
    setTimeout(render, 4100);
    return;
  }
  try {
    await api(req.path, { method: "POST", json: req.json, auth: true });
    toast("");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      token.clear();
      showLogin(apiText(err.detail));
      return;
    }
    toast(t("tech.failed_action", { message: err instanceof ApiError ? apiText(err.detail) : t("kiosk.error_network") }));
  }
  render();
}

async function openDetail(id) {
  detailId = id;
  clearInterval(detailTimer);
  $("detail").classList.remove("hidden");
  await drawDetail();
  // The chart is a window on the last ten minutes: refresh it while it is open.
  detailTimer = setInterval(drawDetail, 5000);
}

async function drawDetail() {
  if (!detailId) return;
  const m = state.machines.get(detailId);
  $("detail-title").textContent = m ? m.name : detailId;
  try {
    const samples = await api(`/api/machines/${encodeURIComponent(detailId)}/temperatures?seconds=600`);
    $("chart").innerHTML = temperatureChart(samples);
  } catch (err) {
    $("chart").textContent = err instanceof ApiError ? apiText(err.detail) : t("kiosk.error_network");
  }
  $("detail-info").textContent = m ? `${m.profile} · ${m.live?.firmware || ""}` : "";
}

function closeDetail() {
  detailId = null;
  clearInterval(detailTimer);
  $("detail").classList.add("hidden");
}

async function login(value) {
  try {
    const me = await api("/api/auth/me", { headers: { Authorization: `Bearer ${value}` } });
    token.set(value);
    return me;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) token.clear();
    showLogin(err instanceof ApiError && err.status === 401 ? t("tech.login_failed") : t("kiosk.error_network"));
    return null;
  }
}

function startDashboard(me) {
  $("login").classList.add("hidden");
  $("dash").classList.remove("hidden");
  $("logout").classList.remove("hidden");
  $("conn").classList.remove("hidden");
  $("who").textContent = t("tech.who", { name: me.name });
  $("who").dataset.name = me.name;
  started = true;
  drawFilters();
  subscribe(() => render());
  start({ jobs: 300 });
  loadHistory().catch(() => {});
}

await init();
picker($("langs"));
onLangChange(() => {
  if ($("who").dataset.name) $("who").textContent = t("tech.who", { name: $("who").dataset.name });
  drawFilters();
  drawHistory();
  render();
  drawDetail();
});
document.addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-action]");
  if (!b) return;
  if (b.dataset.action === "detail") openDetail(b.dataset.machine);
  else act(b);
});
$("detail-close").addEventListener("click", closeDetail);
$("filters").addEventListener("submit", (ev) => {
  ev.preventDefault();
  loadHistory().catch((err) => toast(apiText(err.detail)));
});
$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const me = await login($("token").value.trim());
  if (me) startDashboard(me);
});
$("logout").addEventListener("click", () => {
  token.clear();
  location.reload();
});

const saved = token.get();
const me = saved ? await login(saved) : null;
if (me) startDashboard(me);
else showLogin();
