// Live list: rows that match the page's filters appear (new ones on top) or change in place
// as they commit. Server-Sent Events first; polling when EventSource is unavailable or
// fails. Rows are keyed, so a row the page already shows is replaced, never repeated. The
// page works without this script; it only keeps the first page moving.
(function () {
  "use strict";
  var box = document.getElementById("live");
  var tbody = document.querySelector("table.rows tbody");
  if (!box || !tbody) {
    return;
  }
  var cursor = box.getAttribute("data-cursor");
  var pollSeconds = parseFloat(box.getAttribute("data-poll-seconds")) || 2;
  var shown = {};
  var source = null;
  var stopped = false;

  Array.prototype.forEach.call(tbody.querySelectorAll("tr[data-key]"), function (tr) {
    shown[tr.getAttribute("data-key")] = tr;
  });

  function say(text, state) {
    box.hidden = false;
    box.textContent = text;
    box.setAttribute("data-state", state);
  }

  function url(attribute) {
    var target = new URL(box.getAttribute(attribute), window.location.href);
    target.searchParams.set("after", cursor);
    return target.toString();
  }

  function rowOf(row) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-key", row.key);
    tr.className = "live-new";
    row.cells.forEach(function (cell) {
      var td = document.createElement("td");
      var text = document.createTextNode(cell.text);
      var shown = text;
      if (cell.badge) {  // as cell.html shows it
        shown = document.createElement("span");
        shown.className = cell.badge;
        shown.appendChild(text);
      }
      if (cell.link) {
        var a = document.createElement("a");
        a.href = cell.link;
        a.appendChild(shown);
        shown = a;
      }
      td.appendChild(shown);
      tr.appendChild(td);
    });
    return tr;
  }

  function apply(rows) {
    var empty = tbody.querySelector("tr:not([data-key])");
    rows.forEach(function (row) {
      var tr = rowOf(row);
      var old = shown[row.key];
      if (old) {
        tbody.replaceChild(tr, old);
      } else {
        if (empty) {
          empty.remove();
          empty = null;
        }
        tbody.insertBefore(tr, tbody.firstChild);
      }
      shown[row.key] = tr;
    });
  }

  function received(data) {
    if (data.rows) {
      apply(data.rows);
    }
    cursor = data.cursor;
    box.setAttribute("data-cursor", cursor);
  }

  function stop(text) {
    stopped = true;
    if (source) {
      source.close();
    }
    say(text, "ended");
  }

  function poll() {
    if (stopped) {
      return;
    }
    fetch(url("data-poll"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          throw new Error("ended");
        }
        if (!response.ok) {
          throw new Error("retry");
        }
        return response.json();
      })
      .then(function (data) {
        if (data.reset) {
          window.location.reload();
          return;
        }
        received(data);
        say("Live (polling)", "polling");
        window.setTimeout(poll, pollSeconds * 1000);
      })
      .catch(function (error) {
        if (error.message === "ended") {
          stop("Live updates ended: sign in again");
          return;
        }
        say("Live: reconnecting", "reconnecting");
        window.setTimeout(poll, pollSeconds * 1000);
      });
  }

  function stream() {
    source = new EventSource(url("data-stream"));
    source.onopen = function () {
      say("Live", "streaming");
    };
    source.addEventListener("rows", function (event) {
      received(JSON.parse(event.data));
    });
    source.addEventListener("cursor", function (event) {
      received(JSON.parse(event.data));
    });
    source.addEventListener("reset", function () {
      source.close();
      window.location.reload();
    });
    source.addEventListener("end", function (event) {
      stop("Live updates ended: " + JSON.parse(event.data).reason);
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (a cap, a proxy that buffers): poll instead.
        source = null;
        poll();
      } else {
        say("Live: reconnecting", "reconnecting");
      }
    };
  }

  if (window.EventSource && box.getAttribute("data-transport") !== "poll") {
    stream();
  } else {
    poll();
  }
})();
