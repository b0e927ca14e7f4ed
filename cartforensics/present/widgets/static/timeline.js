// The timeline view of cartforensics.TimelineScrubber: one ES module, no dependency, no
// network. It draws what the kernel sends (traits "cart", "frame", "carts", "status",
// "notes_list", "context_rows", "vocab") and writes back "position", "cart_id",
// "cart_filter" and "request". Every text from the logs is set with textContent (never as
// HTML). Without a kernel, mountStatic() draws the same view from data embedded in the page.
// A live view keeps the frames the kernel sends ahead of its steps (custom messages
// {frames_ahead}): a step to one of them draws at once, and the frame set for it confirms it.

const SVG = "http://www.w3.org/2000/svg";

function h(tag, cls, ...kids) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    e.append(typeof k === "string" || typeof k === "number" ? String(k) : k);
  }
  return e;
}

function button(text, cls, title) {
  const b = h("button", "cft-btn " + cls, text);
  b.type = "button";
  if (title) b.title = title;
  return b;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function clear(e) {
  while (e.firstChild) e.removeChild(e.firstChild);
  return e;
}

function badge(vocab, code) {
  const o = (vocab.outcomes || [])[code] || ["?", "?", "#999999", false];
  const b = h("span", "cft-badge" + (o[3] ? " cft-dark" : ""), o[1]);
  b.style.background = o[2];
  b.dataset.outcome = o[0];
  return b;
}

function badgeByName(vocab, name) {
  const k = (vocab.outcomes || []).findIndex((o) => o[0] === name);
  return badge(vocab, k < 0 ? 0 : k);
}

function segments(parent, segs) {
  for (const [text, isEscape] of segs || []) {
    parent.append(isEscape ? h("span", "cft-esc", text) : document.createTextNode(text));
  }
  return parent;
}

function tableRow(cols, kind, cells) {
  const tr = h("tr", kind ? "cft-" + kind : "");
  if (kind === "del") tr.title = "removed";
  cells.forEach(([text, old, full], k) => {
    const td = h("td", (cols[k] && cols[k][1] ? "cft-num" : "") + (old !== null ? " cft-chg" : ""));
    if (old !== null) td.append(h("s", "", old), " ");
    td.append(text);
    td.title = old !== null ? old + " → " + full : full;
    tr.append(td);
  });
  return tr;
}

// A table drawn as its "box" element; given the table drawn before (prev), the box and the
// rows that are the same are kept, and only the rows that differ are drawn again.
function table(t, cls, prev) {
  const colsText = JSON.stringify(t.cols);
  let d = prev && prev.colsText === colsText && prev.cls === cls ? prev : null;
  if (!d) {
    const tab = h("table", "cft-table " + (cls || ""));
    const head = h("tr");
    for (const [name, num] of t.cols) head.append(h("th", num ? "cft-num" : "", name));
    const body = h("tbody");
    tab.append(h("thead", "", head), body);
    const note = h("div", "cft-note");
    d = { box: h("div", "cft-tablebox", tab, note), body, note, cls, colsText, rowTexts: [] };
  }
  const body = d.body;
  t.rows.forEach(([kind, cells], k) => {
    const text = JSON.stringify([kind, cells]);
    if (d.rowTexts[k] === text) return;
    const tr = tableRow(t.cols, kind, cells);
    if (k < body.childElementCount) body.children[k].replaceWith(tr);
    else body.append(tr);
    d.rowTexts[k] = text;
  });
  while (body.childElementCount > t.rows.length) body.lastElementChild.remove();
  d.rowTexts.length = t.rows.length;
  d.note.textContent = t.more > 0 ? "… " + t.more.toLocaleString("en") + " more unchanged rows not shown (export the state for all of them)" : "";
  d.note.hidden = !(t.more > 0);
  return d;
}

// parent's children made [[key, build()], ...] in that order: a child drawn before under the
// same key is kept where it is, the others are built (their order is the keys' order)
function syncKids(parent, items) {
  const old = new Map();
  for (const e of parent.children) old.set(e._cftKey, e);
  const want = items.map(([key, build]) => {
    const e = old.get(key);
    if (e) { old.delete(key); return e; }
    const made = build();
    made._cftKey = key;
    return made;
  });
  for (const e of old.values()) e.remove();
  let cur = parent.firstElementChild;
  for (const e of want) {
    if (e === cur) cur = cur.nextElementSibling;
    else parent.insertBefore(e, cur);
  }
}

// The parts of a box drawn again only where what they show changed: parts(box, [[key,
// value, build(old)], ...]) keeps a part whose value is the same as at the last draw (old:
// {el} of the part drawn before, or undefined).
function parts(box, list) {
  const was = box._cftParts || {};
  const now = {};
  const els = [];
  for (const [key, value, build] of list) {
    const text = JSON.stringify(value);
    const old = was[key];
    const el = old && old.text === text ? old.el : build(old);
    now[key] = { text, el };
    els.push(el);
  }
  box._cftParts = now;
  els.forEach((e, k) => {
    const cur = box.childNodes[k];
    if (cur !== e) { if (cur) cur.replaceWith(e); else box.append(e); }
  });
  while (box.childNodes.length > els.length) box.lastChild.remove();
  return box;
}

function binOf(cart, p) {
  // the strip's bin that holds position p's line
  if (p <= 0) return 0;
  const edges = cart.edges;
  if (!edges) return p - 1;
  let lo = 0, hi = edges.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (edges[mid] <= p - 1) lo = mid; else hi = mid - 1; }
  return Math.min(lo, cart.bins - 1);
}

