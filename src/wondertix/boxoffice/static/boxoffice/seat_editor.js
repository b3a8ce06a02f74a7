/* The seat-map editor (staff): draws a seating chart as SVG on a grid and edits it in the
   browser; one save sends the whole chart (the import's JSON document) to the server, which
   checks it and refuses what would orphan a sold or held seat. No library: plain DOM. */
(function () {
  "use strict";
  var SVGNS = "http://www.w3.org/2000/svg";
  var UNIT = 28; // pixels per grid unit
  var FLAGS = ["accessible", "companion", "restricted_view", "house_seat"];
  var root = document.querySelector(".seat-editor");
  if (!root) return;
  var svg = document.getElementById("se-map");
  var state = JSON.parse(document.getElementById("chart-data").textContent);
  var doc, seats, selected, cursor, soldBy, drag = null;

  function $(id) { return document.getElementById(id); }
  function intOf(id, dflt) { var v = parseInt($(id).value, 10); return isNaN(v) ? dflt : v; }
  function describe(s) {
    return s.section.name + " row " + s.row + " seat " + s.label + ", " + s.category +
      (s.flags.length ? " (" + s.flags.join(", ").replace(/_/g, " ") + ")" : "") +
      (s.locked ? ", " + s.locked : "") + (selected.has(s) ? ", selected" : "");
  }

  function load(data) {
    doc = data.chart;
    seats = [];
    doc.sections.forEach(function (sec) {
      sec.seats.forEach(function (s) {
        s.section = sec;
        s.locked = data.locked[sec.name + "\u0000" + s.row + "\u0000" + s.label] || "";
        seats.push(s);
      });
    });
    selected = new Set();
    cursor = seats[0] || null;
    soldBy = new Set(doc.categories.filter(function (c) { return data.sold_categories.indexOf(c.name) >= 0; }).map(function (c) { return c.id; }));
    $("chart-name-input").value = doc.name;
    $("chart-venue-input").value = doc.venue;
    renderCategories();
    draw();
  }

  function categoryColor(name) {
    for (var i = 0; i < doc.categories.length; i++) if (doc.categories[i].name === name) return doc.categories[i].color;
    return "#999999";
  }

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVGNS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function draw() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var minX = 0, minY = 0, maxX = 10, maxY = 6;
    seats.forEach(function (s) {
      minX = Math.min(minX, s.x); maxX = Math.max(maxX, s.x);
      minY = Math.min(minY, s.y); maxY = Math.max(maxY, s.y);
    });
    var x0 = (minX - 3) * UNIT, y0 = (minY - 3) * UNIT, w = (maxX - minX + 6) * UNIT, h = (maxY - minY + 6) * UNIT;
    svg.setAttribute("viewBox", [x0, y0, w, h].join(" "));
    svg.setAttribute("width", Math.min(w, 2400));
    var grid = el("g", { "class": "se-grid-lines", "aria-hidden": "true" }, svg);
    for (var gx = minX - 3; gx <= maxX + 3; gx++) el("line", { x1: gx * UNIT, y1: y0, x2: gx * UNIT, y2: y0 + h }, grid);
    for (var gy = minY - 3; gy <= maxY + 3; gy++) el("line", { x1: x0, y1: gy * UNIT, x2: x0 + w, y2: gy * UNIT }, grid);
    var stage = el("text", { x: x0 + w / 2, y: y0 + UNIT, "class": "se-stage", "text-anchor": "middle", "aria-hidden": "true" }, svg);
    stage.textContent = "Stage";
    var rows = {};
    seats.forEach(function (s) {
      var rk = s.section.name + "\u0000" + s.row;
      if (!rows[rk] || s.x < rows[rk].x) rows[rk] = s;
    });
    Object.keys(rows).forEach(function (rk) {
      var first = rows[rk];
      var t = el("text", { x: (first.x - 1) * UNIT, y: first.y * UNIT + 4, "class": "se-row-label", "text-anchor": "middle", "aria-hidden": "true" }, svg);
      t.textContent = first.row;
    });
    seats.forEach(function (s) {
      var g = el("g", { "class": "se-seat" + (selected.has(s) ? " se-selected" : "") + (s === cursor ? " se-cursor" : "") + (s.locked ? " se-locked" : ""), "data-seat": s.section.name + "/" + s.row + "/" + s.label }, svg);
      el("circle", { cx: s.x * UNIT, cy: s.y * UNIT, r: UNIT * 0.4, fill: categoryColor(s.category) }, g);
      var label = el("text", { x: s.x * UNIT, y: s.y * UNIT + 4, "text-anchor": "middle" }, g);
      label.textContent = s.flags.indexOf("accessible") >= 0 ? "♿" : s.label;
      if (s.locked) el("path", { d: "M" + (s.x * UNIT - 8) + " " + (s.y * UNIT - 8) + "l16 16m0 -16l-16 16", "class": "se-cross" }, g);
      el("title", {}, g).textContent = describe(s);
      g.__seat = s;
    });
    $("se-count").textContent = seats.length;
    $("se-selected-count").textContent = selected.size;
    $("se-cursor").textContent = cursor ? "Cursor: " + describe(cursor) : "No seat yet: add a row.";
    var list = $("se-sections");
    list.innerHTML = "";
    doc.sections.forEach(function (sec) { var o = document.createElement("option"); o.value = sec.name; list.appendChild(o); });
  }

  function say(text, isError) {
    $("se-error").hidden = !isError; $("se-status").hidden = !!isError;
    (isError ? $("se-error") : $("se-status")).textContent = text;
  }

  /* Categories: a table of labelled inputs, changed in place. */
  function renderCategories() {
    var body = document.querySelector("#se-categories tbody");
    body.innerHTML = "";
    doc.categories.forEach(function (c, i) {
      var tr = document.createElement("tr");
      function cell(type, field, label, extra) {
        var td = document.createElement("td"), input = document.createElement("input");
        input.type = type; input.setAttribute("aria-label", label + " of category " + (i + 1));
        if (type === "checkbox") input.checked = !!c[field];
        else input.value = c[field] === null || c[field] === undefined ? "" : c[field];
        Object.keys(extra || {}).forEach(function (k) { input.setAttribute(k, extra[k]); });
        input.addEventListener("change", function () {
          var before = c.name;
          if (type === "checkbox") c[field] = input.checked;
          else if (type === "number") c[field] = input.value === "" ? null : parseInt(input.value, 10);
          else c[field] = input.value;
          if (field === "name") seats.forEach(function (s) { if (s.category === before) s.category = c.name; });
          if (field === "rank" && c.rank === null) c.rank = 1;
          fillCategorySelects(); draw();
        });
        td.appendChild(input); tr.appendChild(td);
      }
      cell("text", "name", "Name", { maxlength: 80 });
      cell("number", "rank", "Rank", { min: 1, max: 1000 });
      cell("color", "color", "Colour");
      cell("number", "limit_per_performance", "Limit per performance", { min: 0 });
      cell("checkbox", "standing", "Standing area");
      var td = document.createElement("td"), rm = document.createElement("button");
      rm.type = "button"; rm.className = "btn btn-small btn-danger"; rm.textContent = "Remove";
      rm.setAttribute("aria-label", "Remove category " + c.name);
      rm.addEventListener("click", function () {
        if (c.id && soldBy.has(c.id)) { say("Price types sell “" + c.name + "”: it cannot be removed (rename it instead).", true); return; }
        if (seats.some(function (s) { return s.category === c.name; })) { say("“" + c.name + "” still has seats: give them another category first.", true); return; }
        doc.categories.splice(i, 1); renderCategories(); draw();
      });
      td.appendChild(rm); tr.appendChild(td); body.appendChild(tr);
    });
    fillCategorySelects();
  }

  function fillCategorySelects() {
    document.querySelectorAll(".se-category-select").forEach(function (sel) {
      var keep = sel.value;
      sel.innerHTML = "";
      doc.categories.forEach(function (c) {
        if (c.standing) return;
        var o = document.createElement("option"); o.value = o.textContent = c.name; sel.appendChild(o);
      });
      if (keep) sel.value = keep;
      if (!sel.value && sel.options.length) sel.value = sel.options[0].value;
    });
  }

  $("cat-add").addEventListener("click", function () {
    var n = doc.categories.length + 1, name = "Category " + n;
    while (doc.categories.some(function (c) { return c.name === name; })) name = "Category " + (++n);
    doc.categories.push({ name: name, rank: doc.categories.length + 1, color: "#2e8b57", limit_per_performance: null, standing: false });
    renderCategories();
    var inputs = document.querySelectorAll("#se-categories tbody tr:last-child input");
    if (inputs.length) inputs[0].focus();
  });

  /* Add a row of N seats. Positions are whole grid units; the curve lifts the ends of the
     row by `curve` units (a parabola), aisles widen the gap after the given positions. */
  $("se-add-row").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = $("ar-section").value.trim(), row = $("ar-row").value.trim(), n = intOf("ar-count", 0);
    if (!name || !row || n < 1 || n > 500) { say("Add a row: give the section, the row label and 1 to 500 seats.", true); return; }
    var section = doc.sections.filter(function (s) { return s.name === name; })[0];
    if (!section) { section = { name: name, seats: [] }; doc.sections.push(section); }
    var first = intOf("ar-first", 1), step = intOf("ar-numbers", 1), rtl = $("ar-direction").value === "rtl";
    var x = intOf("ar-x", 0), y = intOf("ar-y", 0), spacing = Math.max(1, intOf("ar-spacing", 1));
    var aisles = $("ar-aisles").value.split(/[ ,;]+/).map(function (v) { return parseInt(v, 10); }).filter(function (v) { return !isNaN(v); });
    var aisleWidth = Math.max(1, intOf("ar-aisle-width", 2)), curve = intOf("ar-curve", 0);
    var category = $("ar-category").value, made = [], clash = [];
    var mid = (n - 1) / 2;
    for (var i = 0; i < n; i++) {
      var number = first + step * (rtl ? n - 1 - i : i);
      var t = mid ? (i - mid) / mid : 0;
      var s = { row: row, label: String(number), x: x, y: y - Math.round(curve * t * t), category: category, flags: [], section: section, locked: "" };
      if (seats.some(function (o) { return o.section === section && o.row === row && o.label === s.label; })) clash.push(s.label);
      made.push(s);
      x += spacing + (aisles.indexOf(i + 1) >= 0 ? aisleWidth : 0);
    }
    if (clash.length) { say("Row " + row + " of " + name + " already has seats " + clash.join(", ") + ": nothing added.", true); return; }
    made.forEach(function (s) { section.seats.push(s); seats.push(s); });
    selected = new Set(made); cursor = made[0];
    $("ar-row").value = nextRow(row); $("ar-y").value = y + 1;
    say("Added row " + row + " of " + name + ": " + n + " seats (selected).");
    draw();
  });

  function nextRow(row) {
    if (/^[A-Y]$/.test(row)) return String.fromCharCode(row.charCodeAt(0) + 1);
    if (/^\d+$/.test(row)) return String(parseInt(row, 10) + 1);
    return row;
  }

  /* Selection actions. */
  function withSelection(fn) {
    if (!selected.size) { say("Select seats first (click, drag, or Space on the map).", true); return; }
    fn(Array.from(selected)); draw();
  }
  $("sel-apply-category").addEventListener("click", function () {
    withSelection(function (list) { var c = $("sel-category").value; list.forEach(function (s) { s.category = c; }); say(list.length + " seats are now “" + c + "”."); });
  });
  $("sel-apply-flags").addEventListener("click", function () {
    withSelection(function (list) {
      var flags = FLAGS.filter(function (f) { return $("sel-" + f).checked; });
      list.forEach(function (s) { s.flags = flags.slice(); });
      say(list.length + " seats: " + (flags.length ? flags.join(", ").replace(/_/g, " ") : "no flags") + ".");
    });
  });
  $("sel-move").addEventListener("click", function () { withSelection(function (list) { move(list, intOf("sel-dx", 0), intOf("sel-dy", 0)); }); });
  $("sel-apply-curve").addEventListener("click", function () {
    withSelection(function (list) {
      var c = intOf("sel-curve", 0), rows = {};
      list.forEach(function (s) { var k = s.section.name + "\u0000" + s.row; (rows[k] = rows[k] || []).push(s); });
      Object.keys(rows).forEach(function (k) {
        var r = rows[k], lo = Math.min.apply(null, r.map(function (s) { return s.x; })), hi = Math.max.apply(null, r.map(function (s) { return s.x; }));
        var mid = (lo + hi) / 2, half = (hi - lo) / 2 || 1;
        r.forEach(function (s) { var t = (s.x - mid) / half; s.y -= Math.round(c * t * t); });
      });
      say("Curved " + Object.keys(rows).length + " row(s).");
    });
  });
  $("sel-all").addEventListener("click", function () { selected = new Set(seats); draw(); });
  $("sel-none").addEventListener("click", function () { selected = new Set(); draw(); });
  $("sel-delete").addEventListener("click", function () { withSelection(removeSeats); });

  function move(list, dx, dy) {
    list.forEach(function (s) { s.x += dx; s.y += dy; });
    say("Moved " + list.length + " seats.");
  }
  function removeSeats(list) {
    var gone = new Set(list);
    seats = seats.filter(function (s) { return !gone.has(s); });
    doc.sections.forEach(function (sec) { sec.seats = sec.seats.filter(function (s) { return !gone.has(s); }); });
    doc.sections = doc.sections.filter(function (sec) { return sec.seats.length || sec.id; });
    selected = new Set(); cursor = seats[0] || null;
    say("Deleted " + list.length + " seats (saved only when you save).");
  }

  /* Mouse: click a seat, Shift+click adds; drag on the map selects a rectangle. */
  function point(ev) {
    var p = svg.createSVGPoint(); p.x = ev.clientX; p.y = ev.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  }
  svg.addEventListener("mousedown", function (ev) {
    var g = ev.target.closest && ev.target.closest(".se-seat"), p = point(ev);
    svg.focus({ preventScroll: true });
    if (g && g.__seat) {
      var s = g.__seat;
      if (ev.shiftKey || ev.ctrlKey || ev.metaKey) { if (selected.has(s)) selected.delete(s); else selected.add(s); }
      else selected = new Set([s]);
      cursor = s; draw(); ev.preventDefault(); return;
    }
    drag = { x: p.x, y: p.y, add: ev.shiftKey, rect: el("rect", { "class": "se-band", x: p.x, y: p.y, width: 0, height: 0 }, svg) };
    ev.preventDefault();
  });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    var p = point(ev);
    drag.rect.setAttribute("x", Math.min(p.x, drag.x)); drag.rect.setAttribute("y", Math.min(p.y, drag.y));
    drag.rect.setAttribute("width", Math.abs(p.x - drag.x)); drag.rect.setAttribute("height", Math.abs(p.y - drag.y));
  });
  window.addEventListener("mouseup", function (ev) {
    if (!drag) return;
    var p = point(ev), x1 = Math.min(p.x, drag.x) / UNIT, x2 = Math.max(p.x, drag.x) / UNIT, y1 = Math.min(p.y, drag.y) / UNIT, y2 = Math.max(p.y, drag.y) / UNIT;
    var inside = seats.filter(function (s) { return s.x >= x1 && s.x <= x2 && s.y >= y1 && s.y <= y2; });
    if (!drag.add) selected = new Set();
    inside.forEach(function (s) { selected.add(s); });
    if (inside.length) cursor = inside[0];
    drag = null; draw();
    say(inside.length + " seats selected.");
  });

  /* Keyboard on the map. */
  function nearest(dx, dy) {
    if (!cursor) return seats[0] || null;
    var best = null, bestScore = Infinity;
    seats.forEach(function (s) {
      var ax = s.x - cursor.x, ay = s.y - cursor.y;
      var along = ax * dx + ay * dy, across = Math.abs(ax * dy) + Math.abs(ay * dx);
      if (along <= 0) return;
      var score = along + 3 * across;
      if (score < bestScore) { bestScore = score; best = s; }
    });
    return best || cursor;
  }
  var ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  svg.addEventListener("keydown", function (ev) {
    var arrow = ARROWS[ev.key];
    if (arrow && ev.shiftKey) { withSelection(function (list) { move(list, arrow[0], arrow[1]); }); }
    else if (arrow) { cursor = nearest(arrow[0], arrow[1]); draw(); }
    else if ((ev.key === " " || ev.key === "Enter") && cursor) {
      if (selected.has(cursor)) selected.delete(cursor); else selected.add(cursor);
      draw();
    } else if (ev.key === "Escape") { selected = new Set(); draw(); }
    else if ((ev.key === "a" || ev.key === "A") && (ev.ctrlKey || ev.metaKey)) { selected = new Set(seats); draw(); }
    else if ((ev.key === "r" || ev.key === "R") && cursor && !ev.ctrlKey && !ev.metaKey) {
      seats.forEach(function (s) { if (s.section === cursor.section && s.row === cursor.row) selected.add(s); });
      draw();
    } else if (ev.key === "Delete" || ev.key === "Backspace") { withSelection(removeSeats); }
    else return;
    ev.preventDefault();
  });
  document.addEventListener("keydown", function (ev) {
    if ((ev.key === "s" || ev.key === "S") && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); save(); }
  });

  /* Save: the whole chart, the import's document plus the ids of categories and sections. */
  function payload() {
    return {
      format: doc.format, version: doc.version, venue: $("chart-venue-input").value.trim(), name: $("chart-name-input").value.trim(),
      categories: doc.categories.map(function (c) {
        return { id: c.id === undefined ? null : c.id, name: c.name, rank: c.rank, color: c.color, limit_per_performance: c.limit_per_performance, standing: !!c.standing };
      }),
      sections: doc.sections.map(function (sec) {
        return { id: sec.id === undefined ? null : sec.id, name: sec.name, seats: sec.seats.map(function (s) {
          return { row: s.row, label: s.label, x: s.x, y: s.y, category: s.category, flags: s.flags };
        }) };
      })
    };
  }
  function save() {
    var button = $("se-save-button");
    button.disabled = true;
    fetch(root.getAttribute("data-save-url"), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": document.querySelector("#editor-csrf input[name=csrfmiddlewaretoken]").value },
      body: JSON.stringify(payload())
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (res.ok) { load(res.body); $("chart-title").textContent = doc.name; say(res.body.message); }
      else say(res.body.message || "The chart was not saved.", true);
    }).catch(function () {
      say("The chart was not saved: the server did not answer. Try again.", true);
    }).then(function () { button.disabled = false; });
  }
  $("se-save").addEventListener("submit", function (ev) { ev.preventDefault(); save(); });

  load(state);
})();
