// alprbox console: live reads over Server-Sent Events.
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

  function startLive(table) {
    var body = table.tBodies[0];
    var maxRows = parseInt(table.dataset.maxRows, 10) || 50;
    var status = document.getElementById("live-status");
    var empty = document.getElementById("no-reads");

    function setStatus(text, on) {
      status.textContent = text;
      status.classList.toggle("on", on);
      status.classList.toggle("off", !on);
    }

    var source = new EventSource("/events");
    source.addEventListener("open", function () { setStatus("Live", true); });
    source.addEventListener("read", function (event) {
      var read = JSON.parse(event.data);
      if (document.getElementById("read-" + read.id)) return;
      body.insertBefore(readRow(read), body.firstChild);
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
    var table = document.getElementById("reads");
    if (table) startLive(table);
  });
})();
