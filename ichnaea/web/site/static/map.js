// The coverage map: the tiles of `ichnaea map` over an optional base layer, as the
// #map element's data attributes say (no inline script; see pages.py).
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || typeof L === "undefined") {
    return;
  }
  var maxZoom = parseInt(el.dataset.maxZoom, 10);
  var map = L.map(el, { minZoom: 0, maxZoom: maxZoom, worldCopyJump: true });
  map.attributionControl.setPrefix("Leaflet");
  if (el.dataset.baseUrl) {
    L.tileLayer(el.dataset.baseUrl, {
      maxZoom: maxZoom,
      attribution: el.dataset.baseAttribution || "",
    }).addTo(map);
  }
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, {
      minZoom: 0,
      maxZoom: maxZoom,
      maxNativeZoom: maxZoom,
      attribution: "Coverage: Ichnaea contributors",
    }).addTo(map);
  }
  map.fitWorld();
  el.dataset.ready = "true";
})();
