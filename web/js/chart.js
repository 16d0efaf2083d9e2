// A small SVG line chart of temperatures (actual solid, target dashed), drawn without a library.
import { esc } from "./format.js";
import { t } from "./i18n.js";

const COLORS = { T: "#ff7043", B: "#42a5f5" };
const W = 600;
const H = 200;
const PAD = { l: 40, r: 10, t: 10, b: 22 };

/** `samples`: `[{t, T: {actual, target}, B: {...}}]`, oldest first (GET /api/machines/{id}/temperatures). */
export function temperatureChart(samples) {
  if (!samples.length) return `<p class="muted">${esc(t("tech.no_temps"))}</p>`;
  const keys = [...new Set(samples.flatMap((s) => Object.keys(s).filter((k) => k !== "t")))];
  const t0 = samples[0].t;
  const t1 = Math.max(samples[samples.length - 1].t, t0 + 1);
  let hi = 50;
  for (const s of samples) for (const k of keys) hi = Math.max(hi, s[k]?.actual ?? 0, s[k]?.target ?? 0);
  hi = Math.ceil(hi / 50) * 50;
  const x = (ts) => PAD.l + ((ts - t0) / (t1 - t0)) * (W - PAD.l - PAD.r);
  const y = (v) => H - PAD.b - (v / hi) * (H - PAD.t - PAD.b);
  const line = (k, field) =>
    samples
      .filter((s) => s[k])
      .map((s, i) => `${i ? "L" : "M"}${x(s.t).toFixed(1)},${y(s[k][field]).toFixed(1)}`)
      .join("");
  const grid = [];
  for (let v = 0; v <= hi; v += 50) {
    grid.push(`<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(v)}" y2="${y(v)}" stroke="#2c3740"/>`,
      `<text x="${PAD.l - 4}" y="${y(v) + 4}" text-anchor="end" fill="#a9b4bf" font-size="11">${v}</text>`);
  }
  const span = t1 - t0;
  const ago = `−${span < 120 ? t("time.s", { s: Math.round(span) }) : t("time.min", { m: Math.round(span / 60) })}`;
  grid.push(`<text x="${PAD.l}" y="${H - 5}" fill="#a9b4bf" font-size="11">${ago}</text>`,
    `<text x="${W - PAD.r}" y="${H - 5}" text-anchor="end" fill="#a9b4bf" font-size="11">°C</text>`);
  const paths = keys.map(
    (k) => `<path d="${line(k, "target")}" fill="none" stroke="${COLORS[k] || "#ccc"}" stroke-width="1.5" stroke-dasharray="5 4" opacity=".7"/>
      <path d="${line(k, "actual")}" fill="none" stroke="${COLORS[k] || "#ccc"}" stroke-width="2.5" data-series="${esc(k)}"/>`,
  );
  const names = { T: t("temp.hotend"), B: t("temp.bed") };
  const legend = keys
    .map((k) => `<span style="color:${COLORS[k] || "#ccc"}">━ ${esc(names[k] || k)}</span>`)
    .concat(`<span class="muted">┅ ${esc(t("tech.target"))}</span>`)
    .join("");
  return `<svg viewBox="0 0 ${W} ${H}" role="img">${grid.join("")}${paths.join("")}</svg><div class="legend">${legend}</div>`;
}
