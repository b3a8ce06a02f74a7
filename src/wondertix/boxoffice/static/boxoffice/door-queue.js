/* Door check-in without page reloads, and a queue for a short loss of Wi-Fi.

   Each code (typed, or read by the camera through window.wtxDoor.scan) is posted to the same
   URL as the form, asking for JSON. When the request cannot reach the server (fetch rejects,
   or the browser says it is offline) the scan is kept in localStorage with the time it was
   made, shown as "queued (offline)", and sent again when the connection returns (the "online"
   event, plus retries with a bounded backoff). The server records the original scan time and
   refuses a ticket already checked in (by this phone or another) with its usual message, which
   is shown next to the queued code. Without fetch the form posts as a plain page. */
(function () {
  "use strict";
  var form = document.getElementById("scan-form");
  var input = document.getElementById("code");
  if (!form || !input || !window.fetch || !window.FormData || !window.localStorage) { return; }

  var KEY = "wtx-door-queue-" + form.getAttribute("data-performance");
  var MAX_QUEUED = 500;        // a door's worth of scans; more is refused with a message
  var MAX_ATTEMPTS = 8;        // automatic retries per outage (2 s doubling, at most 60 s apart)
  var BASE_DELAY_MS = 2000;
  var MAX_DELAY_MS = 60000;
  var MAX_SHOWN = 50;          // sent results kept on screen

  var url = form.getAttribute("action");
  var undoUrl = form.getAttribute("data-undo");
  var csrfField = form.querySelector("input[name=csrfmiddlewaretoken]");
  var csrf = csrfField ? csrfField.value : "";
  var outcome = document.getElementById("scan-outcome");
  var panel = document.getElementById("offline-queue");
  var countEl = document.getElementById("queue-count");
  var statusEl = document.getElementById("queue-status");
  var itemsEl = document.getElementById("queue-items");
  var sendBtn = document.getElementById("queue-send");
  var syncedHeading = document.getElementById("queue-synced-heading");
  var syncedEl = document.getElementById("queue-synced");

  var syncing = false;
  var attempts = 0;
  var retryTimer = null;

  function load() {
    try {
      var q = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(q) ? q : [];
    } catch (e) { return []; }
  }

  function save(q) {
    try { localStorage.setItem(KEY, JSON.stringify(q)); return true; } catch (e) { return false; }
  }

  function normalize(code) { return String(code).replace(/[\s-]/g, "").toUpperCase(); }

  function clockTime(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: "numeric", minute: "2-digit", second: "2-digit" });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function updateStats(stats) {
    if (!stats) { return; }
    ["checked_in", "sold"].forEach(function (name) {
      var node = document.querySelector("[data-stat=" + name + "]");
      if (node && stats[name] !== undefined) { node.textContent = String(stats[name]); }
    });
  }

  function showResult(data) {
    if (!outcome) { return; }
    var box = el("div", "scan-result " + (data.ok ? "scan-ok" : "scan-bad"), (data.ok ? "✓ " : "✗ ") + data.message);
    box.id = "scan-result";
    box.setAttribute("role", "alert");
    box.setAttribute("data-code", data.code || "");
    if (data.accommodation) { box.appendChild(el("div", "accommodation", "Accommodation: " + data.accommodation)); }
    if (data.code) { box.appendChild(el("div", "muted", "Ticket " + data.code)); }
    outcome.textContent = "";
    outcome.appendChild(box);
    if (data.ok && undoUrl) {
      var undo = el("form", "inline");
      undo.method = "post";
      undo.action = undoUrl;
      [["csrfmiddlewaretoken", csrf], ["code", data.code], ["back", url]].forEach(function (pair) {
        var field = el("input");
        field.type = "hidden"; field.name = pair[0]; field.value = pair[1];
        undo.appendChild(field);
      });
      var button = el("button", "btn btn-secondary btn-small", "Undo this check-in");
      button.type = "submit";
      undo.appendChild(button);
      outcome.appendChild(undo);
    }
  }

  function showNotice(text) {
    if (!outcome) { return; }
    var box = el("div", "scan-result scan-queued", text);
    box.id = "scan-result";
    box.setAttribute("role", "alert");
    outcome.textContent = "";
    outcome.appendChild(box);
  }

  // One request. Resolves with the server's JSON answer (admitted or refused); rejects with
  // .retry = true when the answer never came (offline, a 5xx) and .signin = true when the
  // session ended (the answer is the sign-in page, or a CSRF refusal): the scan stays queued.
  function post(code, scannedAt) {
    var body = new FormData();
    body.append("csrfmiddlewaretoken", csrf);
    body.append("code", code);
    if (scannedAt) { body.append("scanned_at", scannedAt); }
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin", redirect: "follow",
      headers: { "Accept": "application/json", "X-CSRFToken": csrf }
    }).catch(function () {
      var err = new Error("offline");
      err.retry = true;
      throw err;
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") !== -1 && response.status < 500) { return response.json(); }
      var err = new Error("HTTP " + response.status);
      if (response.status >= 500) { err.retry = true; } else { err.signin = true; }
      throw err;
    });
  }

  function render() {
    var q = load();
    countEl.textContent = String(q.length);
    itemsEl.textContent = "";
    q.forEach(function (item) {
      itemsEl.appendChild(el("li", "queued", item.code + " — scanned " + clockTime(item.scanned_at) + " — queued (offline)"));
    });
    var hasSynced = syncedEl.children.length > 0;
    syncedHeading.classList.toggle("hidden", !hasSynced);
    panel.classList.toggle("hidden", q.length === 0 && !hasSynced);
    sendBtn.classList.toggle("hidden", q.length === 0);
  }

  function enqueue(code, scannedAt) {
    var q = load();
    var normalized = normalize(code);
    for (var i = 0; i < q.length; i++) {
      if (normalize(q[i].code) === normalized) {
        showNotice("Ticket " + normalized + " is already queued (offline).");
        return;
      }
    }
    if (q.length >= MAX_QUEUED) {
      showNotice("The offline queue is full (" + MAX_QUEUED + " scans): check tickets in by the door list when the connection returns.");
      return;
    }
    q.push({ code: normalized, scanned_at: scannedAt });
    if (!save(q)) {
      showNotice("This phone cannot store the scan: write down ticket " + normalized + ".");
      return;
    }
    showNotice("Ticket " + normalized + " queued (offline), not checked yet: it is sent when the connection returns.");
    statusEl.textContent = "No connection. Scans are kept on this phone and sent when it returns.";
    render();
  }

  function recordSynced(item, data) {
    var li = el("li", data.ok ? "synced-ok" : "synced-bad",
      (data.ok ? "✓ " : "✗ ") + item.code + " (scanned " + clockTime(item.scanned_at) + "): " + data.message);
    syncedEl.insertBefore(li, syncedEl.firstChild);
    while (syncedEl.children.length > MAX_SHOWN) { syncedEl.removeChild(syncedEl.lastChild); }
  }

  function scheduleRetry() {
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    attempts += 1;
    if (attempts > MAX_ATTEMPTS) {
      statusEl.textContent = "Still no connection. The queue is sent when it returns, or press Send.";
      return;
    }
    var delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * Math.pow(2, attempts - 1));
    retryTimer = setTimeout(sync, delay);
  }

  // Send the queue oldest first, one at a time; each answer removes its scan from the queue.
  function sync() {
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    if (syncing) { return; }
    var q = load();
    if (!q.length) { render(); return; }
    syncing = true;
    var item = q[0];
    statusEl.textContent = "Sending queued scans…";
    post(item.code, item.scanned_at).then(function (data) {
      save(load().filter(function (other) { return other.code !== item.code; }));
      recordSynced(item, data);
      updateStats(data.stats);
      attempts = 0;
      syncing = false;
      if (!load().length) {
        statusEl.textContent = "All queued scans were sent.";
        // The "queued (offline)" notice is no longer true; the results are in the list.
        if (outcome && outcome.querySelector(".scan-queued")) { outcome.textContent = ""; }
      }
      render();
      sync();
    }, function (err) {
      syncing = false;
      if (err.signin) {
        statusEl.textContent = "Sign in again to send the queued scans (they are kept on this phone).";
      } else {
        statusEl.textContent = "No connection. Scans are kept on this phone and sent when it returns.";
        scheduleRetry();
      }
      render();
    });
  }

  function scan(code) {
    var normalized = normalize(code);
    if (!normalized) { return; }
    var scannedAt = new Date().toISOString();
    if (navigator.onLine === false) { enqueue(normalized, scannedAt); return; }
    post(normalized, null).then(function (data) {
      updateStats(data.stats);
      showResult(data);
      if (load().length) { sync(); }
    }, function (err) {
      enqueue(normalized, scannedAt);
      if (err.signin) {
        statusEl.textContent = "Sign in again to send the queued scans (they are kept on this phone).";
      } else {
        scheduleRetry();
      }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var code = input.value;
    input.value = "";
    input.focus();
    scan(code);
  });
  sendBtn.addEventListener("click", function () { attempts = 0; sync(); });
  window.addEventListener("online", function () { attempts = 0; sync(); });
  window.addEventListener("offline", function () {
    statusEl.textContent = "No connection. Scans are kept on this phone and sent when it returns.";
  });
  window.wtxDoor = { scan: scan, sync: sync };
  render();
  if (load().length && navigator.onLine !== false) { sync(); }
})();