function render({ model, el }) {
  const isStatic = !!model.get("static_view");
  const root = h("div", "cft cf-scrubber" + (isStatic ? " cft-static" : " cft-live"));
  el.append(root);
  const vocab = () => model.get("vocab") || {};
  const cartData = () => model.get("cart") || {};
  let n = 0;

  function ask(what) {
    const req = Object.assign({ n: Date.now() + Math.random() }, what);
    model.set("request", req);
    model.save_changes();
  }

  // frames sent ahead, by position, of the rev (cart, skips, notes, blame) last drawn
  const FRAMES_KEPT = 64;
  const ahead = new Map();
  let aheadRev = null;
  function keep(f) {
    if (!f || f.rev === undefined || f.rev !== aheadRev) return;
    ahead.delete(f.position);
    ahead.set(f.position, f);
    while (ahead.size > FRAMES_KEPT) ahead.delete(ahead.keys().next().value);
  }
  // positions this view asked for that the kernel has not drawn yet, oldest first
  let asked = [];

  function go(p) {
    const c = cartData();
    p = Math.max(0, Math.min(Math.round(p), c.lines || 0));
    slider.value = String(p);
    lineInput.value = String(p);
    const f = isStatic ? null : ahead.get(p);
    if (!isStatic && p !== model.get("position")) asked.push(p);
    model.set("position", p);
    model.save_changes();
    if (f) drawFrameData(f);
  }

  // -- the header and the cart picker
  const title = h("div", "cf-title");
  const picker = h("div", "cft-row cf-picker");
  const cartSelect = h("select", "cf-cart-select");
  cartSelect.title = "open another cart";
  const cartFilter = h("input", "cf-cart-filter");
  cartFilter.placeholder = "filter carts by id";
  cartFilter.type = "search";
  const cartsNote = h("span", "cft-sub cf-carts-note");
  picker.append(h("label", "cft-label", "cart ", cartSelect), h("label", "cft-label", "filter ", cartFilter), cartsNote);
  cartSelect.addEventListener("change", () => { model.set("cart_id", cartSelect.value); model.save_changes(); });
  let filterTimer = null;
  cartFilter.addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => { model.set("cart_filter", cartFilter.value); model.save_changes(); }, 150);
  });

  // -- the strip
  const strip = h("div", "cf-strip");
  const stripNote = h("div", "cft-sub cft-strip-note");

  // -- navigation
  const slider = h("input", "cf-slider");
  slider.type = "range";
  slider.min = "0";
  slider.setAttribute("aria-label", "position in the cart");
  const posText = h("span", "cf-position");
  const bStart = button("|◀ start", "cf-start", "the empty cart before line 1");
  const bPrevProblem = button("◀ problem", "cf-prev-problem", "previous line the service did not apply");
  const bBack = button("◀ line", "cf-step-back", "one line back");
  const bForward = button("line ▶", "cf-step-forward", "one line on");
  const bNextProblem = button("problem ▶", "cf-next-problem", "next line the service did not apply");
  const bEnd = button("end ▶|", "cf-end", "the cart after its last line");
  const nav = h("div", "cft-row cf-nav", bStart, bPrevProblem, bBack, slider, bForward, bNextProblem, bEnd);
  slider.addEventListener("input", () => { posText.textContent = positionText(+slider.value); go(+slider.value); });
  // the keys, handled here: a host (JupyterLab's command mode) may keep them from the input
  const keySteps = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1, PageUp: 10, PageDown: -10 };
  slider.addEventListener("keydown", (e) => {
    const p = model.get("position");
    let q = null;
    if (e.key in keySteps) q = p + keySteps[e.key];
    else if (e.key === "Home") q = 0;
    else if (e.key === "End") q = cartData().lines || 0;
    if (q === null) return;
    e.preventDefault();
    e.stopPropagation();
    go(q);
  });
  bStart.addEventListener("click", () => go(0));
  bEnd.addEventListener("click", () => go(cartData().lines || 0));
  bBack.addEventListener("click", () => go(model.get("position") - 1));
  bForward.addEventListener("click", () => go(model.get("position") + 1));
  // the next (dir > 0) or previous position of a sorted list, or a word that there is none
  function jump(positions, dir, what) {
    const p = model.get("position");
    const q = dir > 0 ? positions.find((x) => x > p) : [...positions].reverse().find((x) => x < p);
    if (q === undefined) showStatus("no " + what + " line " + (dir > 0 ? "after" : "before") + " this one");
    else go(q);
  }
  const problemStep = (dir) => jump((cartData().problems || {}).go || [], dir, "problem");
  bPrevProblem.addEventListener("click", () => problemStep(-1));
  bNextProblem.addEventListener("click", () => problemStep(1));

  const lineInput = h("input", "cf-line-input");
  lineInput.type = "number";
  lineInput.min = "0";
  lineInput.addEventListener("change", () => go(+lineInput.value));
  const bParting = button("where go and lenient part", "cf-parting", "the first line one mode applies and the other does not");
  bParting.addEventListener("click", () => { const q = cartData().parting; if (q) go(q); });
  const tools = h("div", "cft-row cf-tools", posText, h("label", "cft-label", "go to line ", lineInput), bParting);
  const bSkip = button("skip this line", "cf-skip", "replay the cart as if this line had never been written");
  const bReset = button("use every line again", "cf-reset", "switch every skipped line back on");
  const timeInput = h("input", "cf-time");
  timeInput.type = "text";
  const bSeek = button("go to time", "cf-seek", "the cart as it was at this time");
  const bExport = button("export JSON file", "cf-export", "write the state of both modes and the history to a JSON file beside the notebook");
  bSkip.addEventListener("click", () => ask({ do: "skip" }));
  bReset.addEventListener("click", () => ask({ do: "reset" }));
  bSeek.addEventListener("click", () => ask({ do: "seek_time", text: timeInput.value }));
  timeInput.addEventListener("keydown", (e) => { if (e.key === "Enter") ask({ do: "seek_time", text: timeInput.value }); });
  bExport.addEventListener("click", () => ask({ do: "export" }));
  const live = h("div", "cft-row cf-live", bSkip, bReset, h("label", "cft-label", "time ", timeInput), bSeek, bExport);
  const skipText = h("div", "cft-skipline cf-skip-text");
  const status = h("div", "cft-status cf-status");
  status.setAttribute("role", "status");

  // -- the line, the comparison, the two sides
  const lineBox = h("div", "cf-line");
  const lineCode = h("pre", "cft-code cf-code");
  const lineLabel = h("summary", "");
  const lineDetails = h("details", "cf-line-json", lineLabel, lineCode);
  const compare = h("div", "cf-compare");
  const parting = h("div", "cft-sub cf-parting-text");
  const goSide = h("div", "cft-side cft-go cf-go-state");
  const leSide = h("div", "cft-side cft-lenient cf-lenient-state");
  const sides = h("div", "cft-sides cf-sides", goSide, leSide);
  const legend = h("div", "cft-sub cft-legend-row", "Highlights against the previous position: ",
    h("span", "cft-legend cft-add", "added"), " ", h("span", "cft-legend cft-del", "removed"), " ",
    h("span", "cft-legend cft-chg", h("s", "", "old"), " new"),
    ". Money in kronor (the logs hold öre). go: what the service rebuilt from the lines it could read; lenient: what the writer meant.");

  // -- blame
  const blameSearch = h("input", "cf-blame-search");
  blameSearch.type = "search";
  blameSearch.placeholder = "find a field, e.g. qty or items[2]";
  const blameBody = h("div", "cft-blame-cols");
  const bBlame = button("read blame", "cf-blame-on", "read every applied line of this cart to tell which line set each field");
  bBlame.addEventListener("click", () => ask({ do: "blame" }));
  const blameNote = h("div", "cft-sub");
  const blame = h("details", "cf-blame", h("summary", "", "Blame: which line set each field"),
    h("div", "cft-row", h("label", "cft-label", "find ", blameSearch), bBlame), blameNote, blameBody);
  blameSearch.addEventListener("input", () => drawBlame());

  // -- notes
  const lineNotes = h("div", "cf-line-notes");
  const noteText = h("textarea", "cf-note-text");
  noteText.rows = 2;
  noteText.placeholder = "a note on this line (what it shows, what to check)";
  const tagBox = h("span", "cft-tags");
  const tagButtons = {};
  const noteTags = h("input", "cf-note-tags");
  noteTags.placeholder = "more tags, comma separated";
  const bSave = button("add note", "cf-note-save", "write the note on this line into the notes file");
  const bPrevNote = button("◀ previous note", "cf-prev-note", "previous noted line of this cart");
  const bNextNote = button("next note ▶", "cf-next-note", "next noted line of this cart");
  const notesList = h("select", "cf-notes-list");
  notesList.size = 4;
  const bOpenNote = button("open the chosen note's line", "cf-open-note", "");
  const bDelete = button("delete the chosen note", "cf-delete-note", "");
  const notesWhere = h("div", "cft-sub cf-notes-where");
  const notesSummary = h("summary", "", "Notes");
  const notes = h("details", "cf-notes", notesSummary, lineNotes,
    h("div", "cft-row cf-note-editor", noteText, h("div", "cft-col", tagBox, h("div", "cft-row", noteTags, bSave))),
    h("div", "cft-row", bPrevNote, bNextNote),
    h("div", "cft-row", notesList, h("div", "cft-col", bOpenNote, bDelete)), notesWhere);
  bSave.addEventListener("click", () => {
    const tags = Object.entries(tagButtons).filter(([, b]) => b.getAttribute("aria-pressed") === "true").map(([t]) => t);
    for (const t of noteTags.value.split(",")) if (t.trim()) tags.push(t.trim());
    ask({ do: "note", text: noteText.value, tags });
    noteText.value = "";
    noteTags.value = "";
    for (const b of Object.values(tagButtons)) b.setAttribute("aria-pressed", "false");
  });
  const noteStep = (dir) => jump((cartData().noted || []).map((x) => x[0]), dir, "noted");
  bPrevNote.addEventListener("click", () => noteStep(-1));
  bNextNote.addEventListener("click", () => noteStep(1));
  function chosenNote() {
    return (model.get("notes_list") || []).find((x) => String(x[0]) === notesList.value);
  }
  bOpenNote.addEventListener("click", () => { const x = chosenNote(); if (x) ask({ do: "open", cart: x[2], line: x[3] }); });
  notesList.addEventListener("dblclick", () => { const x = chosenNote(); if (x) ask({ do: "open", cart: x[2], line: x[3] }); });
  bDelete.addEventListener("click", () => { const x = chosenNote(); ask({ do: "delete_note", id: x ? x[0] : null }); });

  // -- context
  const ctxMinutes = h("input", "cf-context-minutes");
  ctxMinutes.type = "number";
  ctxMinutes.min = "0.1";
  ctxMinutes.step = "1";
  ctxMinutes.value = "5";
  const ctxBody = h("div", "cf-context-body");
  const context = h("details", "cf-context", h("summary", "", "Context: the other carts' lines around this line's time"),
    h("label", "cft-label", "± minutes ", ctxMinutes), ctxBody);
  context.addEventListener("toggle", () => ask({ do: "context", open: context.open, minutes: +ctxMinutes.value }));
  ctxMinutes.addEventListener("change", () => ask({ do: "context", open: true, minutes: +ctxMinutes.value }));

  const staticNote = isStatic ? h("div", "cft-sub cf-static-note", model.get("static_note") || "") : null;
  root.append(title, isStatic ? staticNote : picker, strip, stripNote, nav, tools);
  if (!isStatic) root.append(live);
  root.append(skipText, status, lineBox, compare, parting, sides, legend, blame);
  if (!isStatic) root.append(notes, context);

  function showStatus(text) { status.textContent = text; status.hidden = !text; }

  function positionText(p) {
    const c = cartData();
    return p === 0 ? "start (before line 1 of " + (c.lines || 0).toLocaleString("en") + ")" : "line " + p.toLocaleString("en") + " of " + (c.lines || 0).toLocaleString("en");
  }

  function drawCart() {
    const c = cartData();
    const v = vocab();
    clear(title).append(h("h4", "", "Cart ", h("span", "cf-cart-id", c.id || "")),
      h("div", "cft-meta", ...(c.summary || []).map((s) => h("span", "", s))));
    slider.max = String(c.lines || 0);
    lineInput.max = String(c.lines || 0);
    timeInput.placeholder = c.time_hint || "";
    bParting.disabled = !c.parting;
    skipText.textContent = c.skip_text || "";
    skipText.hidden = !c.skip_text;
    bReset.disabled = !(c.skipped || []).length;
    parting.textContent = c.parting
      ? "go and lenient part at line " + c.parting_line.toLocaleString("en") + ": the first line one mode applies and the other does not; a field set by a later line may differ."
      : "go and lenient apply the same lines of this cart: they never part.";
    // the strip: noted lines, then one row per mode; its rows are kept while the cart has
    // as many marks, and only the marks that changed (a skip, a note) are drawn again
    const bins = c.bins || 1;
    if (!stripRows || stripRows.bins !== bins) {
      clear(strip);
      const row = (label, cls, height) => {
        const s = svg("svg", { class: cls, viewBox: "0 0 " + bins + " 1", preserveAspectRatio: "none", height });
        strip.append(h("span", "cft-strip-label", label), s);
        return s;
      };
      stripRows = { bins, notes: row("notes", "cfw-strip-notes", 7) };
      for (const m of ["go", "lenient"]) {
        const s = stripRows[m] = row(m, "cfw-strip-" + m, 12);
        s.addEventListener("click", (e) => {
          const box = s.getBoundingClientRect();
          const now = cartData();
          const b = Math.floor(((e.clientX - box.left) / box.width) * (now.bins || 1));
          const edges = now.edges;
          go(edges ? edges[Math.max(0, Math.min(b, edges.length - 2))] + 1 : b + 1);
        });
      }
      cursorLabel = h("span", "cft-strip-label cf-strip-cursor-label", "");
      cursor = svg("svg", { class: "cfw-strip-cursor", viewBox: "0 0 " + bins + " 1", preserveAspectRatio: "none", height: 6 });
      strip.append(cursorLabel, cursor);
    }
    const titled = (attrs, tip) => {
      const r = svg("rect", attrs);
      const t = svg("title");
      t.textContent = tip;
      r.append(t);
      return r;
    };
    syncKids(stripRows.notes, (c.noted || []).map(([q, text]) => [JSON.stringify([binOf(c, q), q, text]),
      () => titled({ x: binOf(c, q), width: 1, height: 1, fill: "#7B3294", "data-line": q }, "line " + q.toLocaleString("en") + ": " + text)]));
    for (const m of ["go", "lenient"]) {
      syncKids(stripRows[m], ((c.strip || {})[m] || []).map(([x, w, code, tip]) => [JSON.stringify([x, w, code, tip]), () => {
        const o = (v.outcomes || [])[code] || ["?", "?", "#999999"];
        return titled({ x, width: w, height: 1, fill: o[2], "data-outcome": o[0] }, tip);
      }]));
    }
    stripNote.textContent = c.strip_note || "";
    if (!tagBox.childElementCount) {
      for (const t of v.tags || []) {
        const b = button(t, "cf-tag-" + t.replace(/ /g, "-"), "tag the note '" + t + "'");
        b.setAttribute("aria-pressed", "false");
        b.addEventListener("click", () => b.setAttribute("aria-pressed", b.getAttribute("aria-pressed") === "true" ? "false" : "true"));
        tagButtons[t] = b;
        tagBox.append(b);
      }
    }
    drawCursor();
  }

  let cursor = null, cursorLabel = null, stripRows = null;
  function drawCursor() {
    if (!cursor) return;
    const c = cartData();
    const p = model.get("position");
    clear(cursor);
    const bins = c.bins || 1;
    const w = Math.max(1, bins / 150);
    cursor.append(svg("rect", { x: p <= 0 ? 0 : binOf(c, p), width: w, height: 1, fill: "#111111" }));
    cursorLabel.textContent = p <= 0 ? "start" : "line " + p.toLocaleString("en");
  }

  const totalsOpen = {};
  const tables = new Map();  // per side and table: the table drawn last (see table())
  function sideTable(box, key, t, cls) {
    const id = box.className + " " + key;
    const d = table(t, cls, tables.get(id));
    tables.set(id, d);
    return d.box;
  }
  // a side's table with its heading: the part drawn before is kept when its table is
  function tablePart(box, old, key, t, cls) {
    if (!t) return h("div", "cft-part", h("div", "cft-sub", key), h("div", "cft-note", "no " + key));
    const tab = sideTable(box, key, t, cls);
    if (old && tab.parentNode === old.el) return old.el;
    return h("div", "cft-part", h("div", "cft-sub", key), tab);
  }
  function drawSide(box, s, lineCode) {
    const v = vocab();
    const part = (cls, ...kids) => h("div", "cft-part " + cls, ...kids);
    parts(box, [
      ["head", [s.title, s.meta, lineCode, s.error], () => {
        const meta = h("div", "cft-meta", ...s.meta.map((m) => h("span", "", m)));
        if (lineCode !== null && lineCode !== undefined) meta.append(h("span", "", "this line: ", badge(v, lineCode)));
        return part("", h("h4", "", s.title), meta, s.error ? h("div", "cft-err", s.error) : null);
      }],
      ["changes", s.changes, () => {
        const head = h("div", "cft-sub", "changes from the previous position");
        if (s.changes === null) return part("", head, h("div", "cft-note", "start: the empty cart before line 1"));
        if (!s.changes.length) return part("", head, h("div", "cft-note", "no change from the previous position"));
        const ul = h("ul", "cft-diff");
        for (const [sign, text] of s.changes) ul.append(h("li", "", h("span", "cft-sign cft-sign-" + (sign === "+" ? "add" : sign === "~" ? "chg" : "del"), sign), " ", text));
        return part("", head, ul);
      }],
      ["items", s.items, (old) => tablePart(box, old, "items", s.items, "cft-items")],
      ["deliveries", s.deliveries, (old) => tablePart(box, old, "deliveries", s.deliveries, "cft-deliveries")],
      ["totals", [s.fields, s.meta[2], s.mode], () => {
        const kv = { cols: [["field", false], ["value", false]], rows: s.fields.map(([label, text, old, full]) => ["", [[label, null, label], [text, old, full]]]), more: 0 };
        // folded (the changes above list what moved); it stays as the reader left it
        const totals = h("details", "cft-totals", h("summary", "", "totals and checkout: " + s.meta[2]), table(kv, "cft-kv").box);
        totals.open = !!totalsOpen[s.mode];
        totals.addEventListener("toggle", () => { totalsOpen[s.mode] = totals.open; });
        return totals;
      }],
    ]);
  }

  function drawLine(f) {
    const v = vocab();
    clear(lineBox);
    const L = f.line;
    if (!L) {
      lineBox.append(h("div", "cft-meta", h("b", "", "Start"), h("span", "", "before line 1 of " + (f.lines || 0).toLocaleString("en") + ": the empty cart")));
      lineDetails.hidden = true;
      return;
    }
    lineBox.append(h("div", "cft-meta", h("b", "", L.where), h("span", "", L.when + " ", h("span", "cft-sub", "(" + L.ts_note + ")")),
      h("span", "", "type ", h("b", "", L.type === null ? "–" : L.type)), h("span", "", L.size)));
    const oc = h("div", "cft-meta");
    for (const m of ["go", "lenient"]) {
      const [code, err] = L.outcomes[m];
      oc.append(h("span", "", m + " ", badge(v, code)));
      if (err) oc.append(h("span", "cft-err", err));
    }
    lineBox.append(oc);
    if (L.skipped) lineBox.append(h("div", "cft-note", "this line is switched off: both carts are replayed as if it had never been written"));
    lineLabel.textContent = L.label;
    segments(clear(lineCode), L.text);
    if (L.more) lineCode.append(h("span", "cft-note", " " + L.more));
    lineDetails.hidden = false;
    lineBox.append(lineDetails);
  }

  function drawBlame() {
    const f = shown || {};
    const b = f.blame || {};
    clear(blameBody);
    bBlame.hidden = !!b.on;
    if (!b.on) {
      blameNote.textContent = "blame not read yet: " + (b.lines || 0).toLocaleString("en") + " lines (press read blame)";
      return;
    }
    blameNote.textContent = "choose a field to go to the line that set it; ≠: the other mode's value or line differs";
    const needle = blameSearch.value.trim().toLowerCase();
    for (const m of ["go", "lenient"]) {
      const col = h("div", "cft-blame-col cf-blame-" + m, h("h4", "", m));
      let group = null;
      let shown = 0;
      for (const [grp, path, value, q, src, differs] of (b[m] || {}).rows || []) {
        if (needle && !(path.toLowerCase().includes(needle) || value.toLowerCase().includes(needle))) continue;
        if (grp !== group) { col.append(h("div", "cft-blame-group", grp)); group = grp; }
        const r = button("", "cft-blame-row cf-blame-row" + (differs ? " cft-differs" : ""), q ? "go to the line that set it" : "no line set it: the empty cart's value");
        r.append(h("span", "cft-blame-mark", differs ? "≠" : ""), h("span", "cft-blame-path", path + " = " + value), h("span", "cft-blame-src", "← " + src));
        r.dataset.position = String(q);
        r.disabled = !q;
        r.addEventListener("click", () => go(q));
        col.append(r);
        shown += 1;
      }
      if (!shown) col.append(h("div", "cft-note", needle ? "no field matches" : "no fields"));
      const more = (b[m] || {}).more || 0;
      if (more > 0) col.append(h("div", "cft-note", "… " + more.toLocaleString("en") + " more fields: scrubber.blame() lists them all"));
      blameBody.append(col);
    }
  }

  function drawNotes(f) {
    clear(lineNotes);
    const here = f.notes || [];
    notesSummary.textContent = "Notes" + (here.length ? " (" + here.length + " on this line)" : "");
    lineNotes.append(h("div", "cft-sub", here.length ? "notes on " + f.where : "no note on " + f.where));
    for (const note of here) {
      const box = h("div", "cft-noted");
      for (const t of note.tags) box.append(h("span", "cft-tag", t));
      box.append(segments(h("div", "cft-note-text"), note.text), h("div", "cft-sub", note.who));
      lineNotes.append(box);
    }
    const atStart = !f.line;
    for (const w of [noteText, noteTags, bSave, ...Object.values(tagButtons)]) w.disabled = atStart;
  }

  let shown = null;  // the frame drawn
  let shownText = null;  // ... as JSON: a frame that arrives equal to it is not drawn again
  function drawFrame() {
    const f = model.get("frame") || {};
    if (f.rev !== aheadRev) { ahead.clear(); aheadRev = f.rev; asked = []; }
    keep(f);
    const k = asked.lastIndexOf(f.position);
    if (k >= 0 && k < asked.length - 1 && shown && shown.rev === f.rev) {
      // the kernel is behind this view's steps: its frame for an older one is not drawn
      asked = asked.slice(k + 1);
      return;
    }
    asked = [];
    drawFrameData(f);
  }

  function drawFrameData(f) {
    const text = JSON.stringify(f);
    if (text === shownText) return;
    shown = f;
    shownText = text;
    const p = f.position || 0;
    const c = cartData();
    slider.value = String(p);
    lineInput.value = String(p);
    posText.textContent = positionText(p);
    bStart.disabled = bBack.disabled = p <= 0;
    bEnd.disabled = bForward.disabled = p >= (c.lines || 0);
    bSkip.disabled = p === 0;
    const skippedHere = !!(f.line && f.line.skipped);
    bSkip.textContent = skippedHere ? "use this line again" : "skip this line";
    bSkip.setAttribute("aria-pressed", skippedHere ? "true" : "false");
    drawLine(f);
    if (f.compare) {
      compare.className = "cf-compare cft-banner " + (f.compare[0] ? "cft-same" : "cft-differ");
      compare.textContent = f.compare[1];
    }
    if (f.sides) {
      drawSide(goSide, f.sides.go, f.sides.go.outcome_code);
      drawSide(leSide, f.sides.lenient, f.sides.lenient.outcome_code);
    }
    drawBlame();
    drawNotes(f);
    drawCursor();
  }

  function drawCarts() {
    const current = model.get("cart_id");
    clear(cartSelect);
    for (const [id, label] of model.get("carts") || []) {
      const o = h("option", "", label);
      o.value = id;
      if (id === current) o.selected = true;
      cartSelect.append(o);
    }
    cartsNote.textContent = model.get("carts_note") || "";
  }

  function drawNotesList() {
    clear(notesList);
    for (const [id, label] of model.get("notes_list") || []) {
      const o = h("option", "", label);
      o.value = String(id);
      notesList.append(o);
    }
    notesWhere.textContent = model.get("notes_where") || "";
  }

  function drawContext() {
    const ctx = model.get("context_rows") || {};
    clear(ctxBody);
    if (ctx.head) ctxBody.append(h("div", "cft-sub", ctx.head));
    const rows = ctx.rows || [];
    if (!rows.length) return;
    const v = vocab();
    const tab = h("table", "cft-table cft-context");
    tab.append(h("thead", "", h("tr", "", ...["time", "offset", "cart", "line", "type", "go", "lenient", ""].map((x) => h("th", "", x)))));
    const body = h("tbody");
    for (const [when, offset, shownId, rawId, line, type, goO, leO] of rows) {
      const open = button("open", "cf-context-open", "open this cart at this line");
      open.addEventListener("click", () => ask({ do: "open", cart: rawId, line }));
      body.append(h("tr", "", h("td", "", when), h("td", "", offset), h("td", "", shownId), h("td", "cft-num", line.toLocaleString("en")),
        h("td", "", type), h("td", "", badgeByName(v, goO)), h("td", "", badgeByName(v, leO)), h("td", "", open)));
    }
    tab.append(body);
    ctxBody.append(h("div", "cft-tablebox", tab));
    if (ctx.more) ctxBody.append(h("div", "cft-note", "… " + ctx.more.toLocaleString("en") + " more lines in the window not shown"));
  }

  const handlers = {
    "change:cart": drawCart, "change:frame": drawFrame, "change:carts": drawCarts,
    "change:cart_id": drawCarts, "change:carts_note": drawCarts,
    "change:status": () => showStatus(model.get("status") || ""),
    "change:notes_list": drawNotesList, "change:notes_where": drawNotesList,
    "change:context_rows": drawContext, "change:position": drawCursor,
    "msg:custom": (msg) => { for (const f of (msg && msg.frames_ahead) || []) keep(f); },
  };
  for (const [ev, fn] of Object.entries(handlers)) model.on(ev, fn);
  drawCart();
  drawCarts();
  drawNotesList();
  drawFrame();
  drawContext();
  showStatus(model.get("status") || "");
  if (!isStatic) model.send({ keeps_frames: true });
  n += 1;
  return () => { for (const [ev, fn] of Object.entries(handlers)) model.off(ev, fn); };
}

