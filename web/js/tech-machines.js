// The dashboard's machine cards and alert list: what a technician can do to each machine and job.
import { bar, esc, lid, pct, temps } from "./format.js";
import { t } from "./i18n.js";
import { state } from "./store.js";

const ON_MACHINE = new Set(["starting", "running", "paused"]);
// Actions a slip of the hand must not trigger: a second click within 4 s confirms.
const TWO_STEP = new Set(["cancel", "fail", "reject"]);
let confirming = null; // "action:target" awaiting its second click
let confirmTimer = null;

/** Replace `el`'s HTML only when it changed, so a button under the mouse survives status ticks. */
export function setHtml(el, html) {
  if (el._html === html) return;
  el._html = html;
  el.innerHTML = html;
}

const btn = (action, attrs, cls = "") => {
  const key = `${action}:${attrs.job || attrs.machine}`;
  const label = confirming === key ? t("tech.confirm", { action: t(`tech.${action}`) }) : t(`tech.${action}`);
  const data = Object.entries(attrs).map(([k, v]) => `data-${k}="${esc(v)}"`).join(" ");
  return `<button type="button" class="btn ${cls}" data-action="${action}" ${data}>${esc(label)}</button>`;
};

export function currentJob(m) {
  const id = m.current_job_id || m.live?.job_id;
  return id ? state.jobs.get(id) : null;
}

/** Why a paused machine is paused: the lid in the page's language, else the driver's own words (a
 * feed hold at the machine, a filament sensor…); a pause from this page has none. */
function pauseReason(m) {
  const l = lid(m);
  if (l === "open") return esc(t("laser.door_open"));
  if (l === "closed") return esc(t("laser.door_closed"));
  const words = m.live?.message || m.state_reason;
  return words ? `<code>${esc(words)}</code>` : "";
}

function info(m) {
  const job = currentJob(m);
  const live = m.live || {};
  const out = [
    `<h3><span>${esc(m.name)}</span><span class="state-chip" data-state="${esc(m.state)}">${esc(t(`state.machine.${m.state}`))}</span></h3>`,
    `<div class="meta">${esc(t(`kind.${m.kind || "printer"}`))} · ${esc(m.profile)} · ${esc(m.id)}
      · <button type="button" class="link" data-action="detail" data-machine="${esc(m.id)}">${esc(t("tech.detail"))}</button></div>`,
  ];
  if (job && ON_MACHINE.has(job.state)) {
    out.push(
      `<div class="job"><b>${esc(job.display_name)}</b> · ${esc(job.maker_name)} · <code>${esc(job.ticket)}</code></div>`,
      bar(job.progress),
      `<div class="meta">${pct(job.progress)} · ${esc(t("tech.lines", { acked: live.lines_acked ?? job.lines_acked, total: live.lines_total || job.lines_total }))}</div>`,
    );
  }
  if (live.online && m.kind !== "laser") out.push(`<div class="meta">${esc(temps(live.temperatures))}</div>`);
  if (m.state === "error" || (m.state === "offline" && m.state_reason)) {
    out.push(`<div class="alert reason-box">${esc(t("tech.error_label"))}: <code>${esc(m.state_reason || live.message || "—")}</code></div>`);
  } else if (m.state === "paused") {
    const why = pauseReason(m);
    if (why) out.push(`<div class="notice reason-box" data-reason="paused">${esc(t("tech.pause_reason"))}: ${why}</div>`);
  }
  if (m.kind === "laser" && live.arming) out.push(`<div class="notice reason-box" data-reason="arming">${esc(t("laser.arming"))}</div>`);
  return out.join("");
}

function controls(m) {
  const job = currentJob(m);
  const mid = { machine: m.id };
  const out = [];
  if (job && ON_MACHINE.has(job.state)) {
    if (job.state === "running") out.push(btn("pause", { job: job.id }, "warn"));
    if (job.state === "paused") {
      // GRBL ignores a cycle start while the door is open, and the driver refuses it: no button, the
      // reason in its place.
      if (lid(m) === "open") out.push(`<span class="blocked" data-blocked="resume">${esc(t("tech.resume_after_lid"))}</span>`);
      else out.push(btn("resume", { job: job.id }, "good"));
    }
    out.push(btn("cancel", { job: job.id }));
  }
  if (m.kind === "laser" && m.state === "starting") out.push(btn("arm", mid, "warn"));
  if (m.state === "awaiting_clear") {
    out.push(btn("clear_good", mid, "good"), btn("clear_bad", mid, "warn"), btn("clear", mid));
  }
  if (m.state === "error") {
    if (m.kind === "laser") out.push(btn("unlock", mid, "warn"));
    out.push(btn("reconnect", mid), btn("reset", mid, "warn"));
  }
  if (m.state === "offline") out.push(btn("reconnect", mid));
  if (m.state === "maintenance") out.push(btn("maint_off", mid, "good"));
  else if (["idle", "awaiting_clear", "error", "offline"].includes(m.state)) out.push(btn("maint_on", mid));
  // Emergency stop whenever the hub can reach the machine: one click, nothing to confirm.
  if (m.live?.online) out.push(btn("estop", mid, "estop"));
  return out.join("");
}

