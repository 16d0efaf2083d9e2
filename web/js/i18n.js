// Languages: the UI catalogs in /static/i18n, the API's code catalogs from /api/i18n/{lang},
// the choice remembered per device, and a picker for every page.
export const LANGS = ["it", "zh", "en"];
const NAMES = { it: "Italiano", zh: "中文", en: "English" };
// zh-CN, not zh: Chromium then picks Simplified Chinese glyphs from Noto Sans CJK.
const HTML_LANG = { it: "it", zh: "zh-CN", en: "en" };
const KEY = "fabzone.lang";

let current = pickInitial();
let ui = {};
let apiCatalog = {};
const listeners = new Set();

function pickInitial() {
  const saved = localStorage.getItem(KEY);
  if (LANGS.includes(saved)) return saved;
  for (const l of navigator.languages || [navigator.language || ""]) {
    const base = l.toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

export const lang = () => current;

async function fetchJson(url) {
  try {
    const res = await fetch(url);
    return res.ok ? await res.json() : {};
  } catch {
    return {};
  }
}

async function load(l) {
  // English underneath: a key missing in one catalog still shows words, not a key name.
  const [en, mine, apiCat] = await Promise.all([
    l === "en" ? null : fetchJson("/static/i18n/en.json"),
    fetchJson(`/static/i18n/${l}.json`),
    fetchJson(`/api/i18n/${l}`),
  ]);
  ui = { ...(en || {}), ...mine };
  // The backend answers either the flat catalog or {messages: {...}}.
  apiCatalog = apiCat && typeof apiCat.messages === "object" ? apiCat.messages : apiCat || {};
}

function show(v) {
  // Same rule as the hub (fabzone/i18n.py): 300.0 -> "300", 0.12345 -> "0.123".
  if (typeof v === "number" && !Number.isInteger(v)) return String(Number(v.toFixed(3)));
  if (Array.isArray(v)) return v.map(show).join(", ");
  return String(v);
}

function fill(template, params) {
  return template.replace(/\{(\w+)\}/g, (m, k) => (params && k in params ? show(params[k]) : m));
}

/** A UI string. */
export function t(key, params) {
  const template = ui[key];
  return template === undefined ? key : fill(template, params);
}

export const has = (key) => key in ui;

/** An API error or validation reason (`{code, params, message}`) in the page language. */
export function apiText(item) {
  if (!item) return "";
  const template = item.code && apiCatalog[item.code];
  // A validation reason carries its line beside the params; templates name it as {line}.
  const params = item.line != null ? { line: item.line, ...item.params } : { ...item.params };
  // State names in job.* / machine.* messages read as words of this language (as fabzone/i18n.py).
  const owner = (item.code || "").split(".")[0];
  for (const name of ["state", "current", "target"]) {
    const word = (owner === "job" || owner === "machine") && apiCatalog[`state.${owner}.${params[name]}`];
    if (word) params[name] = word;
  }
  return template ? fill(template, params) : item.message || item.code || "";
}

/** Fill every `data-i18n` (text), `data-i18n-placeholder` and `data-i18n-title` under `root`. */
export function apply(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

export async function setLang(l) {
  if (!LANGS.includes(l)) return;
  current = l;
  localStorage.setItem(KEY, l);
  await load(l);
  document.documentElement.lang = HTML_LANG[l];
  apply();
  for (const fn of listeners) fn(l);
}

export const onLangChange = (fn) => listeners.add(fn);

/** Buttons it / 中文 / en in `el`; the current one is marked. */
export function picker(el) {
  const draw = () => {
    el.innerHTML = LANGS.map(
      (l) => `<button type="button" lang="${HTML_LANG[l]}" data-lang="${l}" aria-pressed="${l === current}">${NAMES[l]}</button>`,
    ).join("");
  };
  el.classList.add("langs");
  el.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-lang]");
    if (b) setLang(b.dataset.lang);
  });
  onLangChange(draw);
  draw();
}

/** Load the catalogs for the remembered language and translate the page. */
export async function init() {
  await setLang(current);
}
