/*
 * The issue action page (/maps/issue/{id}), served locally: log in with the OAuth2 password
 * form (POST /api/v1/auth/token), keep the bearer token in sessionStorage, show the reporter's
 * contact when GET /api/v1/issues/{id} returns it, and move the issue through the workflow
 * (POST /api/v1/issues/{id}/transitions, JSON {to, note}); on success the page reloads so its
 * status and history are the server's. API errors ({"detail": "...", "code": "..."}) are shown
 * in the #gm-error box. Settings come from #gm-panel's data-gm-issue attribute:
 *   {id, lang, text: {request_failed, network_error, sending, details},
 *    why: {login_401, 401, 403, 409, 422, 429, 503}}
 * Failures are explained in the page's language (settings "why", by HTTP status), with the
 * API's own message as the detail: every request sends the page's language as Accept-Language,
 * so that message comes back in it too.
 * Everything from the server is written with textContent, never as HTML.
 */
(function () {
  "use strict";

  var TOKEN_KEY = "gridmap.token";
  var USER_KEY = "gridmap.username";

  function byId(id) {
    return document.getElementById(id);
  }

  function store() {
    try {
      return window.sessionStorage;
    } catch (e) {
      return null; // storage disabled: the log-in lasts until the page is left
    }
  }

  var memory = {};

  function load(key) {
    var s = store();
    return s ? s.getItem(key) : memory[key] || null;
  }

  function save(key, value) {
    var s = store();
    if (s) {
      if (value === null) {
        s.removeItem(key);
      } else {
        s.setItem(key, value);
      }
    } else {
      memory[key] = value;
    }
  }

  var language = "zh"; // the page's language (settings "lang"), sent as Accept-Language

  // fetch, resolving to {ok, status, body} (body: the parsed JSON, or null); rejects only when
  // the server could not be reached.
  function call(url, init) {
    init.headers = init.headers || {};
    init.headers["Accept-Language"] = language;
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

  function IssuePage(panel, cfg) {
    this.panel = panel;
    this.cfg = cfg;
    this.errorBox = byId("gm-error");
    this.loginForm = byId("gm-login");
    this.actions = byId("gm-actions");
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
  IssuePage.prototype.failed = function (result, during) {
    var why = this.cfg.why || {};
    var own = (during === "login" && why["login_" + result.status]) || why[String(result.status)];
    var title = this.cfg.text.request_failed + " (HTTP " + result.status + ")";
    if (own) {
      this.showError(title, own, apiMessage(result));
    } else {
      this.showError(title, apiMessage(result));
    }
    if (result.status === 401 && load(TOKEN_KEY)) {
      this.loggedOut(); // the token expired or was revoked: log in again
    }
  };

  IssuePage.prototype.unreachable = function () {
    this.showError(this.cfg.text.request_failed, this.cfg.text.network_error);
  };

  IssuePage.prototype.loggedIn = function (username) {
    byId("gm-user").textContent = username;
    this.loginForm.hidden = true;
    this.actions.hidden = false;
    this.loadContact();
  };

  IssuePage.prototype.loggedOut = function () {
    save(TOKEN_KEY, null);
    save(USER_KEY, null);
    this.actions.hidden = true;
    this.loginForm.hidden = false;
    byId("gm-contact-row").hidden = true;
    byId("gm-contact").textContent = "";
  };

  IssuePage.prototype.authHeaders = function () {
    return { Authorization: "Bearer " + load(TOKEN_KEY), Accept: "application/json" };
  };

  IssuePage.prototype.login = function (form) {
    var self = this;
    var button = form.querySelector("button[type=submit]");
    var username = form.elements.username.value.trim();
    var body = new URLSearchParams();
    body.set("username", username);
    body.set("password", form.elements.password.value);
    button.disabled = true;
    this.clearError();
    call("/api/v1/auth/token", { method: "POST", body: body, headers: { Accept: "application/json" } })
      .then(function (result) {
        if (!result.ok || !result.body || !result.body.access_token) {
          self.failed(result, "login");
          return;
        }
        form.elements.password.value = "";
        save(TOKEN_KEY, result.body.access_token);
        save(USER_KEY, username);
        self.loggedIn(username);
      }, function () {
        self.unreachable();
      })
      .then(function () {
        button.disabled = false;
      });
  };

  // The API gives the reporter's contact to the grid's worker, leaders and admins only.
  IssuePage.prototype.loadContact = function () {
    var self = this;
    call("/api/v1/issues/" + this.cfg.id, { headers: this.authHeaders() }).then(function (result) {
      if (!result.ok) {
        if (result.status === 401) {
          self.failed(result);
        }
        return;
      }
      var contact = result.body && result.body.properties && result.body.properties.reporter_contact;
      if (contact) {
        byId("gm-contact").textContent = contact;
        byId("gm-contact-row").hidden = false;
      }
    }, function () {
      self.unreachable();
    });
  };

  IssuePage.prototype.move = function (button) {
    var self = this;
    var buttons = this.panel.querySelectorAll(".gm-transition");
    var note = byId("gm-note").value.trim();
    var label = button.textContent;
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = true;
    }
    button.textContent = this.cfg.text.sending;
    this.clearError();
    var headers = this.authHeaders();
    headers["Content-Type"] = "application/json";
    call("/api/v1/issues/" + this.cfg.id + "/transitions", {
      method: "POST",
      headers: headers,
      body: JSON.stringify({ to: button.getAttribute("data-to"), note: note || null }),
    }).then(function (result) {
      if (result.ok) {
        window.location.reload();
        return;
      }
      self.failed(result);
      self.release(buttons, button, label);
    }, function () {
      self.unreachable();
      self.release(buttons, button, label);
    });
  };

  IssuePage.prototype.release = function (buttons, button, label) {
    button.textContent = label;
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = false;
    }
  };

  IssuePage.prototype.bind = function () {
    var self = this;
    this.loginForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      self.login(self.loginForm);
    });
    byId("gm-logout").addEventListener("click", function () {
      self.clearError();
      self.loggedOut();
    });
    var buttons = this.panel.querySelectorAll(".gm-transition");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (ev) {
        self.move(ev.currentTarget);
      });
    }
    var username = load(USER_KEY);
    if (load(TOKEN_KEY) && username) {
      this.loggedIn(username);
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
