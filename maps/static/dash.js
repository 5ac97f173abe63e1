/*
 * The leaders' dashboard (/dash), served locally; ECharts (its "common" build), Leaflet and
 * Leaflet.heat are loaded before it from /static/npm/. The page's security policy runs no inline
 * script: everything the page knows comes from the data-gm-dash attribute of #gm-dash:
 *   {lang, screen, today, day, period: {kind, since, until, label}, categories, issue_url,
 *    api: "/api/v1/dashboard", evaluation: "/api/v1/evaluation" or null, text: {...}}
 *
 * The filters (period, date, community, category) live in the URL: the page reads them from its
 * form (which the server filled from the URL) and, when one changes, writes them back with
 * history.replaceState and loads every panel again, without reloading the page. The language
 * and layout links carry them too.
 *
 * Two layouts: the tablet's (cards stacked) and the big screen's (大屏: dark, every panel on one
 * screen), chosen by ?screen=big|tablet, else by the width (>= 1600 px: big).
 *
 * Panels: the headline numbers (/summary), the weekly trend by category and the on-time rate per
 * week (/trend, ECharts), the overdue list (/overdue, each case linking to its page), a small heat
 * map (/heat: cells and the heatmap's scale for this map's size) and the league tables of the
 * evaluation (/api/v1/evaluation?role=department|worker), which say 暂无数据 until the server
 * offers them. Everything from the server is written with textContent, never as HTML.
 *
 * For tests and the curious: window.gridmapDash holds the charts, the map, the last answers,
 * `loads`, the number of completed loads (document.body.dataset.ready is "true" after the
 * first, and readyAt its time in ms since the navigation), and `loadedQuery`, the filters of the
 * last one.
 */
