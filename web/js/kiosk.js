// The kiosk (/kiosk): a maker picks a file, a name and a machine type; gets a ticket or the reasons.
import { api, ApiError } from "./api.js";
import { esc } from "./format.js";
import { apiText, has, init, lang, onLangChange, picker, t } from "./i18n.js";
import { start, state, subscribe } from "./store.js";

const $ = (id) => document.getElementById(id);
let lastOutcome = null; // redrawn when the language changes
let targetsKey = "";

/** What to make it on: any printer, each printer model present in the hall, the laser. */
function targetOptions() {
  const models = new Map();
  let laser = false;
  for (const m of state.machines.values()) {
    if (m.kind === "laser") laser = true;
    else if (!models.has(m.profile)) models.set(m.profile, m.name.replace(/\s*#\d+$/, ""));
  }
  const opts = [{ value: "kind:printer", label: t("kiosk.any_printer") }];
  for (const [id, name] of [...models].sort((a, b) => a[1].localeCompare(b[1]))) {
    opts.push({ value: `profile:${id}`, label: name });
  }
  if (laser) opts.push({ value: "kind:laser", label: t("kiosk.laser") });
  return opts;
}

function drawTargets(force = false) {
  const opts = targetOptions();
  const key = lang() + JSON.stringify(opts);
  if (!force && key === targetsKey) return; // keep the maker's choice while the hall changes
  targetsKey = key;
  const chosen = document.querySelector("input[name=target]:checked")?.value || "kind:printer";
  $("targets").innerHTML = opts
    .map(
      (o) => `<label><input type="radio" name="target" value="${esc(o.value)}" ${o.value === chosen ? "checked" : ""}>${esc(o.label)}</label>`,
    )
    .join("");
  if (!document.querySelector("input[name=target]:checked")) document.querySelector("input[name=target]").checked = true;
}

function show(which) {
  for (const id of ["form", "ticket", "problem"]) $(id).classList.toggle("hidden", id !== which);
}

/** The ticket's QR code, fetched once per ticket (a language change redraws, it does not refetch).
 * With the secret, the code carries it to the maker's phone (#k=…); the kiosk keeps none of it. */
function qrFor(job) {
  const plain = `/api/jobs/${encodeURIComponent(job.ticket)}/qr.svg`;
  if (!job.secret) return Promise.resolve(plain);
  job.qr ??= fetch(plain, { headers: { "X-Maker-Secret": job.secret } })
    .then((res) => (res.ok ? res.blob() : Promise.reject(new Error(`QR: ${res.status}`))))
    .then((blob) => URL.createObjectURL(blob))
    .catch(() => plain);
  return job.qr;
}

function drawTicket(job) {
  const url = `${location.origin}/ticket/${job.ticket}`;
  $("ticket-code").textContent = job.ticket;
  qrFor(job).then((src) => {
    if ($("ticket-code").textContent === job.ticket) $("qr").src = src;
  });
  $("ticket-link").href = url;
  $("ticket-link").textContent = url;
  show("ticket");
}

/** The hint under a reason: what to do, with the hall's figures where they help. */
function hint(reason, detail) {
  const key = `hint.${reason.code}`;
  if (!has(key)) return "";
  const params = { ...reason.params };
  if (reason.code === "gcode.out_of_volume") {
    const axis = reason.params?.axis;
    // Only "too big" has a size to tell; a move below the minimum is a placement problem.
    if (!(reason.params?.value > reason.params?.max)) return "";
    const reach = detail.profiles
      .flatMap((p) => p.reasons)
      .filter((r) => r.code === reason.code && r.params?.axis === axis && typeof r.params?.max === "number")
      .map((r) => r.params.max);
    if (!reach.length) return "";
    params.size = Math.max(...reach);
  }
  return `<div class="hint">${esc(t(key, params))}</div>`;
}

function drawRejection(detail) {
  $("problem-title").textContent = t("kiosk.rejected_title");
  const groups = (detail.profiles || []).map((p) => {
    const reasons = p.reasons
      .map(
        (r) => `<div class="reason" data-code="${esc(r.code)}">
          <span class="line">${r.line != null ? esc(t("kiosk.line", { line: r.line })) : "—"}</span>
          <div><div class="text">${esc(apiText(r))}</div>${hint(r, detail)}</div></div>`,
      )
      .join("");
    return `<div class="group" data-profile="${esc(p.profile)}"><h3>${esc(p.name || p.profile)}</h3>${reasons}</div>`;
  });
  $("problem-body").innerHTML = `<p>${esc(apiText(detail))}</p>${groups.join("")}`;
  show("problem");
}

function drawError(err) {
  let title = t("kiosk.error_title");
  let text;
  if (!(err instanceof ApiError)) {
    text = t("kiosk.error_network");
  } else if (err.status === 413) {
    title = t("kiosk.too_large_title");
    text = apiText(err.detail);
  } else if (err.status === 429) {
    title = t("kiosk.rate_limited_title");
    const wait = Number(err.headers?.get("Retry-After")) || Number(err.detail?.params?.seconds) || 60;
    text = t("kiosk.rate_limited", { s: wait });
  } else {
    text = apiText(err.detail) || t("kiosk.error_generic", { status: err.status });
  }
  $("problem-title").textContent = title;
  $("problem-body").innerHTML = `<p class="alert">${esc(text)}</p>`;
  show("problem");
}

function redraw() {
  if (!lastOutcome) return;
  const { kind, value } = lastOutcome;
  if (kind === "ticket") drawTicket(value);
  else if (kind === "rejected") drawRejection(value);
  else drawError(value);
}

async function submit(ev) {
  ev.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("name", $("name").value.trim() || file.name.replace(/\.[^.]+$/, ""));
  form.append("maker", $("maker").value.trim());
  form.append("language", lang());
  const [how, what] = document.querySelector("input[name=target]:checked").value.split(":");
  form.append(how, what);
  $("submit").disabled = true;
  $("busy").classList.remove("hidden");
  try {
    const job = await api("/api/jobs", { method: "POST", form });
    // The secret goes into the QR code for the maker's phone only: a shared kiosk must not keep it,
    // or the next visitor could cancel every earlier job.
    lastOutcome = { kind: "ticket", value: job };
  } catch (err) {
    const rejected = err instanceof ApiError && err.status === 422 && err.detail?.code === "job.rejected";
    lastOutcome = rejected ? { kind: "rejected", value: err.detail } : { kind: "error", value: err };
  } finally {
    $("submit").disabled = false;
    $("busy").classList.add("hidden");
  }
  redraw();
}

function reset() {
  if (lastOutcome?.value?.qr) lastOutcome.value.qr.then((src) => src.startsWith("blob:") && URL.revokeObjectURL(src));
  lastOutcome = null;
  $("form").reset();
  $("file-name").textContent = t("kiosk.no_file");
  drawTargets(true);
  show("form");
}

await init();
picker($("langs"));
$("file").addEventListener("change", () => {
  $("file-name").textContent = $("file").files[0]?.name || t("kiosk.no_file");
});
$("form").addEventListener("submit", submit);
for (const b of document.querySelectorAll(".again")) b.addEventListener("click", reset);
onLangChange(() => {
  drawTargets(true);
  if ($("file").files[0]) $("file-name").textContent = $("file").files[0].name;
  redraw();
});
subscribe(() => drawTargets());
start({ jobs: 1 });
