// The maker's phone (/ticket/<code>): where the job is, how far along, where to collect it.
import { api, ApiError } from "./api.js";
import { bar, duration, esc, pct, timeLeft } from "./format.js";
import { apiText, init, onLangChange, picker, t } from "./i18n.js";
import { jobByTicket, start, state, subscribe } from "./store.js";

const $ = (id) => document.getElementById(id);
const code = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "").toUpperCase();
const secretKey = `fabzone.secret.${code}`;
// Scanned from the kiosk's QR code: `#k=<secret>` makes this phone the one that may cancel the job.
// Kept on the phone, then dropped from the address bar so a shared screenshot or link does not carry it.
const fromQr = location.hash.match(/^#k=([A-Za-z0-9_-]+)$/);
if (fromQr) {
  localStorage.setItem(secretKey, fromQr[1]);
  history.replaceState(null, "", location.pathname);
}
const CANCELLABLE = new Set(["pending_approval", "queued", "starting", "running", "paused"]);
let confirming = false;

function body(job) {
  const m = job.machine_id ? state.machines.get(job.machine_id) : null;
  const machineName = m ? m.name : job.machine_id || "";
  const parts = [`<div class="state-chip" data-state="${esc(job.state)}">${esc(t(`state.job.${job.state}`))}</div>`];
  switch (job.state) {
    case "pending_approval":
      parts.push(`<p>${esc(t("ticket.waiting_approval"))}</p>`);
      break;
    case "queued":
      parts.push(
        `<p class="big-line" id="position">${esc(job.queue_position === 1 ? t("ticket.next") : t("ticket.position", { n: job.queue_position ?? "…" }))}</p>`,
      );
      break;
    case "starting":
    case "running":
    case "paused": {
      const left = timeLeft(job, m);
      parts.push(
        `<p>${esc(t("ticket.machine", { name: machineName }))}</p>`,
        bar(job.progress),
        `<p class="big-line">${esc(t("ticket.progress", { p: pct(job.progress) }))}${left == null ? "" : ` · ${esc(t("wall.time_left", { time: duration(left) }))}`}</p>`,
      );
      break;
    }
    case "completed":
      parts.push(`<div class="done-box" id="done">${esc(t("ticket.done", { machine: machineName }))}</div>`);
      break;
    case "interrupted":
      parts.push(`<p class="notice">${esc(t("ticket.interrupted"))}</p>`);
      break;
    case "cancelled":
      parts.push(`<p>${esc(t("ticket.cancelled"))}</p>`);
      break;
    case "rejected": // by a technician: their words are the reason
      parts.push(`<p class="alert">${esc(apiText({ code: job.error_code || "job.declined" }))}</p>`);
      break;
    default: // failed
      parts.push(`<p class="alert">${esc(t("ticket.failed", { reason: apiText({ code: job.error_code, message: job.error }) || "—" }))}</p>`);
  }
  // What a person typed or the firmware said, as written: a technician reads it out if need be.
  if (job.error && ["rejected", "failed", "interrupted"].includes(job.state)) {
    parts.push(`<p class="job-reason" id="reason">${esc(t("ticket.reason", { text: job.error }))}</p>`);
  }
  return parts.join("");
}

function render() {
  $("code").textContent = code;
  const conn = $("conn");
  conn.classList.toggle("down", !state.connected);
  conn.textContent = t(state.connected ? "conn.live" : "conn.lost");
  const job = jobByTicket(code);
  if (!job) {
    if (state.loaded) $("view").innerHTML = `<p class="alert">${esc(t("ticket.not_found", { code }))}</p>`;
    $("cancel").classList.add("hidden");
    return;
  }
  document.title = `${code} · fabzone`;
  $("name").textContent = job.display_name;
  $("view").innerHTML = body(job);
  const mayCancel = localStorage.getItem(secretKey) && CANCELLABLE.has(job.state);
  $("cancel").classList.toggle("hidden", !mayCancel);
  $("cancel").textContent = t(confirming ? "ticket.cancel_confirm" : "ticket.cancel");
}

async function cancel() {
  // Two taps: a phone in a pocket should not cancel a print.
  if (!confirming) {
    confirming = true;
    render();
    setTimeout(() => {
      confirming = false;
      render();
    }, 5000);
    return;
  }
  confirming = false;
  $("cancel-error").classList.add("hidden");
  try {
    await api(`/api/jobs/${encodeURIComponent(code)}/cancel`, {
      method: "POST",
      headers: { "X-Maker-Secret": localStorage.getItem(secretKey) },
    });
  } catch (err) {
    $("cancel-error").textContent = err instanceof ApiError ? apiText(err.detail) : t("kiosk.error_network");
    $("cancel-error").classList.remove("hidden");
  }
  render();
}

await init();
picker($("langs"));
$("cancel").addEventListener("click", cancel);
subscribe(render);
onLangChange(render);
start({ jobs: 50, ticket: code });