(function () {
  "use strict";

  var root = document.getElementById("gm-dash");
  var settings = JSON.parse(root.getAttribute("data-gm-dash"));
  var text = settings.text;
  var lang = settings.lang;
  var form = document.getElementById("dash-filters");
  var wide = window.matchMedia("(min-width: 1600px)");
  var FILTERS = ["period", "date", "community", "category"];
  var dash = {charts: {}, map: null, layers: [], data: {}, loads: 0, big: false};
  var sequence = 0;
  window.gridmapDash = dash;

  // -- small helpers ------------------------------------------------------------------------------
  function byId(id) {
    return document.getElementById(id);
  }

  function element(tag, content, className) {
    var node = document.createElement(tag);
    if (content !== undefined && content !== null) {
      node.textContent = String(content);
    }
    if (className) {
      node.className = className;
    }
    return node;
  }

  function number(value) {
    return value === null || value === undefined ? "–" : value.toLocaleString(lang === "en" ? "en" : "zh-CN");
  }

  function percent(rate) {
    return rate === null || rate === undefined ? "–" : (rate * 100).toFixed(1) + "%";
  }

  function hours(value) {
    var shown = value >= 100 ? Math.round(value) : value.toFixed(1);
    return shown + (lang === "en" ? " h" : " " + text.hours);
  }

  function categoryName(c) {
    return (lang === "en" ? c.en : c.zh) || c.code;
  }

  // -- the filters in the URL ---------------------------------------------------------------------
  function filters() {
    var out = {};
    FILTERS.forEach(function (name) {
      var value = form.elements[name].value;
      if (value) {
        out[name] = value;
      }
    });
    return out;
  }

  function query(values) {
    var params = new URLSearchParams();
    Object.keys(values).forEach(function (key) {
      if (values[key] !== null && values[key] !== undefined && values[key] !== "") {
        params.append(key, values[key]);
      }
    });
    return params.toString();
  }

  function pageUrl(extra) {
    var values = Object.assign({lang: lang}, settings.screen ? {screen: settings.screen} : {},
                               filters(), extra || {});
    return "/dash?" + query(values);
  }

  function writeUrl() {
    window.history.replaceState(null, "", pageUrl());
    byId("dash-lang").href = pageUrl({lang: lang === "en" ? "zh" : "en"});
    byId("dash-screen").href = pageUrl({screen: dash.big ? "tablet" : "big"});
    byId("dash-screen").textContent = dash.big ? text.tablet_view : text.big_screen;
  }

  // -- requests -----------------------------------------------------------------------------------
  function get(url) {
    return window.fetch(url, {credentials: "same-origin",
                              headers: {"Accept": "application/json", "Accept-Language": lang}})
      .then(function (response) {
        if (response.status === 401) {
          window.location.assign("/login?next=" + encodeURIComponent(pageUrl()) + "&lang=" + lang);
        }
        return response.text().then(function (body) {
          var parsed = null;
          try {
            parsed = body ? JSON.parse(body) : null;
          } catch (e) {
            parsed = null;
          }
          return {ok: response.ok, status: response.status, body: parsed};
        });
      }, function () {
        return {ok: false, status: 0, body: null};
      });
  }

  function api(path, extra) {
    return get(settings.api + path + "?" + query(Object.assign(filters(), extra || {})));
  }

  // -- panel states -------------------------------------------------------------------------------
  function showState(el, state, message, detail) {
    el.setAttribute("data-state", state);
    var box = el.querySelector(":scope > .gm-state");
    if (!message) {
      if (box) {
        box.remove();
      }
      return;
    }
    if (!box) {
      box = element("div", null, "gm-state");
      el.appendChild(box);
    }
    box.textContent = "";
    box.appendChild(element("strong", message));
    if (detail) {
      box.appendChild(element("span", detail, "gm-state-detail"));
    }
  }

  function failed(el, result) {
    var detail = result.body && typeof result.body.detail === "string" ? result.body.detail : "";
    showState(el, "error", text.load_failed + (result.status ? " (" + result.status + ")" : ""), detail);
  }

  // -- the headline -------------------------------------------------------------------------------
  function renderSummary(body) {
    byId("kpi-open").textContent = number(body.open);
    byId("kpi-overdue").textContent = number(body.overdue);
    byId("kpi-reported").textContent = number(body.reported);
    byId("kpi-closed").textContent = number(body.closed);
    byId("kpi-on-time").textContent = percent(body.on_time_rate);
    byId("dash-period").textContent = body.period.label + " · " + body.period.since + " – " + body.period.until;
  }

  // -- the charts ---------------------------------------------------------------------------------
  function chart(id) {
    var el = byId(id);
    var existing = dash.charts[id];
    if (existing && existing.__big === dash.big) {
      return existing;
    }
    if (existing) {
      existing.dispose();
    }
    var instance = window.echarts.init(el, dash.big ? "dark" : null,
                                       {renderer: "canvas", locale: lang === "en" ? "EN" : "ZH"});
    instance.__big = dash.big;
    dash.charts[id] = instance;
    return instance;
  }

  function weekLabel(monday) {
    return monday.slice(5);
  }

  function addDays(day, n) {
    var d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  // The weeks of the trend that overlap the period, as a shaded area.
  function periodArea(weeks, period) {
    var inside = weeks.filter(function (w) {
      return w <= period.until && addDays(w, 6) >= period.since;
    });
    if (!inside.length) {
      return undefined;
    }
    return {silent: true, itemStyle: {color: dash.big ? "rgba(120,170,255,0.12)" : "rgba(31,111,235,0.08)"},
            label: {show: true, position: "insideTop", color: dash.big ? "#9fb3c8" : "#546e7a"},
            data: [[{xAxis: weekLabel(inside[0]), name: text.selected_period},
                    {xAxis: weekLabel(inside[inside.length - 1])}]]};
  }

  function baseOption() {
    var size = dash.big ? 14 : 12;
    return {backgroundColor: "transparent", animation: false, textStyle: {fontSize: size},
            tooltip: {trigger: "axis", confine: true},
            grid: {left: 8, right: 12, top: 44, bottom: 8, containLabel: true}};
  }

  function renderTrend(body) {
    var el = byId("chart-trend");
    if (!body.categories.length) {
      chart("chart-trend").clear();
      showState(el, "empty", text.no_data);
      return;
    }
    showState(el, "drawn");
    var labels = body.weeks.map(weekLabel);
    var series = body.categories.map(function (c) {
      return {type: "bar", stack: "cases", name: categoryName(c), data: c.counts,
              itemStyle: c.colour ? {color: c.colour} : undefined, emphasis: {focus: "series"},
              barMaxWidth: 28};
    });
    series[0].markArea = periodArea(body.weeks, body.period);
    chart("chart-trend").setOption(Object.assign(baseOption(), {
      tooltip: {trigger: "axis", axisPointer: {type: "shadow"}, confine: true},
      legend: {type: "scroll", top: 0, left: 0, right: 0},
      xAxis: {type: "category", data: labels},
      yAxis: {type: "value", minInterval: 1},
      series: series}), true);
  }

  function renderOnTime(body) {
    var el = byId("chart-on-time");
    var weeks = body.on_time;
    if (!weeks.some(function (w) { return w.closed > 0; })) {
      chart("chart-on-time").clear();
      showState(el, "empty", text.no_data);
      return;
    }
    showState(el, "drawn");
    var rate = weeks.map(function (w) {
      return w.on_time_rate === null ? "-" : Math.round(w.on_time_rate * 1000) / 10;
    });
    chart("chart-on-time").setOption(Object.assign(baseOption(), {
      legend: {top: 0, data: [text.on_time_rate, text.closed_n]},
      xAxis: {type: "category", data: body.weeks.map(weekLabel)},
      yAxis: [{type: "value", min: 0, max: 100, axisLabel: {formatter: "{value}%"}},
              {type: "value", minInterval: 1, splitLine: {show: false}}],
      series: [
        {type: "bar", name: text.closed_n, yAxisIndex: 1, barMaxWidth: 18,
         data: weeks.map(function (w) { return w.closed; }),
         itemStyle: {color: dash.big ? "#4b6a88" : "#b0bec5"}},
        {type: "line", name: text.on_time_rate, yAxisIndex: 0, data: rate, symbolSize: 7,
         lineStyle: {width: 3}, itemStyle: {color: dash.big ? "#66bb6a" : "#2e7d32"},
         tooltip: {valueFormatter: function (v) { return v === "-" || v === undefined ? "–" : v + "%"; }},
         markArea: periodArea(body.weeks, body.period)}
      ]}), true);
  }

  // -- the overdue list ---------------------------------------------------------------------------
  function renderOverdue(body) {
    var el = byId("overdue");
    byId("overdue-count").textContent = number(body.count);
    el.querySelectorAll("table, p.gm-more").forEach(function (node) { node.remove(); });
    if (!body.data.length) {
      showState(el, "empty", text.no_data);
      return;
    }
    showState(el, "drawn");
    var table = element("table", null, "gm-table gm-overdue-table");
    var head = table.createTHead().insertRow();
    [text.col_case, text.col_category, text.col_grid, text.col_department, text.col_late,
     text.col_step].forEach(function (label) { head.appendChild(element("th", label)); });
    var rows = table.createTBody();
    body.data.forEach(function (c) {
      var row = rows.insertRow();
      row.setAttribute("data-id", c.id);
      var link = element("a", "#" + c.id);
      link.href = settings.issue_url + c.id + "?lang=" + lang;
      row.insertCell().appendChild(link);
      row.insertCell().textContent = (lang === "en" ? c.category_en : c.category_zh) || c.category;
      row.insertCell().textContent = c.grid_name || text.no_grid;
      // no department: a case being handled is the grid worker's (a community matter)
      row.insertCell().textContent = c.department ||
        (HANDLED.indexOf(c.status) >= 0 ? text.grid_worker : text.no_department);
      var late = row.insertCell();
      late.textContent = hours(c.hours_late);
      late.className = "gm-late";
      var steps = row.insertCell();
      steps.className = "gm-late-steps";
      lateSteps(c).forEach(function (part) { steps.appendChild(element("span", part)); });
    });
    el.appendChild(table);
    if (body.count > body.data.length) {
      el.appendChild(element("p", text.more_rows.replace("{n}", body.count - body.data.length), "gm-more"));
    }
  }

  function lateSteps(c) {
    var parts = [];
    if (c.step_overdue) {
      parts.push((lang === "en" ? c.step_en : c.step_zh) + " +" + hours(c.step_hours_late));
    }
    if (c.due_hours_late !== null) {
      parts.push(text.promised + " +" + hours(c.due_hours_late));
    }
    return parts;
  }

  // -- the heat map -------------------------------------------------------------------------------
  function heatBox() {
    var el = byId("heat-map");
    return {width: Math.max(100, Math.round(el.clientWidth)), height: Math.max(100, Math.round(el.clientHeight))};
  }

  function renderHeat(body) {
    var el = byId("heat-map");
    if (!dash.map) {
      dash.map = window.L.map(el, {attributionControl: false, zoomSnap: 1, scrollWheelZoom: false,
                                   maxZoom: 19});
    }
    var map = dash.map;
    dash.layers.forEach(function (layer) { map.removeLayer(layer); });
    dash.layers = [];
    byId("heat-total").textContent = number(body.total) + " " + text.cases;
    if (!body.bounds) {
      map.setView([0, 0], 1);
      showState(el, "empty", text.no_data);
      return;
    }
    showState(el, body.cells.length ? "drawn" : "empty", body.cells.length ? null : text.no_data);
    var outlines = window.L.geoJSON(body.grids, {
      style: {color: dash.big ? "#9fb3c8" : "#546e7a", weight: 1, fill: true, fillOpacity: 0},
      onEachFeature: function (feature, layer) {
        var p = feature.properties;
        layer.bindTooltip(element("span", p.name + " · " + number(p.issues) + " " + text.cases), {sticky: true});
      }
    }).addTo(map);
    dash.layers.push(outlines);
    var b = body.bounds;
    map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
    if (map.getZoom() !== body.zoom) {
      map.setView(map.getCenter(), body.zoom);
    }
    var s = body.scale;
    var heat = window.L.heatLayer(body.cells, {radius: s.radius, blur: s.blur, max: s.max,
                                               maxZoom: s.max_zoom, minOpacity: s.min_opacity});
    heat.addTo(map);
    dash.layers.push(heat);
    dash.heat = heat;
  }

  // -- the league tables (the evaluation) ---------------------------------------------------------
  // How the evaluation's units read after a number (gis.rules.INDICATOR_UNITS), [中文, English].
  var HANDLED = ["dispatched", "in_progress", "reopened", "on_hold", "resolved"];
  var UNIT_SUFFIX = {hours: ["小时", "h"], per_1000: ["件/千户", "per 1,000 households"]};
  // The indicators a league table shows beside the score: how many, and what a leader asks first.
  var LEAGUE_COLUMNS = {
    department: ["dispatched", "on_time_rate", "return_rate"],
    worker: ["reports", "valid_report_rate", "on_time_verify_rate"],
  };

  function indicatorValue(indicator, value) {
    if (value === null || value === undefined) {
      return "–";
    }
    if (indicator.unit === "ratio" || indicator.unit === "rate") {
      return percent(value);
    }
    if (indicator.unit === "%" || indicator.unit === "percent") {
      return value.toFixed(1) + "%";
    }
    var rounded = Math.round(value * 10) / 10;
    var suffix = UNIT_SUFFIX[indicator.unit];  // a count reads as a plain number
    return rounded.toLocaleString(lang === "en" ? "en" : "zh-CN") +
      (suffix ? " " + suffix[lang === "en" ? 1 : 0] : "");
  }

  function change(value) {
    if (value === null || value === undefined) {
      return element("span", "–");
    }
    var up = value > 0;
    return element("span", (value === 0 ? "" : up ? "▲ " : "▼ ") + Math.abs(value).toFixed(1),
                   value === 0 ? "" : up ? "gm-up" : "gm-down");
  }

  function renderLeague(el, body) {
    el.querySelectorAll("table, p.gm-exports").forEach(function (node) { node.remove(); });
    var rows = (body.data || []).slice().sort(function (a, b) {
      return (b.score === null ? -1 : b.score) - (a.score === null ? -1 : a.score);
    });
    if (!rows.length) {
      showState(el, "empty", text.no_data);
      return;
    }
    showState(el, "drawn");
    var wanted = LEAGUE_COLUMNS[body.role] || [];
    var indicators = body.indicators || [];
    var shown = indicators.filter(function (i) { return wanted.indexOf(i.key) >= 0; });
    if (!shown.length) {
      shown = indicators.slice(0, 2);  // a role the page has no choice for: its first two
    }
    var table = element("table", null, "gm-table gm-league-table");
    var head = table.createTHead().insertRow();
    [text.col_rank, text.col_name].concat(shown.map(function (i) { return lang === "en" ? i.en : i.zh; }))
      .concat([text.col_score, text.col_grade, text.col_change])
      .forEach(function (label) { head.appendChild(element("th", label)); });
    var tbody = table.createTBody();
    rows.forEach(function (r, k) {
      var row = tbody.insertRow();
      row.setAttribute("data-key", r.key);
      row.insertCell().textContent = k + 1;
      row.insertCell().textContent = r.name;
      shown.forEach(function (i) { row.insertCell().textContent = indicatorValue(i, (r.values || {})[i.key]); });
      row.insertCell().textContent = r.score === null ? "–" : r.score.toFixed(1);
      var grade = row.insertCell();
      if (r.grade) {
        grade.appendChild(element("span", r.grade, "gm-grade gm-grade-" + r.grade));
      } else {
        grade.textContent = "–";
      }
      row.insertCell().appendChild(change(r.score_change));
    });
    el.appendChild(table);
  }

  function addExports(el, role) {
    var p = element("p", null, "gm-exports");
    var values = {period: filters().period, date: filters().date || settings.today};
    [["xlsx", text.export_xlsx, values], ["csv", text.export_csv, Object.assign({role: role}, values)]]
      .forEach(function (item) {
        var a = element("a", item[1]);
        a.href = settings.evaluation + "/export." + item[0] + "?" + query(item[2]);
        p.appendChild(a);
      });
    el.appendChild(p);
  }

  function loadLeague(role, id) {
    var el = byId(id);
    if (!settings.evaluation) {
      showState(el, "empty", text.no_data, text.evaluation_pending);
      return Promise.resolve();
    }
    var values = {role: role, period: filters().period, date: filters().date || settings.today};
    return get(settings.evaluation + "?" + query(values)).then(function (result) {
      dash.data["evaluation_" + role] = result.body;
      if (!result.ok) {
        return failed(el, result);
      }
      renderLeague(el, result.body);
      addExports(el, role);
    });
  }

  // -- loading ------------------------------------------------------------------------------------
  function panel(path, extra, id, render) {
    var el = byId(id);
    return api(path, extra).then(function (result) {
      dash.data[path] = result.body;
      if (!result.ok) {
        return failed(el, result);
      }
      render(result.body);
    });
  }

  function current(mine, render) {
    return function (body) {
      if (mine === sequence) {
        render(body);
      }
    };
  }

  function load() {
    var mine = ++sequence;
    var asked = query(filters());
    var box = heatBox();
    var kpis = api("/summary").then(function (result) {
      if (result.ok && mine === sequence) {
        dash.data["/summary"] = result.body;
        renderSummary(result.body);
      }
    });
    var trend = api("/trend").then(function (result) {
      dash.data["/trend"] = result.body;
      if (mine !== sequence) {
        return;
      }
      if (!result.ok) {
        failed(byId("chart-trend"), result);
        return failed(byId("chart-on-time"), result);
      }
      renderTrend(result.body);
      renderOnTime(result.body);
    });
    var work = [kpis, trend,
                panel("/overdue", {}, "overdue", current(mine, renderOverdue)),
                panel("/heat", box, "heat-map", current(mine, renderHeat)),
                loadLeague("department", "league-department"),
                loadLeague("worker", "league-worker")];
    return Promise.all(work).then(function () {
      if (mine === sequence) {
        dash.loads += 1;
        dash.loadedQuery = asked;
        if (!document.body.hasAttribute("data-ready")) {
          document.body.setAttribute("data-ready-at", String(Math.round(window.performance.now())));
        }
        document.body.setAttribute("data-ready", "true");
      }
    });
  }

  // -- layout ---------------------------------------------------------------------------------------
  function isBig() {
    return settings.screen === "big" || (settings.screen !== "tablet" && wide.matches);
  }

  function applyLayout() {
    dash.big = isBig();
    document.body.classList.toggle("gm-dash-big", dash.big);
  }

  function resize() {
    Object.keys(dash.charts).forEach(function (id) { dash.charts[id].resize(); });
    if (dash.map) {
      dash.map.invalidateSize();
    }
  }

  function onLayoutChange() {
    var before = dash.big;
    applyLayout();
    if (before !== dash.big) {
      writeUrl();
      resize();
      load();
    }
  }

  applyLayout();
  form.addEventListener("change", function () {
    writeUrl();
    load();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    writeUrl();
    load();
  });
  form.querySelector(".gm-dash-apply").hidden = true;  // changes apply at once
  wide.addEventListener("change", onLayoutChange);
  window.addEventListener("resize", resize);
  writeUrl();
  load();
}());
