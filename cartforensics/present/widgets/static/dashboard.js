// The fleet dashboard's view (cartforensics.FleetDashboard). It runs after timeline.js in one
// module (the widget's _esm is both files: h, button, svg and clear come from timeline.js).
// It draws what the kernel sends ("meta": the line counts per chart window, type and outcome
// in both modes, sent once; "view": what needs every line, after each filter; "status") and
// writes back the filters ("date_index", "types", "outcomes", "mode") and "request". Both
// charts are drawn here from the counts, on one time axis, so a filter redraws them at once.
// Every text from the logs is set with textContent (never as HTML).

const DASH = { left: 52, right: 14, top: 22, rateH: 130, gap: 40, mixH: 130, axis: 30, typesShown: 24 };

function fmtInt(k) { return Number(k).toLocaleString("en"); }

function pctText(num, den) {
  if (!den) return "no line";
  const p = (100 * num) / den;
  return (p > 0 && p < 0.1 ? p.toFixed(2) : p.toFixed(1)) + " %";
}

// A round top for an axis from 0 that holds v.
function niceMax(v, floor) {
  v = Math.max(v, floor);
  const e = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}

// Per chart window of the chosen dates: lines of the chosen types (the rates' denominator,
// whatever the outcome filter), lines per outcome that pass every filter, and each rate's
// numerator (its outcomes, among the outcomes chosen).
function dashSeries(meta, sel) {
  const pw = meta.per_window || 1;
  const b0 = sel.dates[0] * pw;
  const b1 = (sel.dates[1] + 1) * pw;
  const nb = Math.max(b1 - b0, 0);
  const nOut = meta.outcomes.length;
  const den = new Float64Array(nb);
  const mix = Array.from({ length: nOut }, () => new Float64Array(nb));
  const rates = meta.rates.map(([name, label, codes, color]) => {
    const on = codes.filter((c) => sel.outcomes.has(c));
    return { name, label, codes: new Set(on), color, shown: on.length > 0, num: new Float64Array(nb) };
  });
  const c = meta.counts;
  const codes = sel.mode === "go" ? c.go : c.le;
  let noTs = 0;
  for (let k = 0; k < c.n.length; k++) {
    if (!sel.types.has(c.type[k])) continue;
    const code = codes[k];
    const b = c.bin[k];
    if (b < 0) { if (sel.outcomes.has(code)) noTs += c.n[k]; continue; }
    if (b < b0 || b >= b1) continue;
    const i = b - b0;
    den[i] += c.n[k];
    if (!sel.outcomes.has(code)) continue;
    mix[code][i] += c.n[k];
    for (const r of rates) if (r.codes.has(code)) r.num[i] += c.n[k];
  }
  return { b0, nb, den, mix, rates, noTs };
}

function windowText(meta, bin) {
  const t0 = new Date(meta.start_ms + bin * meta.step_ms);
  const t1 = new Date(meta.start_ms + (bin + 1) * meta.step_ms);
  const f = (t) => t.toISOString().slice(0, 16).replace("T", " ");
  return f(t0) + " to " + f(t1) + " UTC";
}

function stepWords(ms) {
  const units = [[604800000, "week"], [86400000, "day"], [3600000, "hour"], [60000, "minute"]];
  for (const [u, w] of units) if (ms % u === 0) { const k = ms / u; return k === 1 ? w : k + " " + w + "s"; }
  return ms / 1000 + " s";
}

// A checkbox with its label: a chip of the type or outcome lists.
function checkChip(cls, checked, onToggle, ...kids) {
  const box = h("input", "");
  box.type = "checkbox";
  box.checked = checked;
  box.addEventListener("change", () => onToggle(box.checked));
  return h("label", "cfd-chip " + cls + (checked ? " cfd-on" : ""), box, ...kids);
}

