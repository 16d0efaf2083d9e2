// The live state every page shares: a snapshot from the REST API kept current by /api/events.
// Events: `hello` {boot_id, seq}, `reset`, `machine` (row + live), `job` (row), `status` (live only).
import { api } from "./api.js";

const ON_MACHINE = new Set(["starting", "running", "paused"]);
const QUEUE_STATES = "queued,pending_approval";

export const state = {
  machines: new Map(), // id -> machine row with `live`
  jobs: new Map(), // id -> job row (+ queue_position, analysis when fetched)
  connected: false,
  loaded: false,
};

const listeners = new Set();
let boot = null;
let seq = null;
let ws = null;
let retry = 1000;
let jobLimit = 200;
let tracked = null; // a ticket the page follows even when older than the snapshot's jobs
let scheduled = false;
let queueTimer = null;
const detailsAsked = new Set();

export const subscribe = (fn) => listeners.add(fn);

/** Redraw at most once per frame: status events come up to 4 per second per machine. */
function changed() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    for (const fn of listeners) fn(state);
  });
}

export const jobByTicket = (code) => [...state.jobs.values()].find((j) => j.ticket === code);

function putJob(row) {
  const old = state.jobs.get(row.id);
  // Events carry the public row only; keep what came from other calls.
  const merged = { ...old, ...row };
  if (old && row.queue_position === undefined) merged.queue_position = old.queue_position;
  if (old?.analysis && !row.analysis) merged.analysis = old.analysis;
  state.jobs.set(row.id, merged);
  if (ON_MACHINE.has(merged.state)) needDetail(merged);
  return { old, merged };
}

/** The time-left estimate lives in the job's `analysis`, which only the single-job call returns. */
function needDetail(job) {
  if (job.analysis || detailsAsked.has(job.id)) return;
  detailsAsked.add(job.id);
  api(`/api/jobs/${encodeURIComponent(job.id)}`)
    .then((full) => {
      putJob(full);
      changed();
    })
    .catch(() => detailsAsked.delete(job.id));
}

/** Queue positions come from the hub (it knows priorities); refetched after queue changes. */
function refreshQueueSoon() {
  clearTimeout(queueTimer);
  queueTimer = setTimeout(refreshQueue, 300);
}

async function refreshQueue() {
  try {
    const queued = await api(`/api/jobs?state=${QUEUE_STATES}&limit=500`);
    const ids = new Set(queued.map((j) => j.id));
    for (const j of state.jobs.values()) if (!ids.has(j.id)) j.queue_position = null;
    for (const j of queued) putJob(j);
    changed();
  } catch {
    // The next event or reconnect tries again.
  }
}

async function snapshot() {
  const [machines, jobs, queued] = await Promise.all([
    api("/api/machines"),
    api(`/api/jobs?limit=${jobLimit}`),
    api(`/api/jobs?state=${QUEUE_STATES}&limit=500`),
  ]);
  state.machines = new Map(machines.map((m) => [m.id, m]));
  state.jobs = new Map();
  for (const j of [...jobs, ...queued]) putJob(j);
  if (tracked) {
    try {
      putJob(await api(`/api/jobs/${encodeURIComponent(tracked)}`));
    } catch (err) {
      state.trackError = err;
    }
  }
  state.loaded = true;
  changed();
}

function apply(ev) {
  const d = ev.data || {};
  if (ev.type === "machine") {
    const old = state.machines.get(d.id);
    state.machines.set(d.id, { ...old, ...d, live: d.live || old?.live });
  } else if (ev.type === "job") {
    const { old, merged } = putJob(d);
    if (!old || old.state !== merged.state) refreshQueueSoon();
  } else if (ev.type === "status") {
    const m = state.machines.get(d.machine_id);
    if (m) m.live = { ...m.live, ...d };
    const j = d.job_id && state.jobs.get(d.job_id);
    if (j && ON_MACHINE.has(j.state)) j.progress = d.progress;
  } else {
    return; // an event type this page does not know yet (lasers, …)
  }
  changed();
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  // batch=1: when this page falls behind, the hub sends what piled up as one array (fewer frames).
  const q = seq != null && boot ? `?batch=1&since=${seq}&boot=${boot}` : "?batch=1";
  ws = new WebSocket(`${proto}//${location.host}/api/events${q}`);
  let pending = []; // events that arrive while the snapshot loads
  let loading = null;
  ws.onmessage = (msg) => {
    const data = JSON.parse(msg.data);
    (Array.isArray(data) ? data : [data]).forEach(receive);
  };
  const receive = (ev) => {
    if (ev.type === "hello") {
      state.connected = true;
      retry = 1000;
      const newLife = boot !== null && ev.boot_id !== boot;
      boot = ev.boot_id;
      if (seq == null || newLife) {
        seq = ev.seq;
        loading = snapshot().finally(() => {
          loading = null;
          pending.forEach(apply);
          pending = [];
        });
      }
      changed();
      return;
    }
    if (ev.type === "reset") {
      // Too far behind (or another hub life): the snapshot is the truth again.
      seq = ev.seq;
      loading = snapshot().finally(() => (loading = null));
      return;
    }
    if (typeof ev.seq === "number") seq = Math.max(seq ?? 0, ev.seq);
    if (loading) pending.push(ev);
    else apply(ev);
  };
  ws.onclose = () => {
    state.connected = false;
    changed();
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  };
}

/** Start the live state: `{jobs: N}` snapshot size, `{ticket}` to follow one job by its code. */
export function start({ jobs = 200, ticket = null } = {}) {
  jobLimit = jobs;
  tracked = ticket;
  connect();
}

/** Reload everything (after a technician's action whose answer the page wants at once). */
export const reload = () => snapshot();