// -- without a kernel ----------------------------------------------------------------------

// A model over data embedded in the page: the same traits the kernel sends, and the frames
// of the positions the export holds ("frames": position -> indices into "parts" per key).
export function staticModel(payload) {
  const state = Object.assign({}, payload.traits, { static_view: true, static_note: payload.note });
  const held = payload.positions;
  const listeners = {};
  const frameAt = (p) => {
    // the nearest position the export holds
    let best = 0;
    for (let k = 0; k < held.length; k++) if (Math.abs(held[k] - p) < Math.abs(held[best] - p)) best = k;
    const f = {};
    for (const [key, idx] of Object.entries(payload.frames[best])) f[key] = payload.parts[idx];
    if (f.blame && f.blame.refs) {
      const b = Object.assign({}, f.blame);
      for (const m of ["go", "lenient"]) b[m] = { rows: b[m].rows.map((k) => payload.rows[k]), more: b[m].more };
      f.blame = b;
    }
    return f;
  };
  const fire = (ev) => { for (const fn of listeners[ev] || []) fn(); };
  let changed = new Set();
  const model = {
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; changed.add(k); },
    save_changes: () => {
      const keys = changed;
      changed = new Set();
      if (keys.has("position")) {
        state.frame = frameAt(state.position);
        state.position = state.frame.position;
        fire("change:frame");
        fire("change:position");
      }
    },
    on: (ev, fn) => { (listeners[ev] = listeners[ev] || []).push(fn); },
    off: (ev, fn) => { listeners[ev] = (listeners[ev] || []).filter((x) => x !== fn); },
    send: () => {},
  };
  state.frame = frameAt(state.position);
  return model;
}

export function mountStatic(el, payload) {
  clear(el);
  return render({ model: staticModel(payload), el });
}

export default { render };
