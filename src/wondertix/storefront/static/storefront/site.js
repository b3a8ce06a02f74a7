/* WonderTix storefront: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  function money(cents) {
    var whole = Math.floor(cents / 100), rest = cents % 100;
    return "$" + whole.toLocaleString("en-US") + "." + (rest < 10 ? "0" : "") + rest;
  }

  /* "12", "12.5", "$12.50" -> 1250; null when not an amount. Integer math only. */
  function parseCents(text) {
    var m = /^\s*\$?\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$/.exec(text || "");
    if (!m) { return null; }
    var frac = m[2] ? (m[2].length === 1 ? m[2] + "0" : m[2]) : "00";
    return parseInt(m[1], 10) * 100 + parseInt(frac, 10);
  }

  /* The hold countdown: starts from the server's seconds-left, so the phone's clock never matters. */
  function countdown(box) {
    var total = parseInt(box.getAttribute("data-seconds-left"), 10);
    if (isNaN(total)) { return; }
    var started = Date.now();
    var clock = box.querySelector(".countdown__clock");
    var time = box.querySelector(".countdown__time");
    var alertBox = box.querySelector(".countdown__alert");
    var warned = false;
    clock.hidden = false;
    function tick() {
      var left = Math.max(0, total - Math.floor((Date.now() - started) / 1000));
      var m = Math.floor(left / 60), s = left % 60;
      time.textContent = m + ":" + (s < 10 ? "0" : "") + s;
      if (left <= 120 && !warned) {
        warned = true;
        box.classList.add("countdown--urgent");
        alertBox.textContent = "Less than two minutes left to complete your order.";
      }
      if (left <= 0) {
        clock.textContent = "Your hold has expired and the seats were released.";
        alertBox.textContent = "Your hold has expired.";
        window.clearInterval(timer);
        /* On the cart page, show the server's view (expired, with "Hold these seats again"). */
        if (box.hasAttribute("data-reload-on-expiry")) { window.setTimeout(function () { window.location.reload(); }, 1500); }
      }
    }
    var timer = window.setInterval(tick, 1000);
    tick();
  }

  /* − / + buttons around each quantity input. */
  function stepper(input) {
    var max = parseInt(input.getAttribute("max") || input.getAttribute("data-max"), 10);
    var label = document.querySelector('label[for="' + input.id + '"]');
    var name = label ? label.textContent.trim() : "tickets";
    function make(text, delta, aria) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "stepper__btn";
      b.textContent = text;
      b.setAttribute("aria-label", aria);
      b.addEventListener("click", function () {
        var v = parseInt(input.value, 10) || 0;
        v = Math.max(0, v + delta);
        if (!isNaN(max)) { v = Math.min(max, v); }
        input.value = v;
        input.dispatchEvent(new Event("input", { bubbles: true }));
      });
      return b;
    }
    var minus = make("−", -1, "One fewer " + name);
    var plus = make("+", 1, "One more " + name);
    input.parentNode.insertBefore(minus, input);
    input.parentNode.appendChild(plus);
    function sync() {
      var v = parseInt(input.value, 10) || 0;
      minus.disabled = input.disabled || v <= 0;
      plus.disabled = input.disabled || (!isNaN(max) && v >= max);
    }
    input.addEventListener("input", sync);
    sync();
  }

  /* "2 tickets · $75.00" under the quantities, as the patron chooses. */
  function selectionTotal(form) {
    var out = form.querySelector(".selection-total");
    if (!out) { return; }
    function update() {
      var count = 0, cents = 0, unknown = false;
      form.querySelectorAll(".price-row").forEach(function (row) {
        var qty = parseInt((row.querySelector("input.qty") || {}).value, 10) || 0;
        /* "Your price" only matters once a pay-what-you-can ticket is chosen. */
        var amountBox = row.querySelector(".price-row__amount");
        if (amountBox && !amountBox.classList.contains("field--error")) { amountBox.hidden = qty <= 0; }
        if (qty <= 0) { return; }
        var price = row.getAttribute("data-price");
        var unit = price === "" ? parseCents((row.querySelector("input.amount") || {}).value) : parseInt(price, 10);
        if (unit === null) { unknown = true; unit = 0; }
        count += qty;
        cents += qty * (unit + (parseInt(row.getAttribute("data-fee"), 10) || 0));
      });
      out.hidden = count === 0;
      out.textContent = count + " ticket" + (count === 1 ? "" : "s") + " · " + money(cents) + (unknown ? " + your price" : "") + " incl. fees";
    }
    form.addEventListener("input", update);
    update();
  }

  /* One submit per click: a double tap must not send the form twice. */
  function submitOnce(form) {
    var sent = false;
    form.addEventListener("submit", function (e) {
      if (sent) { e.preventDefault(); return; }
      sent = true;
      var button = form.querySelector('button[type="submit"]');
      if (button) {
        button.setAttribute("data-label", button.textContent);
        window.setTimeout(function () {
          button.disabled = true;
          if (button.getAttribute("data-busy-label")) { button.textContent = button.getAttribute("data-busy-label"); }
        }, 0);
      }
    });
    /* Coming back with the back button restores the page as it was: make it usable again. */
    window.addEventListener("pageshow", function (e) {
      if (!e.persisted) { return; }
      sent = false;
      var button = form.querySelector('button[type="submit"]');
      if (button && button.getAttribute("data-label")) { button.disabled = false; button.textContent = button.getAttribute("data-label"); }
    });
  }

  /* The Pay button and the total it promises follow the donation as it is typed. */
  function payFollowsDonation(form) {
    var button = form.querySelector("button[data-pay-base]");
    var donation = form.querySelector("#id_donation_amount");
    var expected = form.querySelector("input[data-expected-total]");
    if (!button || !donation || !expected) { return; }
    var withoutGift = parseInt(button.getAttribute("data-pay-base"), 10) - parseInt(button.getAttribute("data-pay-donation"), 10);
    donation.addEventListener("input", function () {
      var gift = donation.value.trim() === "" ? 0 : parseCents(donation.value);
      if (gift === null || isNaN(withoutGift)) { return; }
      var total = withoutGift + gift;
      button.textContent = "Pay " + money(total);
      expected.value = String(total);
    });
  }

  function presets(box) {
    var input = document.getElementById("id_amount");
    if (!input) { return; }
    box.hidden = false;
    var buttons = box.querySelectorAll("button[data-amount]");
    function mark() {
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(parseCents(b.getAttribute("data-amount")) === parseCents(input.value))); });
    }
    buttons.forEach(function (b) {
      b.addEventListener("click", function () { input.value = b.getAttribute("data-amount"); mark(); });
    });
    input.addEventListener("input", mark);
    mark();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".countdown[data-seconds-left]").forEach(countdown);
    document.querySelectorAll(".stepper input").forEach(stepper);
    document.querySelectorAll("form.ticket-form").forEach(selectionTotal);
    document.querySelectorAll("form[data-submit-once]").forEach(submitOnce);
    document.querySelectorAll("form.checkout__form").forEach(payFollowsDonation);
    document.querySelectorAll(".presets").forEach(presets);
    var problem = document.getElementById("refusal") || document.getElementById("form-errors");
    if (problem) { problem.focus(); }
  });
})();
