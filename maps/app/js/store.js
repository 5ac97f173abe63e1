// What the app keeps on the tablet, in IndexedDB (through idb):
//   "data": the worker's offline data, one record per kind (me, config, categories, grids,
//           buildings, facilities, tasks), each {kind, value, saved_at};
//   "jobs": what the worker did and the server has not yet acknowledged: reports with their
//           photos, verifications, checks, facility checks. A job is written, with its
//           idempotency key, before anything is sent, and removed only once every step has been
//           acknowledged, so neither a reload, a crash nor a day in a basement loses it.
// Jobs are keyed by that idempotency key: writing the same job twice (a double tap) keeps one.

import { openDB } from "/static/npm/idb/build/index.js";

const DB_NAME = "gridmap-field";
const DB_VERSION = 1;

let opened = null;

export function db() {
  if (!opened) {
    opened = openDB(DB_NAME, DB_VERSION, {
      upgrade(database) {
        database.createObjectStore("data", { keyPath: "kind" });
        const jobs = database.createObjectStore("jobs", { keyPath: "key" });
        jobs.createIndex("created_at", "created_at");
      },
    });
  }
  return opened;
}

export async function saveData(kind, value) {
  await (await db()).put("data", { kind, value, saved_at: new Date().toISOString() });
}

export async function loadData(kind) {
  const record = await (await db()).get("data", kind);
  return record ? record.value : null;
}

export async function savedAt(kind) {
  const record = await (await db()).get("data", kind);
  return record ? record.saved_at : null;
}

/** Store a new job unless one with its key is there already; true when it was added. The check
 * and the write are one transaction, so two taps cannot both add it. */
export async function addJob(job) {
  const tx = (await db()).transaction("jobs", "readwrite");
  const existing = await tx.store.get(job.key);
  if (!existing) await tx.store.add(job);
  await tx.done;
  return !existing;
}

export async function putJob(job) {
  await (await db()).put("jobs", job);
}

export async function removeJob(key) {
  await (await db()).delete("jobs", key);
}

export async function jobs() {
  return (await db()).getAllFromIndex("jobs", "created_at");
}

export async function getJob(key) {
  return (await db()).get("jobs", key);
}

/** A new idempotency key (a random UUID). */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