export function renderMachines(root) {
  const machines = [...state.machines.values()].sort((a, b) => a.name.localeCompare(b.name));
  const seen = new Set();
  for (const m of machines) {
    seen.add(m.id);
    let card = root.querySelector(`article[data-machine="${CSS.escape(m.id)}"]`);
    if (!card) {
      card = document.createElement("article");
      card.className = "card machine";
      card.dataset.machine = m.id;
      card.innerHTML = `<div class="info"></div><div class="controls"></div>`;
      root.append(card);
    }
    card.dataset.state = m.state;
    setHtml(card.querySelector(".info"), info(m));
    setHtml(card.querySelector(".controls"), controls(m));
  }
  for (const card of root.querySelectorAll("article[data-machine]")) if (!seen.has(card.dataset.machine)) card.remove();
}

export function renderAlerts(root) {
  const items = [];
  for (const m of state.machines.values()) {
    if (m.state === "error") {
      items.push(`<div class="alert item" data-alert="error" data-machine="${esc(m.id)}"><span class="what"><b>${esc(m.name)}</b>:
        <code>${esc(m.state_reason || "—")}</code></span>${btn("reconnect", { machine: m.id })}${btn("reset", { machine: m.id }, "warn")}</div>`);
    }
  }
  const jobs = [...state.jobs.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
  for (const j of jobs.filter((x) => x.state === "interrupted")) {
    items.push(`<div class="notice item" data-alert="interrupted" data-job="${esc(j.id)}"><span class="what">${esc(t("tech.interrupted", { ticket: j.ticket, name: j.display_name, machine: j.machine_id || "—" }))}
      · ${pct(j.progress)}</span>${btn("requeue", { job: j.id }, "good")}${btn("fail", { job: j.id })}</div>`);
  }
  for (const j of jobs.filter((x) => x.state === "pending_approval")) {
    items.push(`<div class="notice item" data-alert="approval" data-job="${esc(j.id)}"><span class="what">${esc(t("tech.pending", { ticket: j.ticket, name: j.display_name, maker: j.maker_name || "—" }))}</span>
      ${btn("approve", { job: j.id }, "good")}<input data-reason-for="${esc(j.id)}" placeholder="${esc(t("tech.reject_reason"))}">${btn("reject", { job: j.id }, "warn")}</div>`);
  }
  // Keep a half-typed rejection reason across redraws.
  const typed = new Map([...root.querySelectorAll("input[data-reason-for]")].map((i) => [i.dataset.reasonFor, i.value]));
  setHtml(root, items.join(""));
  for (const [id, v] of typed) {
    const input = root.querySelector(`input[data-reason-for="${CSS.escape(id)}"]`);
    if (input && !input.value) input.value = v;
  }
}

/** The request behind a button, or null when it needs its confirming second click first. */
export function requestFor(b) {
  const { action, machine, job } = b.dataset;
  if (TWO_STEP.has(action)) {
    const key = `${action}:${job || machine}`;
    if (confirming !== key) {
      confirming = key;
      clearTimeout(confirmTimer);
      confirmTimer = setTimeout(() => (confirming = null), 4000);
      return null;
    }
    confirming = null;
  }
  const M = (p) => `/api/machines/${encodeURIComponent(machine)}/${p}`;
  const J = (p) => `/api/jobs/${encodeURIComponent(job)}/${p}`;
  switch (action) {
    case "pause": case "resume": case "cancel": case "requeue": case "fail": case "approve":
      return { path: J(action) };
    case "reject": {
      const input = document.querySelector(`input[data-reason-for="${CSS.escape(job)}"]`);
      return { path: J("reject"), json: { reason: input?.value.trim() || t("tech.reject_default") } };
    }
    case "estop": case "reconnect": case "reset": case "arm": case "unlock":
      return { path: M(action) };
    case "clear": return { path: M("clear"), json: {} };
    case "clear_good": return { path: M("clear"), json: { result: "good" } };
    case "clear_bad": return { path: M("clear"), json: { result: "bad" } };
    case "maint_on": return { path: M("maintenance"), json: { on: true } };
    case "maint_off": return { path: M("maintenance"), json: { on: false } };
    default: return null;
  }
}
