/* Ticket QR scanning at the door: the phone camera (getUserMedia) + the browser's
   BarcodeDetector. The QR holds only the ticket code; a read fills the code field and
   submits the same form a person would type into, so the server rules apply unchanged. */
(function () {
  "use strict";
  var form = document.getElementById("scan-form");
  var input = document.getElementById("code");
  var video = document.getElementById("camera");
  var start = document.getElementById("camera-start");
  var stop = document.getElementById("camera-stop");
  var status = document.getElementById("camera-status");
  if (!form || !input || !video || !start || !stop) { return; }

  var supported = ("BarcodeDetector" in window) && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
  if (!supported) { return; }
  status.textContent = "Point the camera at the ticket's QR code.";
  start.classList.remove("hidden");

  // The ticket just shown is probably still in front of the camera: ignore it until it leaves
  // the picture, so its green result is not replaced by a "scanned twice" refusal.
  var result = document.getElementById("scan-result");
  var lastCode = result ? (result.getAttribute("data-code") || "") : "";
  var stream = null;
  var detector = null;
  var busy = false;
  var timer = null;

  function stopCamera() {
    if (timer) { clearInterval(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.classList.add("hidden");
    stop.classList.add("hidden");
    start.classList.remove("hidden");
    try { sessionStorage.removeItem("wtx-camera"); } catch (e) { /* private mode */ }
  }

  function submitCode(code) {
    if (busy) { return; }
    busy = true;
    input.value = code;
    try { sessionStorage.setItem("wtx-camera", "1"); } catch (e) { /* private mode */ }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
    form.submit();
  }

  function tick() {
    if (!detector || video.readyState < 2 || busy) { return; }
    detector.detect(video).then(function (codes) {
      if (!codes || !codes.length || !codes[0].rawValue) { lastCode = ""; return; }
      var code = codes[0].rawValue.trim();
      var normalized = code.replace(/[\s-]/g, "").toUpperCase();
      if (lastCode && normalized.slice(-lastCode.length) === lastCode) { return; }
      submitCode(code);
    }).catch(function () { /* a frame that cannot be read: try the next */ });
  }

  function startCamera() {
    detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.classList.remove("hidden");
        start.classList.add("hidden");
        stop.classList.remove("hidden");
        return video.play();
      })
      .then(function () { timer = setInterval(tick, 250); })
      .catch(function (err) {
        status.textContent = "The camera could not start (" + (err && err.name ? err.name : "error") + "). Type the code instead.";
        stopCamera();
      });
  }

  start.addEventListener("click", startCamera);
  stop.addEventListener("click", stopCamera);
  // Keep scanning after each result page if the camera was on.
  try { if (sessionStorage.getItem("wtx-camera") === "1") { startCamera(); } } catch (e) { /* private mode */ }
})();
