// The range control's absolute form sends epoch milliseconds, as Grafana's URLs carry them:
// the two datetime-local values are wall times in the viewer's zone (the form's data-zone),
// turned into instants here. Without this script the form sends the wall times and the
// zone, and the server converts them the same way.
(function () {
  "use strict";

  function offsetAt(epoch, zone) {
    var format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    });
    var parts = {};
    format.formatToParts(new Date(epoch)).forEach(function (part) {
      parts[part.type] = Number(part.value);
    });
    var wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute,
      parts.second);
    return wall - Math.floor(epoch / 1000) * 1000;
  }

  function instant(value, zone) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
    if (!m) {
      return null;
    }
    var wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    var guess = wall - offsetAt(wall, zone);
    return wall - offsetAt(guess, zone);
  }

  function sendInstants(event) {
    var form = event.target;
    var zone = form.getAttribute("data-zone");
    var from = form.elements.namedItem("from");
    var to = form.elements.namedItem("to");
    var start = instant(from.value, zone);
    var end = instant(to.value, zone);
    if (start === null || end === null) {
      return;  // let the server name what is wrong
    }
    event.preventDefault();
    var query = new URLSearchParams(new FormData(form));
    query.set("from", String(start));
    query.set("to", String(end));
    query.delete("timezone");
    window.location.assign(form.getAttribute("action") + "?" + query.toString());
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("absolute-range");
    if (form) {
      form.addEventListener("submit", sendInstants);
    }
  });
})();
