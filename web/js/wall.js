// The wall (/): every machine as a big card, the queue, and what finished in the last hour.
import { bar, clock, duration, esc, lid, pct, temps, timeLeft } from "./format.js";
import { init, onLangChange, picker, t } from "./i18n.js";
import { start, state, subscribe } from "./store.js";

const HOUR_MS = 3600 * 1000;
const $ = (id) => document.getElementById(id);

function jobOf(m) {
  const id = m.current_job_id || m.live?.job_id;
  return id ? state.jobs.get(id) : null;
}

/** Why the machine is stopped, for the card: the firmware's words on error, the lid or the driver's
 * message when paused (a door-open pause is the common one on a laser). */
function reasonOf(m) {
  if (m.state === "error") return m.state_reason || null;
  if (m.state !== "paused") return null;
  const l = lid(m);
  if (l === "open") return t("laser.door_open");
  if (l === "closed") return t("laser.door_closed");
  return m.live?.message || m.state_reason || null;
}

/** The laser's line: only what is known. The job running says the laser is cutting, not where the lid
 * is; a job waiting for a technician to arm the laser says so. */
function laserLine(m) {
  if (m.live?.arming) return ["arming", t("laser.arming")];
  if (m.state === "running") return ["cutting", t("laser.firing")];
  return ["off", t("laser.safe")];
}

function machineCard(m) {
  const job = jobOf(m);
  const live = m.live || {};
  const parts = [
    `<h2>${esc(m.name)}</h2>`,
    `<div class="kind">${esc(t(`kind.${m.kind || "printer"}`))}</div>`,
    `<div class="state-chip" data-state="${esc(m.state)}">${esc(t(`state.machine.${m.state}`))}</div>`,
  ];
  if (job && ["starting", "running", "paused"].includes(job.state)) {
    const left = timeLeft(job, m);
    parts.push(
      `<div class="job">${esc(job.display_name)}</div>`,
      job.maker_name ? `<div class="maker">${esc(t("wall.by", { maker: job.maker_name }))}</div>` : "",
      bar(job.progress),
      `<div class="nums"><span>${pct(job.progress)}</span><span>${left == null ? "" : esc(t("wall.time_left", { time: duration(left) }))}</span></div>`,
    );
  } else if (m.state === "idle") {
    parts.push(`<div class="job muted">${esc(t("wall.free"))}</div>`);
  }
  if (m.kind === "laser") {
    const [what, text] = laserLine(m);
    parts.push(`<div class="temps laser" data-laser="${what}">${esc(text)}</div>`);
  } else if (live.online && live.temperatures && Object.keys(live.temperatures).length) {
    parts.push(`<div class="temps">${esc(temps(live.temperatures))}</div>`);
  }
  const reason = reasonOf(m);
  if (reason) parts.push(`<div class="reason" data-for="${esc(m.state)}">${esc(reason)}</div>`);
  return `<article class="card machine" data-machine="${esc(m.id)}" data-state="${esc(m.state)}">${parts.join("")}</article>`;
}

function render() {
  const machines = [...state.machines.values()].sort((a, b) => a.name.localeCompare(b.name));
  $("machines").innerHTML = machines.map(machineCard).join("");

  const queued = [...state.jobs.values()]
    .filter((j) => j.state === "queued" || j.state === "pending_approval")
    .sort((a, b) => (a.queue_position ?? 1e9) - (b.queue_position ?? 1e9) || a.created_at.localeCompare(b.created_at));
  $("queue").innerHTML = queued.length
    ? queued
        .slice(0, 12)
        .map(
          (j, i) => `<li data-ticket="${esc(j.ticket)}"><span class="pos">${j.queue_position ?? i + 1}</span>
            <span class="ticket">${esc(j.ticket)}</span><span class="name">${esc(j.display_name)}${j.maker_name ? ` · ${esc(j.maker_name)}` : ""}</span>
            ${j.state === "pending_approval" ? `<span class="state-chip" data-state="pending_approval">${esc(t("state.job.pending_approval"))}</span>` : ""}</li>`,
        )
        .join("") + (queued.length > 12 ? `<li class="empty">${esc(t("wall.more", { count: queued.length - 12 }))}</li>` : "")
    : `<li class="empty">${esc(t("wall.queue_empty"))}</li>`;

  const since = Date.now() - HOUR_MS;
  const done = [...state.jobs.values()]
    .filter((j) => j.state === "completed" && j.finished_at && Date.parse(j.finished_at) >= since)
    .sort((a, b) => b.finished_at.localeCompare(a.finished_at));
  $("done").innerHTML = done.length
    ? done
        .slice(0, 10)
        .map((j) => {
          const m = state.machines.get(j.machine_id);
          return `<li data-ticket="${esc(j.ticket)}"><span class="ticket">${esc(j.ticket)}</span>
            <div class="name">${esc(j.display_name)}<div class="where">${esc(m ? m.name : "")} · ${esc(clock(j.finished_at))}</div></div></li>`;
        })
        .join("")
    : `<li class="empty">${esc(t("wall.done_empty"))}</li>`;

  const conn = $("conn");
  conn.classList.toggle("down", !state.connected);
  conn.textContent = t(state.connected ? "conn.live" : "conn.lost");
}

function tick() {
  $("clock").textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

await init();
picker($("langs"));
subscribe(render);
onLangChange(render);
start({ jobs: 300 });
tick();
// The clock, and jobs leaving the "last hour" list, need a redraw even when nothing else happens.
setInterval(() => {
  tick();
  render();
}, 30000);
