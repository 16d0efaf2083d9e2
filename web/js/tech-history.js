// The job history table with its filters (GET /api/jobs?state=a,b&machine=ID&since=ISO&limit=N).
import { api } from "./api.js";
import { dateTime, esc, pct } from "./format.js";
import { t } from "./i18n.js";
import { state } from "./store.js";

const STATES = ["pending_approval", "queued", "starting", "running", "paused", "completed", "failed", "cancelled", "rejected", "interrupted"];
const $ = (id) => document.getElementById(id);
let rows = [];

export function drawFilters() {
  const checked = new Set([...document.querySelectorAll("#filter-states input:checked")].map((i) => i.value));
  const legend = `<legend>${esc(t("tech.filter_state"))}</legend>`;
  $("filter-states").innerHTML =
    legend +
    STATES.map(
      (s) => `<label><input type="checkbox" value="${s}" ${checked.has(s) ? "checked" : ""}> ${esc(t(`state.job.${s}`))}</label>`,
    ).join("");
  drawMachineFilter();
}

export function drawMachineFilter() {
  const sel = $("filter-machine");
  const chosen = sel.value;
  const opts = [`<option value="">${esc(t("tech.any_machine"))}</option>`].concat(
    [...state.machines.values()].map((m) => `<option value="${esc(m.id)}">${esc(m.name)}</option>`),
  );
  const html = opts.join("");
  if (sel._html !== html) {
    sel._html = html;
    sel.innerHTML = html;
    sel.value = chosen;
  }
}

export async function loadHistory() {
  const q = new URLSearchParams();
  const states = [...document.querySelectorAll("#filter-states input:checked")].map((i) => i.value);
  if (states.length) q.set("state", states.join(","));
  if ($("filter-machine").value) q.set("machine", $("filter-machine").value);
  // datetime-local is the technician's local time; the API wants an ISO instant.
  if ($("filter-since").value) q.set("since", new Date($("filter-since").value).toISOString());
  q.set("limit", $("filter-limit").value || "50");
  rows = await api(`/api/jobs?${q}`);
  drawHistory();
}

export function drawHistory() {
  $("history").innerHTML = rows
    .map((j) => {
      const m = state.machines.get(j.machine_id);
      return `<tr data-job="${esc(j.id)}"><td class="ticket">${esc(j.ticket)}</td><td>${esc(j.display_name)}</td><td>${esc(j.maker_name)}</td>
        <td><span class="state-chip" data-state="${esc(j.state)}">${esc(t(`state.job.${j.state}`))}</span></td>
        <td>${esc(m ? m.name : j.machine_id || "")}</td><td>${pct(j.progress)}</td>
        <td>${esc(dateTime(j.created_at))}</td><td>${esc(dateTime(j.finished_at))}</td></tr>`;
    })
    .join("");
}
