// HTTP to the hub: JSON in and out, the caller's language, and the technician's token when asked for.
import { lang } from "./i18n.js";

const TOKEN_KEY = "fabzone.token";

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY),
  set: (value) => localStorage.setItem(TOKEN_KEY, value),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

/** A non-2xx answer; `detail` is the API's `{code, message, params}` (or its 422 rejection body). */
export class ApiError extends Error {
  constructor(status, detail, headers) {
    super(detail?.message || `HTTP ${status}`);
    this.status = status;
    this.detail = detail || {};
    this.headers = headers;
  }
}

/**
 * `api("/api/machines")`, `api(path, {method: "POST", json: {...}, auth: true})`,
 * `api(path, {method: "POST", form: formData})`. Resolves to the parsed JSON (or null).
 */
export async function api(path, { method = "GET", json, form, auth = false, headers = {} } = {}) {
  const h = { "Accept-Language": lang(), ...headers };
  let body;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form; // the browser sets the multipart boundary
  }
  if (auth && token.get()) h.Authorization = `Bearer ${token.get()}`;
  const res = await fetch(path, { method, headers: h, body });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!res.ok) throw new ApiError(res.status, data?.detail ?? data, res.headers);
  return data;
}
