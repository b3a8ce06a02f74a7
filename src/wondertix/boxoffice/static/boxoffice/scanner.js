/* Ticket QR scanning at the door: the phone camera (getUserMedia) and a QR reader — the
   browser's BarcodeDetector where it has one that reads QR codes, otherwise the bundled jsQR
   decoder (vendor/jsqr, loaded only then; iPhone Safari has no BarcodeDetector). Frames are
   drawn to a canvas and decoded a few times a second while the camera stream lives. The QR
   holds only the ticket code; a read goes through door-queue.js (window.wtxDoor.scan), which
   sends it like a typed code and queues it while offline; without that script it fills the
   code field and submits the form, so the server rules apply unchanged either way. */
(function () {
  "use strict";
  var form = document.getElementById("scan-form");
  var input = document.getElementById("code");
  var video = document.getElementById("camera");
  var start = document.getElementById("camera-start");
  var stop = document.getElementById("camera-stop");
  var status = document.getElementById("camera-status");
  var section = document.getElementById("scanner");
  if (!form || !input || !video || !start || !stop || !section) { return; }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { return; }

  var FRAME_GAP_MS = 200;      // pause between decodes: enough for a person, light on a phone
  var MAX_SIDE = 640;          // frames are scaled down to this before the fallback decodes them
  var EMPTY_FRAMES_TO_FORGET = 4;
  var fallbackSrc = section.getAttribute("data-fallback-src");

  status.textContent = "Point the camera at the ticket's QR code.";
  start.classList.remove("hidden");

  // The ticket just shown is probably still in front of the camera: ignore it until it leaves
  // the picture, so its green result is not replaced by a "scanned twice" refusal.
  var result = document.getElementById("scan-result");
  var lastCode = result ? (result.getAttribute("data-code") || "") : "";
  var emptyFrames = 0;
  var stream = null;
  var readFrame = null;
  var timer = null;
  var submitted = false;

  function stopCamera() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.classList.add("hidden");
    stop.classList.add("hidden");
    start.classList.remove("hidden");
    section.setAttribute("data-ready", "0");
    try { sessionStorage.removeItem("wtx-camera"); } catch (e) { /* private mode */ }
  }

  function loadFallback() {
    return new Promise(function (resolve, reject) {
      if (window.jsQR) { resolve(); return; }
      var script = document.createElement("script");
      script.src = fallbackSrc;
      script.onload = function () { if (window.jsQR) { resolve(); } else { reject(new Error("decoder")); } };
      script.onerror = function () { reject(new Error("decoder")); };
      document.head.appendChild(script);
    });
  }

  // A function that reads the current video frame and resolves with the QR text or "".
  function makeReader() {
    var native = window.BarcodeDetector && window.BarcodeDetector.getSupportedFormats
      ? window.BarcodeDetector.getSupportedFormats().then(function (formats) { return formats.indexOf("qr_code") !== -1; }, function () { return false; })
      : Promise.resolve(false);
    return native.then(function (hasQr) {
      if (hasQr) {
        var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        section.setAttribute("data-decoder", "native");
        return function () {
          return detector.detect(video).then(function (codes) {
            return codes && codes.length && codes[0].rawValue ? codes[0].rawValue : "";
          });
        };
      }
      return loadFallback().then(function () {
        var canvas = document.createElement("canvas");
        var ctx = canvas.getContext("2d", { willReadFrequently: true });
        section.setAttribute("data-decoder", "fallback");
        return function () {
          var w = video.videoWidth, h = video.videoHeight;
          if (!w || !h) { return Promise.resolve(""); }
          var scale = Math.min(1, MAX_SIDE / Math.max(w, h));
          var cw = Math.round(w * scale), ch = Math.round(h * scale);
          if (canvas.width !== cw || canvas.height !== ch) { canvas.width = cw; canvas.height = ch; }
          ctx.drawImage(video, 0, 0, cw, ch);
          var found = window.jsQR(ctx.getImageData(0, 0, cw, ch).data, cw, ch, { inversionAttempts: "dontInvert" });
          return Promise.resolve(found && found.data ? found.data : "");
        };
      });
    });
  }

  function handle(code) {
    var normalized = code.trim().replace(/[\s-]/g, "").toUpperCase();
    if (!normalized) { return; }
    if (lastCode && normalized.slice(-lastCode.length) === lastCode) { return; }
    lastCode = normalized.slice(normalized.lastIndexOf("/") + 1);
    if (window.wtxDoor) { window.wtxDoor.scan(code.trim()); return; }
    if (submitted) { return; }
    submitted = true;   // a page submit: the next page restarts the camera
    input.value = code.trim();
    try { sessionStorage.setItem("wtx-camera", "1"); } catch (e) { /* private mode */ }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
    form.submit();
  }

  // One decode, then the next after a pause: the loop lives exactly as long as the stream.
  function tick() {
    timer = null;
    if (!stream || !stream.active || submitted) { return; }
    var read = video.readyState >= 2 ? readFrame() : Promise.resolve("");
    read.then(function (code) {
      if (code) { emptyFrames = 0; handle(code); }
      else if (++emptyFrames >= EMPTY_FRAMES_TO_FORGET) { lastCode = ""; }
    }).catch(function () { /* a frame that cannot be read: try the next */ })
      .then(function () { if (stream && stream.active && !submitted) { timer = setTimeout(tick, FRAME_GAP_MS); } });
  }

  function startCamera() {
    start.classList.add("hidden");
    status.textContent = "Starting the camera…";
    // Ask for the camera first, still inside the tap (iPhone Safari wants the gesture); the
    // decoder loads meanwhile.
    var reader = makeReader();
    reader.catch(function () { /* reported below, once the camera promise chain reaches it */ });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (s) {
      stream = s;
      s.getTracks().forEach(function (t) { t.addEventListener("ended", stopCamera); });
      video.srcObject = s;
      video.classList.remove("hidden");
      stop.classList.remove("hidden");
      return video.play();
    }).then(function () {
      return reader;
    }).then(function (read) {
      readFrame = read;
      status.textContent = "Point the camera at the ticket's QR code.";
      section.setAttribute("data-ready", "1");
      timer = setTimeout(tick, 0);
    }).catch(function (err) {
      stopCamera();
      status.textContent = "The camera could not start (" + (err && err.name ? err.name : "error") + "). Type the code instead.";
    });
  }

  start.addEventListener("click", startCamera);
  stop.addEventListener("click", stopCamera);
  // Keep scanning after each result page if the camera was on (the page-submit path).
  try { if (sessionStorage.getItem("wtx-camera") === "1") { startCamera(); } } catch (e) { /* private mode */ }
})();
