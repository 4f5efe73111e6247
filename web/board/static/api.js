// api.js: the node's HTTP API. Every request of the board goes through
// getJSON, so that a later sign-in only has to add its header here.

/** ApiError carries the protocol's error code ({"error":{"code","message"}}). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** getJSON fetches a path of the node and decodes the JSON reply. */
export async function getJSON(path, { signal } = {}) {
  const res = await fetch(path, { signal, headers: { Accept: 'application/json' } });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: reported below by status
  }
  if (!res.ok) {
    const e = body && body.error;
    throw new ApiError(res.status, e ? e.code : 'http_' + res.status, e ? e.message : res.statusText);
  }
  return body;
}

/** searchSymbols asks the catalogue (symbols and names, Korean too). */
export async function searchSymbols(q, { limit = 10, signal } = {}) {
  const params = new URLSearchParams({ q, limit: String(limit) });
  const body = await getJSON('/v1/symbols?' + params, { signal });
  return body.symbols || [];
}
