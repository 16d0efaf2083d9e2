// Small formatting helpers shared by the pages: escaping, durations, temperatures, progress.
import { t } from "./i18n.js";

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ESC[c]);

/** Seconds as "1 h 05 min", "12 min", "< 1 min" in the page language. */
export function duration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "";
  const m = Math.round(seconds / 60);
  if (m < 1) return t("time.lt_min");
  if (m < 60) return t("time.min", { m });
  return t("time.h_min", { h: Math.floor(m / 60), m: String(m % 60).padStart(2, "0") });
}

/** Time left from the slicer-independent estimate of the job and its progress (0..1). */
export function timeLeft(job, machine) {
  const a = job?.analysis;
  if (!a) return null;
  const est = (machine && a.estimates_s?.[machine.profile]) ?? a.estimated_s;
  if (!est) return null;
  return est * (1 - Math.min(1, Math.max(0, job.progress || 0)));
}

export const pct = (p) => `${Math.floor(Math.min(1, Math.max(0, p || 0)) * 100)}%`;

/** "Nozzle 215/215 °C · Bed 60/60 °C" from a status's temperatures. */
export function temps(temperatures) {
  const names = { T: "temp.hotend", B: "temp.bed" };
  return Object.entries(temperatures || {})
    .map(([k, v]) => {
      const label = names[k] ? t(names[k]) : k;
      return `${label} ${Math.round(v.actual)}/${Math.round(v.target)} °C`;
    })
    .join(" · ");
}

export function clock(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function dateTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString([], { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}

/** A progress bar; `data-progress` lets tests read the value without parsing styles. */
export function bar(progress) {
  const p = Math.min(1, Math.max(0, progress || 0));
  return `<div class="bar" role="progressbar" aria-valuenow="${Math.round(p * 100)}" data-progress="${p.toFixed(4)}"><div style="width:${(p * 100).toFixed(1)}%"></div></div>`;
}

/** What the hub knows of a laser's lid: "open" (GRBL reports Door, not ready), "closed" (`Door:0`,
 * closed and ready to resume) or null. Outside a door state GRBL says nothing of the lid (a machine may
 * have no switch), so neither do the pages. */
export function lid(m) {
  const extra = m.live?.extra || {};
  if (extra.door_open) return "open";
  if (extra.machine_state === "Door:0") return "closed";
  return null;
}
