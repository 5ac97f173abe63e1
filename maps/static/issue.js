/*
 * The issue action page (/maps/issue/{id}), served locally. The page is only reached logged in
 * (or, on a public site, read without personal data); its log-in is the session cookie, which
 * scripts cannot read. Every request goes with the cookie (credentials: "same-origin"); a change
 * also carries the session's CSRF token, from <meta name="csrf-token"> (added by the server to
 * each answer, never to the cached page), in the X-CSRF-Token header.
 *
 * - For a reader who may see the case's personal data (settings "reveal"), the description and
 *   the history notes the page shows masked are filled in from GET /api/v1/issues/{id} and
 *   /history, and the reporter's contact is shown.
 * - The workflow buttons move the issue (POST /api/v1/issues/{id}/transitions, JSON {to, note});
 *   on success the page reloads so its status and history are the server's. A 401 (the session
 *   ended) goes to the log-in page and back here.
 * - The command centre's buttons (.gm-command, data-action) call its actions: dispatch (to the
 *   department chosen in #gm-department, the grid worker, or by the rule), return, hold, resume,
 *   request_extension (#gm-extension-value, #gm-extension-unit), approve_extension,
 *   refuse_extension, supervise and reply (to the notice settings "supervision"); the note is
 *   the reason or text each needs. On success the page reloads, like a move.
 * API errors ({"detail": "...", "code": "..."}) are shown in the #gm-error box, explained in the
 * page's language (settings "why", by HTTP status) with the API's own message as the detail:
 * every request sends the page's language as Accept-Language, so that message is in it too.
 * Settings come from #gm-panel's data-gm-issue attribute:
 *   {id, lang, reveal, text: {request_failed, network_error, sending, details},
 *    why: {401, 403, 409, 422, 429, 503}}
 * Everything from the server is written with textContent, never as HTML.
 */
