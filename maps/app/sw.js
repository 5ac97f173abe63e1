// GridMap's worker app: the service worker. It keeps the app's shell (the page, its scripts and
// styles, Leaflet, idb, the icons) so that the app opens with no network, reload included; the
// worker's data live in IndexedDB, kept by the app itself. The server fills in the list of files
// with a revision per file: a new release replaces exactly the files that changed, and the
// caches of older releases are removed.
importScripts(/*WORKBOX_SCRIPTS*/);

workbox.core.setCacheNameDetails({ prefix: "gridmap-field" });
workbox.precaching.cleanupOutdatedCaches();
workbox.precaching.precacheAndRoute(/*PRECACHE_MANIFEST*/[], { ignoreURLParametersMatching: [/.*/] });

// Any page under /app/ is the app's one page (the app shows its views itself).
workbox.routing.registerRoute(new workbox.routing.NavigationRoute(
  workbox.precaching.createHandlerBoundToURL("/app/"), { allowlist: [/^\/app\/(\?.*)?$/] }));

// The API is never cached here: answers about cases are the app's to keep (IndexedDB), for the
// logged-in worker only.

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "SKIP_WAITING") self.skipWaiting();
});
workbox.core.clientsClaim();