function renderDashboard({ model, el }) {
  const root = h("div", "cft cfd cf-dashboard");
  el.append(root);
  const meta = () => model.get("meta") || {};
  let typeIndex = new Map();
  let expanded = false;
  let draws = 0;

  function ask(what) {
    model.set("request", Object.assign({ n: Date.now() + Math.random() }, what));
    model.save_changes();
  }

  function selection() {
    const m = meta();
    const idx = model.get("date_index") || [0, 0];
    const types = new Set();
    for (const t of model.get("types") || []) { const k = typeIndex.get(t === null ? "\u0000null" : "s" + t); if (k !== undefined) types.add(k); }
    const outs = new Set();
    for (const o of model.get("outcomes") || []) { const k = (m.outcomes || []).findIndex((x) => x[0] === o); if (k >= 0) outs.add(k); }
    return { dates: idx, types, outcomes: outs, mode: model.get("mode") || "go" };
  }

  // -- the head and the mode
  const head = h("div", "", h("h4", "", "Fleet: every line of every cart"),
    h("div", "cft-sub", "Filter the lines by date, type and outcome: both charts, the counts and the worst carts follow. Open a cart to step through it in the scrubber below."));
  const bGo = button("go (the service)", "cfd-mode-go", "outcomes as the service replayed the lines");
  const bLenient = button("lenient (the writer)", "cfd-mode-lenient", "outcomes as the writer meant the lines");
  const bReset = button("all lines", "cfd-reset", "clear every filter");
  const summary = h("div", "cft-meta cfd-summary");
  const modeRow = h("div", "cft-row", h("span", "cft-label", "mode"), bGo, bLenient, bReset);
  for (const [b, m] of [[bGo, "go"], [bLenient, "lenient"]]) {
    b.addEventListener("click", () => {
      if (model.get("mode") === m) return;
      const present = (meta().present || {})[m] || [];
      model.set("mode", m);
      model.set("outcomes", (meta().outcomes || []).filter((o, k) => present[k]).map((o) => o[0]));
      model.save_changes();
      drawAll();
    });
  }
  bReset.addEventListener("click", () => {
    const m = meta();
    model.set("date_index", [0, Math.max((m.date_labels || []).length - 1, 0)]);
    model.set("types", (m.type_values || []).slice());
    const present = (m.present || {})[model.get("mode")] || [];
    model.set("outcomes", (m.outcomes || []).filter((o, k) => present[k]).map((o) => o[0]));
    model.save_changes();
    drawAll();
  });

  // -- dates: two sliders over the date windows
  const dFrom = h("input", "cfd-date-from");
  const dTo = h("input", "cfd-date-to");
  for (const d of [dFrom, dTo]) { d.type = "range"; d.min = "0"; d.step = "1"; }
  dFrom.setAttribute("aria-label", "first date");
  dTo.setAttribute("aria-label", "last date");
  const dText = h("div", "cft-sub cfd-date-text");
  const dates = h("div", "cft-row cfd-dates", h("label", "cft-label", "from ", dFrom), h("label", "cft-label", "to ", dTo), dText);
  function onDates(moved) {
    let a = +dFrom.value, b = +dTo.value;
    if (a > b) { if (moved === dFrom) b = a; else a = b; dFrom.value = String(a); dTo.value = String(b); }
    model.set("date_index", [a, b]);
    model.save_changes();
    drawAll();
  }
  dFrom.addEventListener("input", () => onDates(dFrom));
  dTo.addEventListener("input", () => onDates(dTo));

  // -- types and outcomes: every choice visible as a checkbox
  const typesBox = h("div", "cfd-chips cfd-types");
  const typesNote = h("div", "cft-sub cfd-types-note");
  const bAllTypes = button("all types", "cfd-types-all", "choose every type");
  const bNoTypes = button("no type", "cfd-types-none", "clear the type choice");
  const bMoreTypes = button("", "cfd-types-more", "");
  const typesSet = h("fieldset", "cfd-set", h("legend", "", "types"), h("div", "cft-row", bAllTypes, bNoTypes, bMoreTypes), typesBox, typesNote);
  bAllTypes.addEventListener("click", () => setTypes((meta().type_values || []).slice()));
  bNoTypes.addEventListener("click", () => setTypes([]));
  bMoreTypes.addEventListener("click", () => { expanded = !expanded; drawFilters(); });
  function setTypes(values) { model.set("types", values); model.save_changes(); drawAll(); }
  const outsBox = h("div", "cfd-chips cfd-outcomes");
  const outsSet = h("fieldset", "cfd-set", h("legend", "", "outcomes"), outsBox);
  const filters = h("div", "cfd-filters", typesSet, outsSet);

  // -- the charts, one SVG on one time axis
  const chartBox = h("div", "cfd-chart");
  const legend = h("div", "cft-row cfd-legend");
  const chartNote = h("div", "cft-sub cfd-chart-note");

  // -- worst carts
  const worstBox = h("div", "cfd-worst");
  const status = h("div", "cft-status cfd-status");
  status.setAttribute("role", "status");

  root.append(head, modeRow, dates, summary, status, filters, chartBox, legend, chartNote, worstBox);

  function drawFilters() {
    const m = meta();
    const sel = selection();
    const mode = sel.mode;
    bGo.setAttribute("aria-pressed", mode === "go" ? "true" : "false");
    bLenient.setAttribute("aria-pressed", mode === "lenient" ? "true" : "false");
    const labels = m.date_labels || [];
    const last = Math.max(labels.length - 1, 0);
    dFrom.max = dTo.max = String(last);
    dFrom.disabled = dTo.disabled = labels.length < 2;
    dFrom.value = String(sel.dates[0]);
    dTo.value = String(sel.dates[1]);
    const whole = sel.dates[0] === 0 && sel.dates[1] === last;
    dText.textContent = labels.length
      ? labels[sel.dates[0]] + " to " + labels[sel.dates[1]] + " UTC, whole " + (m.date_unit || "day") + "s" +
        (whole ? " (all dates; lines without a readable ts included)" : " (lines without a readable ts left out)")
      : "no line has a readable ts";
    // types: the most frequent, and every chosen one (a choice never hides)
    clear(typesBox);
    const types = m.types || [];
    const values = m.type_values || [];
    const all = sel.types.size === types.length;
    let hidden = 0;
    types.forEach(([label, count], k) => {
      const show = expanded || k < DASH.typesShown || (!all && sel.types.has(k));
      if (!show) { hidden += 1; return; }
      const chip = checkChip("cfd-type", sel.types.has(k), (on) => {
        const now = new Set(selection().types);
        if (on) now.add(k); else now.delete(k);
        setTypes(values.filter((v, j) => now.has(j)));
      }, h("span", "cfd-chip-text", label), h("span", "cfd-count", fmtInt(count)));
      chip.dataset.type = String(k);
      typesBox.append(chip);
    });
    bMoreTypes.hidden = types.length <= DASH.typesShown;
    bMoreTypes.textContent = expanded ? "fewer types" : "all " + fmtInt(types.length) + " types";
    const chosen = types.filter((t, k) => sel.types.has(k)).map((t) => t[0]);
    typesNote.textContent = all ? "all " + fmtInt(types.length) + " types chosen" + (hidden ? " (" + fmtInt(hidden) + " rare ones not listed)" : "")
      : chosen.length ? fmtInt(chosen.length) + " of " + fmtInt(types.length) + " types chosen: " + chosen.join(", ")
      : "no type chosen: no line passes";
    // outcomes: those present in the mode, with their counts in it
    clear(outsBox);
    const present = (m.present || {})[mode] || [];
    (m.outcomes || []).forEach(([name, label, color, dark], k) => {
      if (!present[k]) return;
      const swatch = h("span", "cfd-swatch");
      swatch.style.background = color;
      const chip = checkChip("cfd-outcome", sel.outcomes.has(k), (on) => {
        const now = new Set(selection().outcomes);
        if (on) now.add(k); else now.delete(k);
        model.set("outcomes", (m.outcomes || []).filter((o, j) => now.has(j)).map((o) => o[0]));
        model.save_changes();
        drawAll();
      }, swatch, h("span", "cfd-chip-text", label), h("span", "cfd-count", fmtInt(present[k])));
      chip.dataset.outcome = name;
      outsBox.append(chip);
    });
  }

  function drawCharts() {
    const t0 = performance.now();
    const m = meta();
    const sel = selection();
    const s = dashSeries(m, sel);
    clear(chartBox);
    clear(legend);
    const W = Math.max(300, Math.floor(chartBox.clientWidth || root.clientWidth || 800));
    const x0 = DASH.left, x1 = W - DASH.right;
    const bw = s.nb ? (x1 - x0) / s.nb : 0;
    const yRate0 = DASH.top, yRate1 = yRate0 + DASH.rateH;
    const yMix0 = yRate1 + DASH.gap, yMix1 = yMix0 + DASH.mixH;
    const H = yMix1 + DASH.axis;
    const g = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, class: "cfd-svg", role: "img" });
    g.append(svg("title", {}));
    g.firstChild.textContent = "Rates and outcomes per " + stepWords(m.step_ms || 0);
    chartBox.append(g);
    const text = (x, y, str, attrs) => { const t = svg("text", Object.assign({ x, y }, attrs || {})); t.textContent = str; g.append(t); return t; };
    const modeWord = sel.mode === "go" ? "go (the service)" : "lenient (the writer)";
    text(x0, yRate0 - 8, "rate: share of the window's lines of the chosen types, " + modeWord, { class: "cfd-title" });
    text(x0, yMix0 - 8, "lines matched per " + stepWords(m.step_ms || 0) + ", by outcome (" + modeWord + ")", { class: "cfd-title" });
    if (!s.nb) {
      text(x0, yRate0 + 40, "no line has a readable ts", { class: "cfd-empty" });
      root.dataset.draws = String(++draws);
      return;
    }
    // rates
    let top = 0;
    for (const r of s.rates) if (r.shown) for (let i = 0; i < s.nb; i++) if (s.den[i]) top = Math.max(top, r.num[i] / s.den[i]);
    const rTop = niceMax(top, 0.05);
    const yr = (v) => yRate1 - (v / rTop) * (yRate1 - yRate0);
    let mTop = 0;
    for (let i = 0; i < s.nb; i++) { let t = 0; for (const col of s.mix) t += col[i]; mTop = Math.max(mTop, t); }
    mTop = niceMax(mTop, 1);
    const ym = (v) => yMix1 - (v / mTop) * (yMix1 - yMix0);
    for (const [y0, y1, topV, fmt, yf] of [[yRate0, yRate1, rTop, (v) => Math.round(v * 1000) / 10 + " %", yr], [yMix0, yMix1, mTop, fmtInt, ym]]) {
      for (const f of [0, 0.5, 1]) {
        if (yf === ym && !Number.isInteger(topV * f)) continue; // lines come whole
        const y = yf(topV * f);
        g.append(svg("line", { x1: x0, x2: x1, y1: y, y2: y, class: "cfd-grid" }));
        text(x0 - 4, y + 4, fmt(topV * f), { class: "cfd-tick", "text-anchor": "end" });
      }
      g.append(svg("line", { x1: x0, x2: x0, y1: y0, y2: y1, class: "cfd-axis" }));
    }
    // one time axis: ticks at date-window edges both panels share, labels at the bottom
    const pw = m.per_window || 1;
    const windows = s.nb / pw;
    const every = Math.max(1, Math.ceil(windows / Math.max(1, Math.floor((x1 - x0) / 90))));
    const labels = m.date_labels || [];
    for (let w = 0; w <= windows; w++) {
      const x = x0 + w * pw * bw;
      const major = w % every === 0;
      g.append(svg("line", { x1: x, x2: x, y1: yRate0, y2: yMix1 + (major ? 5 : 0), class: major ? "cfd-vgrid" : "cfd-vgrid cfd-minor" }));
      if (major && w < windows) text(x + 2, yMix1 + 17, labels[sel.dates[0] + w] || "", { class: "cfd-tick cfd-xtick" });
    }
    g.append(svg("line", { x1: x0, x2: x1, y1: yMix1, y2: yMix1, class: "cfd-axis cfd-xaxis" }));
    // the outcome bars
    const bars = svg("g", { class: "cfd-bars" });
    for (let i = 0; i < s.nb; i++) {
      let acc = 0;
      for (let k = 0; k < s.mix.length; k++) {
        const n = s.mix[k][i];
        if (!n) continue;
        const o = m.outcomes[k];
        const r = svg("rect", { x: x0 + i * bw + (bw > 4 ? 0.5 : 0), width: Math.max(bw - (bw > 4 ? 1 : 0), 0.5), y: ym(acc + n), height: Math.max(ym(acc) - ym(acc + n), 0.5), fill: o[2], class: "cfd-bar" });
        r.dataset.bin = String(s.b0 + i);
        r.dataset.outcome = o[0];
        r.dataset.n = String(n);
        const t = svg("title", {});
        t.textContent = windowText(m, s.b0 + i) + ": " + fmtInt(n) + " " + o[1] + " lines";
        r.append(t);
        bars.append(r);
        acc += n;
      }
    }
    g.append(bars);
    // the rate lines (a window without a line of the chosen types breaks the line)
    for (const r of s.rates) {
      if (!r.shown) continue;
      const grp = svg("g", { class: "cfd-rate cfd-rate-" + r.name });
      let pts = [];
      const flush = () => { if (pts.length > 1) grp.append(svg("polyline", { points: pts.join(" "), stroke: r.color, class: "cfd-line" })); pts = []; };
      for (let i = 0; i < s.nb; i++) {
        if (!s.den[i]) { flush(); continue; }
        const x = x0 + (i + 0.5) * bw, y = yr(r.num[i] / s.den[i]);
        pts.push(x.toFixed(1) + "," + y.toFixed(1));
        const c = svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 2.6, fill: r.color, class: "cfd-pt" });
        c.dataset.bin = String(s.b0 + i);
        c.dataset.num = String(r.num[i]);
        c.dataset.den = String(s.den[i]);
        const t = svg("title", {});
        t.textContent = windowText(m, s.b0 + i) + ": " + r.label + " " + fmtInt(r.num[i]) + " of " + fmtInt(s.den[i]) + " lines (" + pctText(r.num[i], s.den[i]) + ")";
        c.append(t);
        grp.append(c);
      }
      flush();
      g.append(grp);
    }
    // the legend and what the rates are over
    if (s.rates.some((r) => r.shown)) legend.append(h("span", "cft-label", "rates:"));
    for (const r of s.rates) {
      if (!r.shown) continue;
      const sw = h("span", "cfd-swatch cfd-swatch-line");
      sw.style.background = r.color;
      legend.append(h("span", "cfd-key", sw, r.label));
    }
    const shownOuts = (m.outcomes || []).filter((o, k) => sel.outcomes.has(k) && ((m.present || {})[sel.mode] || [])[k]);
    if (shownOuts.length) legend.append(h("span", "cft-label", "bars:"));
    for (const o of shownOuts) {
      const sw = h("span", "cfd-swatch");
      sw.style.background = o[2];
      legend.append(h("span", "cfd-key", sw, o[1]));
    }
    const nTypes = (m.types || []).length;
    chartNote.textContent = "One window is " + stepWords(m.step_ms || 0) + ". A rate is over every line of the " +
      (sel.types.size === nTypes ? "" : "chosen ") + "types in its window, whatever the outcome filter (which picks the failures counted)." +
      (m.no_ts ? " " + fmtInt(s.noTs) + " matched lines without a readable ts are not on the time axis." : "");
    root.dataset.draws = String(++draws);
    root.dataset.drawMs = (performance.now() - t0).toFixed(1);
  }

  function drawView() {
    const v = model.get("view") || {};
    const m = meta();
    clear(summary).append(
      h("span", "", h("b", "", fmtInt(v.lines || 0)), " of " + fmtInt(m.lines || 0) + " lines"),
      h("span", "", fmtInt(v.carts || 0) + " of " + fmtInt(m.carts || 0) + " carts"),
      h("span", "", (m.outcomes || []).map((o, k) => (v.mix || [])[k] ? o[1] + " " + fmtInt(v.mix[k]) : "").filter(Boolean).join(" · ") || "no lines"));
    clear(worstBox);
    const mode = v.mode || "go";
    worstBox.append(h("h4", "", "Worst carts among the matched lines (most problem lines in " + mode + " mode; lost: applied only as the writer meant them)"));
    const rows = v.worst || [];
    if (!rows.length) { worstBox.append(h("div", "cft-note", "no line passes the filters")); }
    else {
      const tab = h("table", "cft-table cfd-worst-table");
      tab.append(h("thead", "", h("tr", "", ...[["cart", 0], ["lines", 1], ["problems go", 1], ["problems lenient", 1], ["lost", 1], ["", 0]].map(([x, num]) => { const th = h("th", num ? "cft-num" : "", x); th.title = x; return th; }))));
      const body = h("tbody");
      for (const [shown, raw, lines, pg, pl, lost] of rows) {
        const open = button("open ▸", "cfd-open", v.filtered ? "open this cart below at the first line the filters match" : "open this cart in the scrubber below");
        open.dataset.cart = raw;
        open.addEventListener("click", () => ask({ do: "open", cart: raw }));
        const id = h("td", "cfd-cart", shown);
        id.title = shown;
        body.append(h("tr", "", id, h("td", "cft-num", fmtInt(lines)), h("td", "cft-num", fmtInt(pg)), h("td", "cft-num", fmtInt(pl)), h("td", "cft-num", fmtInt(lost)), h("td", "", open)));
      }
      tab.append(body);
      worstBox.append(h("div", "cft-tablebox", tab));
      if (v.more) worstBox.append(h("div", "cft-note", "… " + fmtInt(v.more) + " more carts with matched lines"));
    }
    root.dataset.view = String(v.key || 0);
  }

  function indexTypes() {
    typeIndex = new Map();
    (meta().type_values || []).forEach((t, k) => typeIndex.set(t === null ? "\u0000null" : "s" + t, k));
  }

  function drawAll() { drawFilters(); drawCharts(); }
  function drawMeta() {
    const m = meta();
    root.dataset.startMs = String(m.start_ms || 0);
    root.dataset.stepMs = String(m.step_ms || 0);
    indexTypes();
    drawAll();
  }
  function showStatus() { const t = model.get("status") || ""; status.textContent = t; status.hidden = !t; }

  const handlers = {
    "change:meta": drawMeta, "change:date_index": drawAll, "change:types": drawAll,
    "change:outcomes": drawAll, "change:mode": drawAll, "change:view": drawView, "change:status": showStatus,
  };
  for (const [ev, fn] of Object.entries(handlers)) model.on(ev, fn);
  let lastWidth = 0;
  let raf = 0;
  const resize = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(() => {
    const w = Math.floor(chartBox.clientWidth);
    if (w && w !== lastWidth) { lastWidth = w; cancelAnimationFrame(raf); raf = requestAnimationFrame(drawCharts); }
  });
  if (resize) resize.observe(chartBox);
  drawMeta();
  drawView();
  showStatus();
  requestAnimationFrame(drawCharts);
  return () => { for (const [ev, fn] of Object.entries(handlers)) model.off(ev, fn); if (resize) resize.disconnect(); };
}

export default { render: renderDashboard };
