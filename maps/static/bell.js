/*
 * The unread count beside 通知 in the user bar of every page: GET /api/v1/me/notifications
 * (unread only, the count is in the answer) now and every minute while the page is open, with
 * the page's session cookie. Nothing is shown when there is nothing unread or the call fails.
 */
(function () {
  "use strict";
  var POLL_MS = 60000;

  function show(count) {
    var badges = document.querySelectorAll(".gm-bell .gm-unread");
    for (var i = 0; i < badges.length; i++) {
      badges[i].textContent = count > 99 ? "99+" : String(count);
      badges[i].hidden = !(count > 0);
    }
  }

  function poll() {
    window.fetch("/api/v1/me/notifications?unread=true&limit=1", {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (body) {
      if (body && typeof body.unread === "number") {
        show(body.unread);
      }
    }, function () { /* offline: keep what is shown */ });
  }

  function start() {
    if (!document.querySelector(".gm-bell")) {
      return;
    }
    poll();
    window.setInterval(poll, POLL_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