(function () {
  "use strict";

  function byId(id) {
    return document.getElementById(id);
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  var language = "zh"; // the page's language (settings "lang"), sent as Accept-Language

  // fetch with the session cookie, resolving to {ok, status, body} (body: the parsed JSON, or
  // null); rejects only when the server could not be reached.
  function call(url, init) {
    init = init || {};
    init.credentials = "same-origin";
    init.headers = init.headers || {};
    init.headers["Accept-Language"] = language;
    init.headers.Accept = "application/json";
    return window.fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try {
          body = text ? JSON.parse(text) : null;
        } catch (e) {
          body = null;
        }
        return { ok: response.ok, status: response.status, body: body };
      });
    });
  }

  function apiMessage(result) {
    var detail = result.body && result.body.detail;
    if (typeof detail === "string") {
      return detail;
    }
    return detail ? JSON.stringify(detail) : "HTTP " + result.status;
  }

  function toLogin() {
    var here = window.location.pathname + window.location.search;
    window.location.assign("/login?next=" + encodeURIComponent(here) + "&lang=" + language);
  }

  function IssuePage(panel, cfg) {
    this.panel = panel;
    this.cfg = cfg;
    this.errorBox = byId("gm-error");
  }

  IssuePage.prototype.showError = function (title, message, details) {
    var box = this.errorBox;
    box.textContent = "";
    var strong = document.createElement("strong");
    strong.textContent = title;
    var text = document.createElement("div");
    text.className = "gm-error-message";
    text.textContent = message;
    box.appendChild(strong);
    box.appendChild(text);
    if (details) {
      var more = document.createElement("div");
      more.className = "gm-error-details";
      more.textContent = this.cfg.text.details + ": " + details;
      box.appendChild(more);
    }
    box.hidden = false;
  };

  IssuePage.prototype.clearError = function () {
    this.errorBox.hidden = true;
    this.errorBox.textContent = "";
  };

  // The page's own explanation of the failure (its language), with the API's message as the
  // detail; statuses the page does not explain show the API's message alone.
  IssuePage.prototype.failed = function (result) {
    if (result.status === 401) {
      toLogin(); // the session ended: log in again and come back
      return;
    }
    var own = (this.cfg.why || {})[String(result.status)];
    var title = this.cfg.text.request_failed + " (HTTP " + result.status + ")";
    if (own) {
      this.showError(title, own, apiMessage(result));
    } else {
      this.showError(title, apiMessage(result));
    }
  };

  IssuePage.prototype.unreachable = function () {
    this.showError(this.cfg.text.request_failed, this.cfg.text.network_error);
  };

  // The API shows the description, the notes and the reporter's contact in full to those who
  // may see the case's personal data (the grid's worker, the region's leaders, admins).
  IssuePage.prototype.reveal = function () {
    var self = this;
    var base = "/api/v1/issues/" + this.cfg.id;
    call(base).then(function (result) {
      if (!result.ok) {
        self.failed(result);
        return;
      }
      var props = (result.body && result.body.properties) || {};
      var description = self.panel.querySelector(".gm-description");
      if (description && typeof props.description === "string") {
        description.textContent = props.description;
      }
      if (props.reporter_contact) {
        byId("gm-contact").textContent = props.reporter_contact;
        byId("gm-contact-row").hidden = false;
      }
    }, function () {
      self.unreachable();
    });
    call(base + "/history").then(function (result) {
      if (!result.ok || !Array.isArray(result.body)) {
        return;
      }
      result.body.forEach(function (event) {
        var cell = self.panel.querySelector('tr[data-gm-event="' + Number(event.id) + '"] .gm-event-note');
        if (cell) {
          cell.textContent = event.note || "";
        }
      });
    });
  };

  IssuePage.prototype.move = function (button) {
    var note = byId("gm-note").value.trim();
    this.send(button, "/api/v1/issues/" + this.cfg.id + "/transitions",
              { to: button.getAttribute("data-to"), note: note || null });
  };

  // POST ``body`` to ``url`` for ``button``: every action button is held while it goes; on
  // success the page reloads (or ``done`` runs instead), on failure it says why.
  IssuePage.prototype.send = function (button, url, body, done) {
    var self = this;
    var buttons = this.panel.querySelectorAll(".gm-transition, .gm-command");
    var label = button.textContent;
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = true;
    }
    button.textContent = this.cfg.text.sending;
    this.clearError();
    call(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body),
    }).then(function (result) {
      if (result.ok) {
        if (done) {
          done();
        } else {
          window.location.reload();
        }
        return;
      }
      self.failed(result);
      self.release(buttons, button, label);
    }, function () {
      self.unreachable();
      self.release(buttons, button, label);
    });
  };

  // The request of a command-centre action: [path under the issue, or absolute; JSON body].
  IssuePage.prototype.commandRequest = function (action, note) {
    var base = "/api/v1/issues/" + this.cfg.id;
    if (action === "dispatch") {
      var choice = byId("gm-department").value;
      var body = { note: note || null };
      if (choice === "@worker") {
        body.to_worker = true;
      } else if (choice) {
        body.department = choice;
      }
      return [base + "/dispatch", body];
    }
    if (action === "return" || action === "hold") {
      return [base + "/" + action, { reason: note }];
    }
    if (action === "resume") {
      return [base + "/resume", { note: note || null }];
    }
    if (action === "request_extension") {
      return [base + "/extensions", {
        value: Number(byId("gm-extension-value").value),
        unit: byId("gm-extension-unit").value,
        reason: note,
      }];
    }
    if (action === "approve_extension" || action === "refuse_extension") {
      return [base + "/extensions/decision",
        { approve: action === "approve_extension", note: note || null }];
    }
    if (action === "supervise") {
      return [base + "/supervisions", { note: note }];
    }
    return ["/api/v1/supervisions/" + this.cfg.supervision + "/reply", { reply: note }];
  };

  IssuePage.prototype.command = function (button) {
    var self = this;
    var action = button.getAttribute("data-action");
    var request = this.commandRequest(action, byId("gm-note").value.trim());
    // a returned case is no longer the department's: its page would refuse them now
    this.send(button, request[0], request[1],
              action === "return" ? function () { self.returned(); } : null);
  };

  // A returned case is the dispatcher's again: say so where the actions were.
  IssuePage.prototype.returned = function () {
    var actions = byId("gm-actions");
    var notice = document.createElement("p");
    notice.className = "gm-returned";
    notice.setAttribute("role", "status");
    notice.textContent = this.cfg.text.returned;
    actions.parentNode.replaceChild(notice, actions);
  };

  IssuePage.prototype.release = function (buttons, button, label) {
    button.textContent = label;
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = false;
    }
  };

  IssuePage.prototype.bind = function () {
    var self = this;
    var buttons = this.panel.querySelectorAll(".gm-transition");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (ev) {
        self.move(ev.currentTarget);
      });
    }
    var commands = this.panel.querySelectorAll(".gm-command");
    for (var j = 0; j < commands.length; j++) {
      commands[j].addEventListener("click", function (ev) {
        self.command(ev.currentTarget);
      });
    }
    if (this.cfg.reveal) {
      this.reveal();
    }
  };

  function start() {
    var panel = byId("gm-panel");
    if (!panel || !panel.hasAttribute("data-gm-issue")) {
      return;
    }
    var cfg = JSON.parse(panel.getAttribute("data-gm-issue"));
    language = cfg.lang || language;
    var page = new IssuePage(panel, cfg);
    page.bind();
    window.GridMapIssue = page;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
