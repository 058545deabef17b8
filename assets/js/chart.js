// Hand-written SVG charts: a time/line chart and horizontal bars. Each chart is drawn at its real
// pixel width (a ResizeObserver redraws it), so text stays readable on a phone. Keyboard users
// can focus a chart; its aria-label carries the figures.
const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (name === "text") el.textContent = String(value);
    else el.setAttribute(name, String(value));
  }
  for (const child of children) if (child) el.appendChild(child);
  return el;
}

const plain = (v) => String(v);

/** 0, 25, 50, 75, 100 — ticks at 1/2/2.5/5 × 10^n. */
function niceTicks(max, count = 4, integer = false) {
  if (!(max > 0)) return [0, 1];
  const raw = integer ? Math.max(1, max / count) : max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw) || raw;
  const ticks = [];
  for (let value = 0; value <= max + step * 0.5 && ticks.length <= count + 1; value += step) ticks.push(Number(value.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

function responsive(svg, draw, height) {
  let width = 0;
  const redraw = (next) => {
    const rounded = Math.max(240, Math.round(next));
    if (rounded === width) return;
    width = rounded;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("height", String(height));
    svg.replaceChildren(...draw(width));
  };
  redraw(640);
  if (typeof ResizeObserver === "function") {
    const observer = new ResizeObserver((entries) => {
      if (!svg.isConnected) {
        observer.disconnect();
        return;
      }
      for (const entry of entries) redraw(entry.contentRect.width);
    });
    observer.observe(svg);
  }
  return svg;
}

/** A line chart. series: [{name, points: [[x, y], …]}] with numeric x (e.g. ms since epoch). */
export function lineChart({ series, yFormat = plain, xFormat = plain, height = 220, label = "Chart", integer = false }) {
  const all = series.flatMap((line) => line.points);
  const summary = series
    .map((line) => {
      const total = line.points.reduce((sum, [, y]) => sum + (Number(y) || 0), 0);
      const peak = line.points.reduce((max, [, y]) => Math.max(max, Number(y) || 0), 0);
      return `${line.name}: total ${yFormat(total)}, peak ${yFormat(peak)} over ${line.points.length} points`;
    })
    .join("; ");
  const svg = s("svg", { class: "chart chart-line", role: "img", tabindex: 0, "aria-label": `${label}. ${summary || "No data."}` });
  if (!all.length) {
    return responsive(svg, (width) => [s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", text: "No data in this range" })], height);
  }
  const xs = all.map(([x]) => Number(x));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const ticks = niceTicks(Math.max(...all.map(([, y]) => Number(y) || 0)), 4, integer);
  const yMax = ticks[ticks.length - 1] || 1;

  const draw = (width) => {
    const left = Math.max(...ticks.map((t) => yFormat(t).length)) * 6.5 + 12;
    const pad = { left, right: 14, top: series.length > 1 ? 26 : 12, bottom: 26 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const px = (x) => pad.left + (xMax === xMin ? plotW / 2 : ((Number(x) - xMin) / (xMax - xMin)) * plotW);
    const py = (y) => pad.top + plotH - ((Number(y) || 0) / yMax) * plotH;
    const nodes = [];
    for (const tick of ticks) {
      nodes.push(s("line", { class: "grid-line", x1: pad.left, x2: width - pad.right, y1: py(tick), y2: py(tick) }));
      nodes.push(s("text", { x: pad.left - 6, y: py(tick) + 4, "text-anchor": "end", text: yFormat(tick) }));
    }
    const labelCount = Math.max(2, Math.min(7, Math.floor(plotW / 90)));
    const uniqueXs = [...new Set(xs)].sort((a, b) => a - b);
    const stride = Math.max(1, Math.ceil(uniqueXs.length / labelCount));
    uniqueXs.forEach((x, index) => {
      if (index % stride !== 0) return;
      nodes.push(s("text", { x: px(x), y: height - 8, "text-anchor": "middle", text: xFormat(x) }));
    });
    series.forEach((line, index) => {
      const points = [...line.points].sort((a, b) => a[0] - b[0]);
      if (!points.length) return;
      const path = points.map(([x, y], i) => `${i ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join("");
      if (index === 0 && points.length > 1) {
        const area = `${path}L${px(points[points.length - 1][0]).toFixed(1)},${py(0)}L${px(points[0][0]).toFixed(1)},${py(0)}Z`;
        nodes.push(s("path", { class: `area series-${index % 4}`, d: area }));
      }
      nodes.push(s("path", { class: `line series-${index % 4}`, d: path }));
      if (points.length <= 48) {
        for (const [x, y] of points) {
          nodes.push(s("circle", { class: `series-${index % 4}`, cx: px(x), cy: py(y), r: 2.5 }, s("title", { text: `${line.name} · ${xFormat(x)}: ${yFormat(Number(y))}` })));
        }
      }
      if (series.length > 1) {
        const lx = pad.left + series.slice(0, index).reduce((x, other) => x + other.name.length * 6.5 + 30, 0);
        nodes.push(s("rect", { class: `bar series-${index % 4}`, x: lx, y: 6, width: 10, height: 10, rx: 2 }));
        nodes.push(s("text", { x: lx + 14, y: 15, text: line.name }));
      }
    });
    // Hover read-out: the nearest time's values.
    const readout = s("text", { class: "bar-value", x: width - pad.right, y: pad.top + 12, "text-anchor": "end" });
    const guide = s("line", { class: "axis-line", y1: pad.top, y2: pad.top + plotH, x1: -10, x2: -10 });
    const catcher = s("rect", { x: pad.left, y: pad.top, width: plotW, height: plotH, fill: "transparent" });
    catcher.addEventListener("mousemove", (event) => {
      const box = svg.getBoundingClientRect();
      const scale = box.width ? width / box.width : 1;
      const mouseX = (event.clientX - box.left) * scale;
      let nearest = uniqueXs[0];
      for (const x of uniqueXs) if (Math.abs(px(x) - mouseX) < Math.abs(px(nearest) - mouseX)) nearest = x;
      guide.setAttribute("x1", px(nearest));
      guide.setAttribute("x2", px(nearest));
      const values = series.map((line) => {
        const point = line.points.find(([x]) => x === nearest);
        return `${line.name} ${yFormat(point ? Number(point[1]) : 0)}`;
      });
      readout.textContent = `${xFormat(nearest)} · ${values.join(" · ")}`;
    });
    catcher.addEventListener("mouseleave", () => {
      readout.textContent = "";
      guide.setAttribute("x1", -10);
      guide.setAttribute("x2", -10);
    });
    nodes.push(guide, readout, catcher);
    return nodes;
  };
  return responsive(svg, draw, height);
}

/** Horizontal bars. bars: [{label, value}] (value a number). */
export function barChart({ bars, format = plain, label = "Chart" }) {
  const rowHeight = 26;
  const height = Math.max(1, bars.length) * rowHeight + 8;
  const summary = bars.map((bar) => `${bar.label}: ${format(bar.value)}`).join("; ");
  const svg = s("svg", { class: "chart chart-bars", role: "img", tabindex: 0, "aria-label": `${label}. ${summary || "No data."}` });
  if (!bars.length) {
    return responsive(svg, (width) => [s("text", { x: width / 2, y: 20, "text-anchor": "middle", text: "No data in this range" })], 32);
  }
  const max = Math.max(...bars.map((bar) => Number(bar.value) || 0)) || 1;
  const draw = (width) => {
    const labelWidth = Math.min(width * 0.38, Math.max(...bars.map((bar) => String(bar.label).length)) * 7 + 8);
    const valueWidth = Math.max(...bars.map((bar) => format(bar.value).length)) * 7 + 10;
    const barSpace = Math.max(20, width - labelWidth - valueWidth - 8);
    const maxChars = Math.floor(labelWidth / 7);
    const nodes = [];
    bars.forEach((bar, index) => {
      const y = 4 + index * rowHeight;
      const text = String(bar.label);
      const shown = text.length > maxChars ? `${text.slice(0, Math.max(1, maxChars - 1))}…` : text;
      nodes.push(s("text", { x: 0, y: y + 16, text: shown }, s("title", { text })));
      const barWidth = Math.max(2, ((Number(bar.value) || 0) / max) * barSpace);
      nodes.push(s("rect", { class: "bar series-0", x: labelWidth, y: y + 4, width: barWidth, height: rowHeight - 10, rx: 3 }, s("title", { text: `${text}: ${format(bar.value)}` })));
      nodes.push(s("text", { class: "bar-value", x: labelWidth + barWidth + 6, y: y + 16, text: format(bar.value) }));
    });
    return nodes;
  };
  return responsive(svg, draw, height);
}
