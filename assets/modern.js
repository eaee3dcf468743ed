// The GroveStreams-compatible entry point: /Modern/#signinoauth/?response_type=code&…
// Browsers never send the part after '#', so this script reads the parameters from the
// fragment and from the query string, and continues to /oauth/authorize on the same host.
(function () {
  "use strict";
  var merged = new URLSearchParams(window.location.search);
  var hash = window.location.hash.replace(/^#/, "");
  var at = hash.indexOf("?");
  var fragmentQuery = at >= 0 ? hash.slice(at + 1) : (hash.indexOf("=") >= 0 ? hash.replace(/^[^&=]*\//, "") : "");
  new URLSearchParams(fragmentQuery).forEach(function (value, name) {
    merged.set(name, value);
  });
  window.location.replace("/oauth/authorize?" + merged.toString());
})();
