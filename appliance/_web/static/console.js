// alprbox console: live reads and alerts over Server-Sent Events.
// Read data is only ever written with textContent or attributes, never innerHTML: a plate
// string is untrusted input (anyone can bolt anything onto a bumper).
"use strict";

(function () {
  function markMissingImage(img) {
    var span = document.createElement("span");
    span.className = "no-image";
    span.textContent = "no image";
    img.replaceWith(span);
  }

  function watchImage(img) {
    if (img.complete && img.naturalWidth === 0) {
      markMissingImage(img);
    } else {
      img.addEventListener("error", function () { markMissingImage(img); }, { once: true });
    }
  }

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function readRow(read) {
    var tr = document.createElement("tr");
    tr.id = "read-" + read.id;
    tr.className = "new";
    var cropCell = document.createElement("td");
    cropCell.className = "crop-cell";
    if (read.crop_url) {
      var img = document.createElement("img");
      img.className = "crop";
      img.alt = "Plate image";
      img.src = read.crop_url;
      watchImage(img);
      cropCell.appendChild(img);
    }
    tr.appendChild(cropCell);
    tr.appendChild(cell(read.text, "plate"));
    tr.appendChild(cell(Math.round(read.confidence * 100) + "%", "num"));
    tr.appendChild(cell(read.camera, "nowrap"));
    var timeCell = document.createElement("td");
    timeCell.className = "nowrap";
    var time = document.createElement("time");
    time.dateTime = read.first_seen;
    time.textContent = read.time;
    timeCell.appendChild(time);
    tr.appendChild(timeCell);
    return tr;
  }

  function alertRow(alert) {
    var tr = document.createElement("tr");
    tr.id = "alert-" + alert.id;
    tr.className = "alert-row new state-" + alert.state;
    var stateCell = document.createElement("td");
    var badge = document.createElement("span");
    badge.className = "badge state-badge";
    badge.textContent = alert.label;
    stateCell.appendChild(badge);
    if (alert.covert) {
      var covert = document.createElement("span");
      covert.className = "badge covert";
      covert.textContent = "covert";
      stateCell.appendChild(document.createTextNode(" "));
      stateCell.appendChild(covert);
    }
    tr.appendChild(stateCell);
    tr.appendChild(cell(alert.list, "mono"));
    tr.appendChild(cell(alert.category));
    tr.appendChild(cell(alert.text, "plate"));
    tr.appendChild(cell(alert.camera, "nowrap"));
    var timeCell = document.createElement("td");
    timeCell.className = "nowrap";
    var time = document.createElement("time");
    time.dateTime = alert.first_seen;
    time.textContent = alert.time;
    timeCell.appendChild(time);
    tr.appendChild(timeCell);
    var staleCell = document.createElement("td");
    if (alert.stale) {
      var stale = document.createElement("span");
      stale.className = "badge stale";
      stale.textContent = "STALE";
      staleCell.appendChild(stale);
    } else {
      staleCell.textContent = "current";
    }
    tr.appendChild(staleCell);
    var linkCell = document.createElement("td");
    // Links only ever point at an alert page by its id, whatever the event says.
    if (/^[0-9a-f]{32}$/.test(alert.id)) {
      var link = document.createElement("a");
      link.className = "verify";
      link.href = "/alerts/" + alert.id;
      link.textContent = "Verify";
      linkCell.appendChild(link);
    }
    tr.appendChild(linkCell);
    return tr;
  }

  // One stream for every page: "read" and "alert" events; each table takes its own kind.
  function startLive(kind, table, makeRow, emptyId) {
    var body = table.tBodies[0];
    var maxRows = parseInt(table.dataset.maxRows, 10) || 50;
    var status = document.getElementById("live-status");
    var empty = document.getElementById(emptyId);

    function setStatus(text, on) {
      status.textContent = text;
      status.classList.toggle("on", on);
      status.classList.toggle("off", !on);
    }

    var source = new EventSource("/events");
    source.addEventListener("open", function () { setStatus("Live", true); });
    source.addEventListener(kind, function (event) {
      var item = JSON.parse(event.data);
      if (document.getElementById(kind + "-" + item.id)) return;
      body.insertBefore(makeRow(item), body.firstChild);
      while (body.rows.length > maxRows) body.deleteRow(-1);
      if (empty) empty.hidden = true;
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream: the session locked or ended. Reloading shows the
        // sign-in page, which says why.
        setStatus("Disconnected", false);
        window.location.reload();
      } else {
        setStatus("Reconnecting…", false);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("img.crop").forEach(watchImage);
    var reads = document.getElementById("reads");
    if (reads) startLive("read", reads, readRow, "no-reads");
    var alerts = document.getElementById("alerts");
    if (alerts) startLive("alert", alerts, alertRow, "no-alerts");
  });
})();
