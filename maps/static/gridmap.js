/*
 * GridMap page behaviour, served locally with every map page (no CDN, no build step).
 * GridMap.init(map, options) is called by the page once its Folium layers exist.
 *   options.lang            "zh" | "en"
 *   options.labelMinZoom    building labels are hidden below this zoom
 *   options.choropleth      a GeoJSON layer whose features carry colour_<mode> properties
 *   options.modes           the colour modes (e.g. ["raw", "rate"]); options.mode the first one
 *   options.animation       the HeatMapWithTime layer; options.animationMax its common maximum
 *   options.locateInsecure  the hint shown when geolocation cannot work (no secure context)
 */
(function () {
  "use strict";

  function styleFor(mode) {
    return function (feature) {
      var p = feature.properties || {};
      return {
        fillColor: p["colour_" + mode] || "#cccccc",
        fillOpacity: p.issues === 0 ? 0.15 : 0.45,
        color: "#555555",
        weight: 1,
      };
    };
  }

  function setMode(page, mode) {
    page.mode = mode;
    if (page.choropleth) {
      page.choropleth.setStyle(styleFor(mode));
    }
    var legends = document.querySelectorAll("[data-gm-mode]");
    for (var i = 0; i < legends.length; i++) {
      legends[i].hidden = legends[i].getAttribute("data-gm-mode") !== mode;
    }
    var radios = document.querySelectorAll('input[name="gm-colour-by"]');
    for (var j = 0; j < radios.length; j++) {
      radios[j].checked = radios[j].value === mode;
    }
  }

  function bindLegends() {
    document.addEventListener("click", function (ev) {
      var button = ev.target.closest ? ev.target.closest(".gm-legend-toggle") : null;
      if (!button) {
        return;
      }
      var box = button.parentElement;
      var collapsed = box.classList.toggle("gm-collapsed");
      button.setAttribute("aria-expanded", collapsed ? "false" : "true");
    });
  }

  function bindLabels(map, minZoom) {
    function update() {
      map.getContainer().classList.toggle("gm-labels-hidden", map.getZoom() < minZoom);
    }
    map.on("zoomend", update);
    update();
  }

  function bindLocate(hint) {
    if (window.isSecureContext) {
      return;
    }
    var links = document.querySelectorAll(".leaflet-control-locate a");
    for (var i = 0; i < links.length; i++) {
      links[i].title = hint;
      links[i].classList.add("gm-locate-insecure");
    }
  }

  var GridMap = {
    pages: [],
    init: function (map, options) {
      var page = { map: map, options: options, choropleth: options.choropleth || null };
      document.documentElement.lang = options.lang === "en" ? "en" : "zh-CN";
      if (options.labelMinZoom) {
        bindLabels(map, options.labelMinZoom);
      }
      if (page.choropleth && options.modes) {
        var radios = document.querySelectorAll('input[name="gm-colour-by"]');
        for (var i = 0; i < radios.length; i++) {
          radios[i].addEventListener("change", function (ev) {
            setMode(page, ev.target.value);
          });
        }
        setMode(page, options.mode || options.modes[0]);
      }
      if (options.animation && options.animationMax && options.animation._baseLayer) {
        // One colour scale for every week, so weeks can be compared.
        options.animation._baseLayer._max = options.animationMax;
      }
      if (options.locateInsecure) {
        bindLocate(options.locateInsecure);
      }
      this.pages.push(page);
      return page;
    },
    setMode: function (mode) {
      for (var i = 0; i < this.pages.length; i++) {
        setMode(this.pages[i], mode);
      }
    },
  };
  bindLegends();
  window.GridMap = GridMap;
})();
