// Sending what waits, exactly once.
//
// Each job is a short list of steps (a report: create the case, then each photo, then, for a
// fix on the spot, the self-resolve), and every step carries an idempotency key fixed when the
// job was written: sending a step again after a lost answer returns what the server stored the
// first time. A step's result (the case's id, a photo done) is written to the job before the next
// step starts, so after a reload or a crash the job resumes where it stopped, photo by photo.
//
// One sender at a time, across tabs too (a Web Lock). No network or a busy server: wait and try
// again with backoff (2 s doubling to 5 min), and at once when the browser says it is online. An
// ended session: stop until the worker logs in again; nothing is dropped. A refusal (4xx): the
// job is kept, marked failed with the server's reason, for the worker to see and retry or remove.

import { ApiError, call, hasSession, setCsrfToken } from "./api.js";
import { getJob, jobs, putJob, removeJob } from "./store.js";

const FIRST_DELAY_MS = 2000;
const MAX_DELAY_MS = 5 * 60 * 1000;

let timer = null;
let delay = FIRST_DELAY_MS;
let listeners = [];
let state = { running: false, paused: null, lastError: null };
let user = null;
let sent = 0; // jobs acknowledged in full since the app opened
let ensureSession = async () => {};

/** Whose jobs are sent: a tablet shared by two workers sends each one's jobs under their own
 * log-in only. */
export function setUser(username) { user = username; }
export function currentUser() { return user; }

export function onChange(listener) { listeners.push(listener); }

async function changed() {
  const all = await jobs();
  for (const listener of listeners) listener(all, state);
}

function photoForm(photo) {
  const form = new FormData();
  form.append("photo", photo.blob, photo.name || "photo.jpg");
  form.append("kind", photo.kind);
  if (photo.taken_at) form.append("taken_at", photo.taken_at);
  return form;
}

// Each photo of ``list`` not yet acknowledged, one by one, to ``path``.
async function sendPhotos(job, list, path) {
  for (const photo of list) {
    if (photo.done) continue;
    await call("POST", path, { body: photoForm(photo), key: photo.key });
    photo.done = true;
    await putJob(job);
    await changed();
  }
}

const STEPS = {
  async report(job) {
    if (!job.issue_id) {
      const { body } = await call("POST", "/api/v1/issues", { body: job.body, key: job.key });
      job.issue_id = body.id;
      await putJob(job);
    }
    await sendPhotos(job, job.photos, `/api/v1/issues/${job.issue_id}/photos`);
    await sendPhotos(job, job.after || [], `/api/v1/issues/${job.issue_id}/photos`);
    if (job.self_resolve && !job.resolved) {
      await call("POST", `/api/v1/issues/${job.issue_id}/self-resolve`,
        { body: { note: job.note || null }, key: `${job.key}:self-resolve` });
      job.resolved = true;
      await putJob(job);
    }
  },
  async verify(job) {
    await call("POST", `/api/v1/issues/${job.issue_id}/verify`,
      { body: { valid: job.valid, reason: job.reason || null }, key: job.key });
  },
  async check(job) {
    await sendPhotos(job, job.photos || [], `/api/v1/issues/${job.issue_id}/photos`);
    await call("POST", `/api/v1/issues/${job.issue_id}/check`,
      { body: { passed: job.passed, note: job.note || null }, key: job.key });
  },
  async facility(job) {
    if (!job.check_id) {
      const { body } = await call("POST", `/api/v1/facilities/${job.facility_id}/checks`,
        { body: { result: job.result, note: job.note || null }, key: job.key });
      job.check_id = body.id;
      job.issue_id = body.issue_id;
      await putJob(job);
    }
    await sendPhotos(job, job.photos || [], `/api/v1/facility-checks/${job.check_id}/photos`);
  },
};

async function runJob(key) {
  const job = await getJob(key);
  if (!job || job.failed) return;
  try {
    await STEPS[job.type](job);
    await removeJob(job.key);
    sent += 1;
  } catch (err) {
    if (!(err instanceof ApiError) || err.kind !== "refused") throw err;
    job.failed = { message: err.message, status: err.status, code: err.code };
    await putJob(job);
  } finally {
    await changed();
  }
}

async function runAll() {
  const waiting = (await jobs()).filter((j) => !j.failed && (!j.user || j.user === user));
  if (!waiting.length) return;
  if (!hasSession()) await ensureSession(); // the CSRF token of the current session, first
  for (const job of waiting) await runJob(job.key);
}

/** Send everything that waits, now; afterwards, on failure, again later. */
export async function syncNow() {
  clearTimeout(timer);
  const work = async () => {
    state.running = true;
    await changed();
    try {
      await runAll();
      state = { running: false, paused: null, lastError: null };
      delay = FIRST_DELAY_MS;
    } catch (err) {
      state.running = false;
      state.lastError = err.message;
      if (err instanceof ApiError && err.kind === "login") {
        state.paused = "login"; // wait for a new log-in: retrying would only fail again
      } else if (err instanceof ApiError && err.kind === "session") {
        setCsrfToken(null); // ask for the new session's token, and send again soon
        state.paused = "session";
        timer = setTimeout(syncNow, FIRST_DELAY_MS);
      } else {
        state.paused = err instanceof ApiError && err.kind === "busy" ? "busy" : "network";
        timer = setTimeout(syncNow, delay);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
      }
    }
    await changed();
  };
  if (navigator.locks) await navigator.locks.request("gridmap-sync", work);
  else await work();
}

/** Forget a failed job's refusal and send it again (the worker has fixed what was wrong). */
export async function retryJob(key) {
  const job = await getJob(key);
  if (!job) return;
  delete job.failed;
  await putJob(job);
  await syncNow();
}

export async function dropJob(key) {
  await removeJob(key);
  await changed();
}

export function currentState() { return state; }

export function sentCount() { return sent; }

/** Start sending: now, whenever the network comes back, and when another tab adds a job.
 * ``session`` fetches the session's CSRF token (throws ApiError when it cannot). */
export function start(session) {
  ensureSession = session;
  window.addEventListener("online", () => { delay = FIRST_DELAY_MS; syncNow(); });
  if ("BroadcastChannel" in window) {
    const channel = new BroadcastChannel("gridmap-jobs");
    channel.onmessage = () => { changed(); syncNow(); };
    window.gridmapJobsChannel = channel;
  }
  syncNow();
}

/** Tell other tabs that a job was added. */
export function announce() {
  if (window.gridmapJobsChannel) window.gridmapJobsChannel.postMessage("job");
}
