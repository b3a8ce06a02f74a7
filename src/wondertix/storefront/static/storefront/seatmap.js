/* The patron seat map: draws the SVG from the seat list's checkboxes (data-m = "x y category
 * status[w]"), keeps the map, the list and "Your seats" in step. The checkboxes stay the form,
 * so the page works without this file and by keyboard or screen reader. */
(function () {
  "use strict";
  var form = document.querySelector("[data-seat-form]");
  var M = window.WonderTixSeatmap;
  if (!form || !M) { return; }
  var wrap = form.querySelector("[data-seatmap]"), svg = form.querySelector(".seatmap__svg");
  var inputs = Array.prototype.slice.call(form.querySelectorAll("input[data-m]"));
  var colors = [], prices = [];
  Array.prototype.forEach.call(form.querySelectorAll(".seat-legend [data-cat]"), function (li) {
    var i = parseInt(li.getAttribute("data-cat"), 10);
    colors[i] = li.getAttribute("data-color");
    prices[i] = parseInt(li.getAttribute("data-price"), 10) || 0;
  });
  var seats = inputs.map(function (input) {
    var p = input.getAttribute("data-m").split(" ");
    return {x: +p[0], y: +p[1], cat: +p[2], status: p[3].charAt(0), wheelchair: p[3].indexOf("w") > 0, chosen: input.checked};
  });
  var box = {minX: +svg.getAttribute("data-min-x"), minY: +svg.getAttribute("data-min-y"),
    width: +svg.getAttribute("data-width"), height: +svg.getAttribute("data-height")};
  wrap.hidden = false;
  var shapes = M.draw(svg, seats, {colors: colors, box: box});
  /* Staff pages: each seat's shape says in a tooltip what its list entry says (a house hold's note). */
  var titled = form.hasAttribute("data-seat-titles");
  function title(i) {
    if (!titled) { return; }
    var t = document.createElementNS("http://www.w3.org/2000/svg", "title");
    var row = inputs[i].closest("[data-row]"), sec = inputs[i].closest("[data-section]");
    t.textContent = sec.getAttribute("data-section") + " row " + row.getAttribute("data-row") + ": " + inputs[i].parentNode.textContent.trim();
    shapes[i].appendChild(t);
  }
  shapes.forEach(function (_, i) { title(i); });

  function money(cents) {
    return "$" + Math.floor(cents / 100).toLocaleString("en-US") + "." + ("0" + cents % 100).slice(-2);
  }
  function priceOf(cat) {
    var sel = form.querySelector("select[data-pt-for='" + cat + "']");
    if (sel) { return parseInt(sel.options[sel.selectedIndex].getAttribute("data-price"), 10) || 0; }
    return prices[cat] || 0;
  }
  function nameOf(input) {
    var row = input.closest("[data-row]"), sec = input.closest("[data-section]");
    return sec.getAttribute("data-section") + " row " + row.getAttribute("data-row") + " seat " + input.parentNode.textContent.replace(/^\s*Seat\s+/, "").replace(/\s*\(.*$/, "").trim();
  }
  var box2 = form.querySelector("[data-chosen]"), list = form.querySelector("[data-chosen-list]"), total = form.querySelector("[data-chosen-total]");
  function refresh() {
    var sum = 0, n = 0;
    list.textContent = "";
    inputs.forEach(function (input, i) {
      if (!input.checked) { return; }
      var li = document.createElement("li"), price = priceOf(seats[i].cat);
      li.textContent = nameOf(input) + ": " + money(price);
      var rm = document.createElement("button");
      rm.type = "button"; rm.className = "button--link"; rm.textContent = "Remove";
      rm.setAttribute("aria-label", "Remove " + nameOf(input));
      rm.addEventListener("click", function () { input.checked = false; changed(i); });
      li.appendChild(document.createTextNode(" "));
      li.appendChild(rm);
      list.appendChild(li);
      sum += price; n += 1;
    });
    box2.hidden = n === 0;
    total.textContent = n ? n + " seat" + (n === 1 ? "" : "s") + ", " + money(sum) + " before fees" : "";
  }
  function changed(i) {
    seats[i].chosen = inputs[i].checked;
    shapes[i] = M.update(shapes[i], seats[i], colors);
    title(i);
    refresh();
  }
  inputs.forEach(function (input, i) { input.addEventListener("change", function () { changed(i); }); });
  Array.prototype.forEach.call(form.querySelectorAll("select[data-pt-for]"), function (s) { s.addEventListener("change", refresh); });
  var z = M.zoomable(svg, box, function (i) {
    if (inputs[i].disabled) { return; }
    inputs[i].checked = !inputs[i].checked;
    changed(i);
  });
  form.querySelector("[data-zoom='in']").addEventListener("click", z.zoomIn);
  form.querySelector("[data-zoom='out']").addEventListener("click", z.zoomOut);
  form.querySelector("[data-zoom='reset']").addEventListener("click", z.reset);
  refresh();
})();
