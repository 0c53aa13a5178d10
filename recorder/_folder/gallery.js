// The gallery page: filters, order, the plot of a metadata field per episode, the timeline strip
// under each video (a field per frame, a playhead, click or drag to seek), and (when served by
// `recorder serve`) the cards of new videos as the manifest announces them.
// Strings from metadata reach the page only through textContent, attribute values set with
// setAttribute, or card HTML the server already escaped: never through innerHTML of our own.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
                  "#999999"];
  const $ = (id) => document.getElementById(id);
  const data = JSON.parse($("recorder-data").textContent);
  const live = data.live;
  const grid = $("grid");
  const points = new Map(data.points.map((p) => [p.file, p]));
  const timelines = new Map(Object.entries(data.timelines || {}));
  const captions = new Map(Object.entries(data.captions || {}));
  const strips = new Map(); // file -> the strip under its video ({ choose })
  const cards = new Map();
  grid.querySelectorAll(".card").forEach((c) => cards.set(c.getAttribute("data-file"), c));
  const ui = {
    filter: $("filter"), series: $("series"), min: $("ep-min"), max: $("ep-max"),
    sort: $("sort"), health: $("health"), field: $("field"), shown: $("shown"), count: $("count"),
    status: $("status"), plot: $("plot"), box: $("plot-box"), legend: $("legend"),
  };
  let playing = null;
  let stripField = null; // the timeline field last chosen: every strip that has it plots it

  function number(input) {
    const v = input.value.trim();
    return v === "" ? null : Number(v);
  }

  function visible(file) {
    const card = cards.get(file);
    const p = points.get(file) || {};
    const words = ui.filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    const name = card ? card.getAttribute("data-name") : "";
    if (!words.every((w) => name.indexOf(w) >= 0)) return false;
    if (ui.series.value && p.series !== ui.series.value) return false;
    if (ui.health.value === "suspect" && !p.suspect) return false;
    if (ui.health.value === "ok" && p.suspect) return false;
    const lo = number(ui.min), hi = number(ui.max);
    if (lo !== null || hi !== null) {
      if (typeof p.episode !== "number") return false;
      if (lo !== null && p.episode < lo) return false;
      if (hi !== null && p.episode > hi) return false;
    }
    return true;
  }

  // By episode, first step, name (the server's order); newest first by the time it was saved.
  function compare(a, b) {
    const pa = points.get(a) || {}, pb = points.get(b) || {};
    const key = (v, missing) => (typeof v === "number" ? v : missing);
    if (ui.sort.value === "newest") {
      const d = key(pb.created, -Infinity) - key(pa.created, -Infinity);
      if (d) return d;
    }
    const e = key(pa.episode, Infinity) - key(pb.episode, Infinity);
    if (e) return e;
    const s = key(pa.first_step, -1) - key(pb.first_step, -1);
    if (s) return s;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function seriesNames() {
    const names = new Set();
    points.forEach((p) => names.add(p.series));
    return Array.from(names).sort();
  }

  function syncOptions() {
    const keep = (select, values, first) => {
      const chosen = select.value;
      while (select.options.length > first) select.remove(first);
      values.forEach((v) => select.add(new Option(v, v)));
      if (values.indexOf(chosen) >= 0) select.value = chosen;
    };
    keep(ui.series, seriesNames(), 1);
    const fields = new Set();
    points.forEach((p) => Object.keys(p.values || {}).forEach((k) => fields.add(k)));
    const list = Array.from(fields).sort();
    const before = ui.field.value;
    keep(ui.field, list, 0);
    if (!before && list.indexOf("return") >= 0) ui.field.value = "return";
    let suspect = 0;
    points.forEach((p) => { if (p.suspect && cards.has(p.file)) suspect += 1; });
    ui.health.options[1].textContent = "only suspect (" + suspect + ")";
  }

  function refresh() {
    syncOptions();
    const files = Array.from(cards.keys()).sort(compare);
    let n = 0;
    files.forEach((file, i) => {
      const card = cards.get(file);
      card.hidden = !visible(file);
      if (!card.hidden) n += 1;
      // Moved only when out of place: moving a video element pauses it.
      if (grid.children[i] !== card) grid.insertBefore(card, grid.children[i] || null);
    });
    const total = cards.size;
    ui.count.textContent = total + " video" + (total === 1 ? "" : "s");
    const filtered = ui.filter.value.trim() || ui.series.value || ui.min.value || ui.max.value
      || ui.health.value;
    ui.shown.textContent = filtered ? " · " + n + " shown" : "";
    draw();
  }

  function ticks(lo, hi, count, integer) {
    if (lo === hi) return [lo];
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    if (integer) step = Math.max(1, Math.round(step));
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(t);
    return out;
  }

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach((k) => node.setAttribute(k, String(attrs[k])));
    parent.appendChild(node);
    return node;
  }

  function label(v) {
    return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1)
      : String(Math.round(v * 100) / 100);
  }

  function draw() {
    const field = ui.field.value;
    const svg = ui.plot;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    while (ui.legend.firstChild) ui.legend.removeChild(ui.legend.firstChild);
    const shown = [];
    points.forEach((p) => {
      const v = p.values ? p.values[field] : undefined;
      if (typeof p.episode === "number" && typeof v === "number" && cards.has(p.file)
          && visible(p.file)) shown.push({ p: p, x: p.episode, y: v });
    });
    ui.box.hidden = shown.length === 0;
    if (!shown.length) return;
    const width = svg.clientWidth || 800, height = svg.clientHeight || 220;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    const m = { left: 56, right: 12, top: 10, bottom: 28 };
    const xs = shown.map((s) => s.x), ys = shown.map((s) => s.y);
    let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { y0 -= 1; y1 += 1; }
    const X = (x) => m.left + (x - x0) / (x1 - x0) * (width - m.left - m.right);
    const Y = (y) => height - m.bottom - (y - y0) / (y1 - y0) * (height - m.top - m.bottom);
    el("line", { x1: m.left, y1: height - m.bottom, x2: width - m.right, y2: height - m.bottom,
                 class: "axis" }, svg);
    el("line", { x1: m.left, y1: m.top, x2: m.left, y2: height - m.bottom, class: "axis" }, svg);
    ticks(x0, x1, 8, true).forEach((t) => {
      el("text", { x: X(t), y: height - 8, "text-anchor": "middle" }, svg).textContent = t;
    });
    ticks(y0, y1, 4, false).forEach((t) => {
      el("text", { x: m.left - 6, y: Y(t) + 4, "text-anchor": "end" }, svg).textContent = label(t);
    });
    const names = seriesNames();
    names.forEach((name, i) => {
      const own = shown.filter((s) => s.p.series === name).sort((a, b) => a.x - b.x);
      if (!own.length) return;
      const color = COLORS[i % COLORS.length];
      el("polyline", { points: own.map((s) => X(s.x) + "," + Y(s.y)).join(" "), stroke: color },
         svg);
      own.forEach((s) => {
        const dot = el("circle", { cx: X(s.x), cy: Y(s.y), r: 4.5, fill: color }, svg);
        dot.setAttribute("data-file", s.p.file);
        if (s.p.file === playing) dot.classList.add("playing");
        if (s.p.suspect) dot.classList.add("suspect");
        el("title", {}, dot).textContent =
          s.p.name + " · episode " + s.x + " · " + field + " = " + label(s.y);
        dot.addEventListener("click", () => play(s.p.file));
      });
      const key = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = color;
      key.appendChild(swatch);
      key.appendChild(document.createTextNode(name));
      ui.legend.appendChild(key);
    });
  }

  // Plays one video, pausing the others: what a click on a point does.
  function play(file) {
    const card = cards.get(file);
    if (!card) return;
    if (card.hidden) {
      ui.filter.value = ""; ui.series.value = ""; ui.min.value = ""; ui.max.value = "";
      ui.health.value = "";
      refresh();
    }
    grid.querySelectorAll("video").forEach((v) => { if (!card.contains(v)) v.pause(); });
    grid.querySelectorAll(".card.playing").forEach((c) => c.classList.remove("playing"));
    card.classList.add("playing");
    playing = file;
    draw();
    card.scrollIntoView({ block: "center" });
    const video = card.querySelector("video");
    if (video) video.play().catch(() => {});
  }

  // -- the timeline strip under a video ------------------------------------------------------

  // One column of a timeline (strip.py's forms) as [frame, value] points, and its value at a
  // frame (a reduced column: the point at or before it).
  function column(spec) {
    if (Array.isArray(spec)) {
      return { points: spec.map((v, i) => [i, v]), at: (f) => (f < spec.length ? spec[f] : null) };
    }
    if (Array.isArray(spec.x)) {
      const at = (f) => {
        let lo = 0, hi = spec.x.length - 1;
        if (hi < 0 || spec.x[0] > f) return null;
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1;
          if (spec.x[mid] <= f) lo = mid; else hi = mid - 1;
        }
        return spec.y[lo];
      };
      return { points: spec.x.map((x, i) => [x, spec.y[i]]), at: at };
    }
    const at = (f) => (f < spec.count ? spec.start + f * spec.step : null);
    return { points: [[0, spec.start], [spec.count - 1, at(spec.count - 1)]], at: at };
  }

  function fieldsOf(timeline) {
    const names = Object.keys(timeline.columns);
    const first = ["reward", "return"].filter((n) => names.indexOf(n) >= 0);
    return first.concat(names.filter((n) => first.indexOf(n) < 0).sort());
  }

  // Builds the strip under *card*'s video: a field of *timeline* against the frame, a playhead
  // on the frame the video shows; a click, a drag or the arrow keys seek the video.
  function strip(card, file, timeline) {
    const video = card.querySelector("video");
    if (!video) return;
    const W = 1000, H = 48, PAD = 4;
    const frames = timeline.frames, fps = timeline.fps;
    const fields = fieldsOf(timeline);
    const box = document.createElement("div");
    box.className = "strip";
    const head = document.createElement("div");
    head.className = "strip-head";
    const chooser = document.createElement("label");
    chooser.appendChild(document.createTextNode("plot "));
    const select = document.createElement("select");
    select.setAttribute("aria-label", "Timeline field");
    fields.forEach((f) => select.add(new Option(f, f)));
    chooser.appendChild(select);
    const readout = document.createElement("span");
    readout.className = "strip-value";
    const range = document.createElement("span");
    range.className = "strip-range";
    head.appendChild(chooser);
    head.appendChild(readout);
    head.appendChild(range);
    const svg = document.createElementNS(SVG, "svg");
    const attrs = {
      class: "strip-plot", viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none",
      role: "slider", tabindex: 0, "aria-label": "Frame", "aria-valuemin": 0,
      "aria-valuemax": frames - 1,
    };
    Object.keys(attrs).forEach((k) => svg.setAttribute(k, String(attrs[k])));
    const line = el("path", { class: "strip-line" }, svg);
    const playhead = el("line", { class: "playhead", y1: 0, y2: H }, svg);
    box.appendChild(head);
    box.appendChild(svg);
    video.after(box);

    const X = (f) => (f + 0.5) / frames * W;
    const clamp = (f) => Math.max(0, Math.min(frames - 1, f));
    let frame = 0, values = null, dragging = false;

    function show(f) {
      frame = clamp(f);
      playhead.setAttribute("x1", X(frame));
      playhead.setAttribute("x2", X(frame));
      const v = values.at(frame);
      const text = "frame " + frame + " · " + select.value + " "
        + (typeof v === "number" ? String(v) : "–");
      readout.textContent = text;
      svg.setAttribute("data-frame", String(frame));
      svg.setAttribute("aria-valuenow", String(frame));
      svg.setAttribute("aria-valuetext", text);
    }

    function plot() {
      values = column(timeline.columns[select.value]);
      const ys = values.points.map((p) => p[1]).filter((v) => typeof v === "number");
      const lo = Math.min(...ys), hi = Math.max(...ys);
      const Y = (v) => (hi === lo ? H / 2 : PAD + (hi - v) / (hi - lo) * (H - 2 * PAD));
      let d = "", pen = false;
      values.points.forEach((p) => {
        if (typeof p[1] !== "number") { pen = false; return; }
        d += (pen ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1);
        pen = true;
      });
      line.setAttribute("d", d);
      range.textContent = ys.length ? label(lo) + " … " + label(hi) : "";
      show(frame);
    }

    function seek(f) {
      show(f);
      video.currentTime = (frame + 0.5) / fps; // the middle of the frame: no rounding across
    }

    function choose(name) {
      if (fields.indexOf(name) < 0) return;
      select.value = name;
      plot();
    }

    const frameAtX = (x) => {
      const r = svg.getBoundingClientRect();
      return clamp(Math.floor((x - r.left) / r.width * frames));
    };
    svg.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      svg.focus({ preventScroll: true });
      svg.setPointerCapture(e.pointerId);
      dragging = true;
      seek(frameAtX(e.clientX));
    });
    svg.addEventListener("pointermove", (e) => { if (dragging) seek(frameAtX(e.clientX)); });
    svg.addEventListener("pointerup", () => { dragging = false; });
    svg.addEventListener("pointercancel", () => { dragging = false; });
    const keys = new Map([["ArrowLeft", -1], ["ArrowDown", -1], ["ArrowRight", 1],
                          ["ArrowUp", 1], ["PageDown", -10], ["PageUp", 10]]);
    svg.addEventListener("keydown", (e) => {
      let f = null;
      if (keys.has(e.key)) f = frame + keys.get(e.key);
      else if (e.key === "Home") f = 0;
      else if (e.key === "End") f = frames - 1;
      if (f === null) return;
      e.preventDefault();
      seek(f);
    });
    select.addEventListener("change", () => {
      stripField = select.value;
      strips.forEach((s) => s.choose(stripField));
    });

    // The playhead follows the frame on screen: each presented frame's own time when the
    // browser tells it (requestVideoFrameCallback), else the clock's.
    const frameAt = (t) => Math.floor(t * fps + 1e-3);
    if (video.requestVideoFrameCallback) {
      const presented = (now, meta) => {
        show(Math.round(meta.mediaTime * fps));
        video.requestVideoFrameCallback(presented);
      };
      video.requestVideoFrameCallback(presented);
    } else {
      video.addEventListener("timeupdate", () => show(frameAt(video.currentTime)));
    }
    video.addEventListener("seeked", () => show(frameAt(video.currentTime)));

    choose(stripField !== null && fields.indexOf(stripField) >= 0 ? stripField : fields[0]);
    strips.set(file, { choose: choose });
  }

  // A page opened from file:// cannot load a <track> file (Chromium: each file is its own
  // origin): it carries the captions gzipped, and hands them to the track as a blob once they
  // are turned on (the track's src is dropped until then: a file: URL would only fail).
  function packedCaptions(video, track, packed) {
    track.removeAttribute("src");
    const unpack = async () => {
      if (track.track.mode === "disabled") return;
      video.textTracks.removeEventListener("change", unpack);
      const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      const text = await new Response(stream).text();
      track.src = URL.createObjectURL(new Blob([text], { type: "text/vtt" }));
    };
    video.textTracks.addEventListener("change", unpack);
  }

  // What a card gets besides its server-rendered HTML: its strip, its captions from file://.
  function setup(card, file) {
    strips.delete(file);
    const timeline = timelines.get(file);
    if (timeline) strip(card, file, timeline);
    const track = card.querySelector("track");
    const packed = captions.get(file);
    if (track && packed && location.protocol === "file:" && window.DecompressionStream) {
      packedCaptions(card.querySelector("video"), track, packed);
    }
  }

  function add(update) {
    const template = document.createElement("template");
    template.innerHTML = update.html; // escaped by the server, as the page's own cards
    const card = template.content.firstElementChild;
    if (!card) return;
    const old = cards.get(update.file);
    if (old && old.classList.contains("playing")) return; // the same video: keep it playing
    if (old) old.remove();
    card.classList.add("new");
    cards.set(update.file, card);
    points.set(update.file, update.point);
    if (update.timeline) timelines.set(update.file, update.timeline);
    else timelines.delete(update.file);
    grid.appendChild(card);
    setup(card, update.file);
    const empty = $("empty");
    if (empty) empty.remove();
  }

  function remove(file) {
    const card = cards.get(file);
    if (card) card.remove();
    cards.delete(file);
    points.delete(file);
    timelines.delete(file);
    strips.delete(file);
  }

  async function poll(offset) {
    let next = offset, delay = live.poll_ms;
    try {
      const answer = await fetch(live.updates + "?offset=" + offset, { cache: "no-store" });
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      const u = await answer.json();
      if (u.reset) { location.reload(); return; }
      u.events.forEach((e) => (e.add ? add(e.add) : remove(e.remove)));
      if (u.events.length) refresh();
      next = u.offset;
      if (u.more) delay = 0;
      ui.status.textContent = "live · checked " + new Date().toLocaleTimeString();
    } catch (e) {
      ui.status.textContent = "live · server unreachable, retrying";
      delay = Math.max(delay, 2000);
    }
    setTimeout(() => poll(next), delay);
  }

  [ui.filter, ui.min, ui.max].forEach((i) => i.addEventListener("input", refresh));
  [ui.series, ui.sort, ui.health, ui.field].forEach((s) => s.addEventListener("change", refresh));
  window.addEventListener("resize", draw);
  cards.forEach((card, file) => setup(card, file));
  refresh();
  if (live) {
    ui.status.textContent = "live";
    poll(live.offset);
  }
})();
