/* WonderTix seat map drawing: a reusable SVG module (no library).
 *
 *   WonderTixSeatmap.draw(svg, seats, {colors: [...], box: {minX, minY, width, height}})
 *     seats: [{x, y, cat, status, wheelchair, chosen}] in chart units (one unit = one seat);
 *     status: "a" available, "h" held, "s" sold/taken, "x" not offered (house).
 *     Returns the drawn shapes, one per seat, in the same order (for update()).
 *   WonderTixSeatmap.update(shape, seat, colors)   redraw one seat (chosen on/off)
 *   WonderTixSeatmap.zoomable(svg, box, onTap)     +/−/reset buttons API, pinch and drag;
 *     onTap(index) is called with the data-i of the seat shape tapped.
 * Shapes differ by status as well as colour (the legend says what each means in words).
 */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function el(name, attrs) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) { node.setAttribute(k, attrs[k]); } }
    return node;
  }

  function shapeFor(seat, colors) {
    var g = el("g", {"class": "sm-seat sm-" + seat.status + (seat.chosen ? " sm-is-chosen" : "")});
    var cx = seat.x + 0.5, cy = seat.y + 0.5;
    if (seat.status === "s") {
      g.appendChild(el("path", {d: "M" + (cx - 0.3) + " " + (cy - 0.3) + "l0.6 0.6M" + (cx + 0.3) + " " + (cy - 0.3) + "l-0.6 0.6", "class": "sm-cross"}));
    } else if (seat.status === "h") {
      g.appendChild(el("circle", {cx: cx, cy: cy, r: 0.34, "class": "sm-held"}));
    } else if (seat.status === "x") {
      g.appendChild(el("circle", {cx: cx, cy: cy, r: 0.34, "class": "sm-off"}));
    } else {
      var fill = seat.chosen ? null : (colors[seat.cat] || "#4a7bd0");
      var base = seat.wheelchair
        ? el("rect", {x: cx - 0.42, y: cy - 0.42, width: 0.84, height: 0.84, rx: 0.12})
        : el("circle", {cx: cx, cy: cy, r: 0.42});
      if (fill) { base.setAttribute("fill", fill); } else { base.setAttribute("class", "sm-chosen"); }
      g.appendChild(base);
      if (seat.chosen) {
        g.appendChild(el("path", {d: "M" + (cx - 0.22) + " " + (cy + 0.02) + "l0.15 0.15 0.3-0.32", "class": "sm-tick"}));
      }
    }
    return g;
  }

  function draw(svg, seats, opts) {
    var box = opts.box;
    svg.setAttribute("viewBox", [box.minX - 1, box.minY - 1, box.width + 2, box.height + 2].join(" "));
    svg.style.aspectRatio = (box.width + 2) + " / " + Math.max(box.height + 2, (box.width + 2) / 2);
    var frag = document.createDocumentFragment(), shapes = [];
    for (var i = 0; i < seats.length; i++) {
      var g = shapeFor(seats[i], opts.colors);
      g.setAttribute("data-i", i);
      shapes.push(g);
      frag.appendChild(g);
    }
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    svg.appendChild(frag);
    return shapes;
  }

  function update(shape, seat, colors) {
    var g = shapeFor(seat, colors);
    g.setAttribute("data-i", shape.getAttribute("data-i"));
    shape.parentNode.replaceChild(g, shape);
    return g;
  }

  /* Zoom by changing the viewBox: buttons, pinch (two pointers) and drag (one). */
  function zoomable(svg, box, onTap) {
    var full = {x: box.minX - 1, y: box.minY - 1, w: box.width + 2, h: box.height + 2};
    var view = {x: full.x, y: full.y, w: full.w, h: full.h};
    function apply() { svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" ")); }
    function zoom(factor, cx, cy) {
      var w = Math.min(full.w, Math.max(6, view.w / factor)), h = view.h * (w / view.w);
      if (cx === undefined) { cx = view.x + view.w / 2; cy = view.y + view.h / 2; }
      view.x = cx - (cx - view.x) * (w / view.w);
      view.y = cy - (cy - view.y) * (h / view.h);
      view.w = w; view.h = h;
      apply();
    }
    function reset() { view = {x: full.x, y: full.y, w: full.w, h: full.h}; apply(); }
    function toChart(px, py) {
      var r = svg.getBoundingClientRect();
      return {x: view.x + (px - r.left) / r.width * view.w, y: view.y + (py - r.top) / r.height * view.h};
    }
    var pointers = {}, start = null, moved = 0, pinch = null;
    svg.addEventListener("pointerdown", function (e) {
      pointers[e.pointerId] = {x: e.clientX, y: e.clientY};
      var ids = Object.keys(pointers);
      if (ids.length === 1) { start = {x: e.clientX, y: e.clientY, vx: view.x, vy: view.y}; moved = 0; }
      if (ids.length === 2) {
        var a = pointers[ids[0]], b = pointers[ids[1]];
        pinch = {d: Math.hypot(a.x - b.x, a.y - b.y), w: view.w};
      }
    });
    svg.addEventListener("pointermove", function (e) {
      if (!pointers[e.pointerId]) { return; }
      pointers[e.pointerId] = {x: e.clientX, y: e.clientY};
      var ids = Object.keys(pointers);
      if (ids.length === 2 && pinch) {
        var a = pointers[ids[0]], b = pointers[ids[1]];
        var d = Math.hypot(a.x - b.x, a.y - b.y);
        var c = toChart((a.x + b.x) / 2, (a.y + b.y) / 2);
        if (pinch.d > 0) { zoom(view.w / (pinch.w * pinch.d / d), c.x, c.y); }
        moved = 99;
      } else if (ids.length === 1 && start) {
        moved = Math.max(moved, Math.hypot(e.clientX - start.x, e.clientY - start.y));
        if (moved > 6 && view.w < full.w) {
          var r = svg.getBoundingClientRect();
          view.x = start.vx - (e.clientX - start.x) / r.width * view.w;
          view.y = start.vy - (e.clientY - start.y) / r.height * view.h;
          apply();
        }
      }
    });
    function up(e) {
      var wasTap = Object.keys(pointers).length === 1 && moved <= 6;
      delete pointers[e.pointerId];
      if (Object.keys(pointers).length < 2) { pinch = null; }
      if (e.type === "pointerup" && wasTap) {
        var hit = e.target && e.target.closest ? e.target.closest("[data-i]") : null;
        if (hit) { onTap(parseInt(hit.getAttribute("data-i"), 10)); }
      }
    }
    svg.addEventListener("pointerup", up);
    svg.addEventListener("pointercancel", up);
    svg.style.touchAction = "none";
    return {zoomIn: function () { zoom(1.6); }, zoomOut: function () { zoom(1 / 1.6); }, reset: reset};
  }

  window.WonderTixSeatmap = {draw: draw, update: update, zoomable: zoomable};
})();
