// The Stat19 statistics browser: plain JavaScript over the read-only API of `stat19 serve`.
// Pick a table and a category of each dimension; see a time series (weekly and monthly tables)
// and the figures by fylke, as tables and SVG charts. Hidden cells show ':', cells absent by
// design '.', explained by the legend. The state is in the address (?table=...&lang=...&sex=...),
// so every view can be linked to.
"use strict";

const API = "/api/open/v1/stat19";
const TEXT = {
  en: { heading: "Stat19 statistics", synthetic: "All data are synthetic.", table: "Table", measure: "Measure",
        geo: "Geography", period: "Period for the fylke chart", series: "over time", byFylke: "by fylke",
        legend: "Symbols", released: "Release", revision: "revision", licence: "Licence", loading: "Loading…",
        ready: "Ready", value: "Value", missing: "no value (not defined)" },
  nb: { heading: "Stat19-statistikk", synthetic: "Alle data er syntetiske.", table: "Tabell", measure: "Måltall",
        geo: "Geografi", period: "Periode for fylkesdiagrammet", series: "over tid", byFylke: "etter fylke",
        legend: "Symboler", released: "Publisering", revision: "revisjon", licence: "Lisens", loading: "Laster…",
        ready: "Klar", value: "Verdi", missing: "ingen verdi (ikke definert)" },
};

const params = new URLSearchParams(location.search);
const state = { lang: params.get("lang") === "nb" ? "nb" : "en", table: params.get("table"), choice: {} };
let info = null;        // the table's description from the API
let dimensions = [];    // its dimensions with categories

const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[state.lang][key];

async function getJSON(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${(await response.json()).detail || ""}`);
  return response.json();
}

function element(tag, attrs = {}, ...children) {
  const ns = ["svg", "rect", "line", "text", "polyline", "circle", "g", "title"].includes(tag)
    ? "http://www.w3.org/2000/svg" : null;
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c);
  return el;
}

function saveState() {
  const q = new URLSearchParams({ table: state.table, lang: state.lang, ...state.choice });
  history.replaceState(null, "", `?${q}`);
}

// ---------------------------------------------------------------------------------------------
// Choices

async function start() {
  $("lang").value = state.lang;
  $("lang").onchange = () => { state.lang = $("lang").value; loadTable(); };
  const tables = await getJSON(`${API}/table`);
  const select = $("product");
  for (const tb of tables) select.append(element("option", { value: tb.tableId }, `${tb.title} (${tb.tableId})`));
  if (!tables.some((tb) => tb.tableId === state.table)) state.table = tables[0].tableId;
  select.value = state.table;
  select.onchange = () => { state.table = select.value; state.choice = {}; loadTable(); };
  for (const [k, v] of params) if (!["table", "lang"].includes(k)) state.choice[k] = v;
  await loadTable();
}

async function loadTable() {
  $("status").textContent = t("loading");
  document.documentElement.lang = state.lang;
  for (const key of ["heading", "synthetic"]) $(key).textContent = t(key);
  $("product-label").textContent = t("table");
  $("legend-title").textContent = t("legend");
  info = await getJSON(`${API}/table/${state.table}`);
  dimensions = await getJSON(`${API}/table/${state.table}/dimension?lang=${state.lang}`);
  for (const option of $("product").options) {
    if (option.value === state.table) option.textContent = `${state.lang === "nb" ? info.title_nb : info.title} (${info.tableId})`;
  }
  const box = $("dimensions");
  box.replaceChildren();
  for (const dim of dimensions) {
    const codes = dim.categories.map((c) => c.code);
    const isTime = dim.code === info.time_dimension;
    const fallback = isTime ? codes[codes.length - 1] : codes.includes("total") ? "total" : dim.code === "geo" ? "NO" : codes[0];
    if (!codes.includes(state.choice[dim.code])) state.choice[dim.code] = fallback;
    const select = element("select", { id: `dim-${dim.code}`, name: dim.code });
    for (const c of dim.categories) select.append(element("option", { value: c.code }, c.label));
    select.value = state.choice[dim.code];
    select.onchange = () => { state.choice[dim.code] = select.value; render(); };
    const label = dim.code === "geo" ? t("geo") : isTime ? t("period") : dim.code === "measure" ? t("measure") : dim.label;
    box.append(element("label", {}, label, select));
  }
  await render();
}

// ---------------------------------------------------------------------------------------------
// Data

function filters(varying, codes) {
  const q = new URLSearchParams({ lang: state.lang });
  for (const dim of dimensions) {
    q.append("filter", `${dim.code}:${dim.code === varying ? codes.join(",") : state.choice[dim.code]}`);
  }
  return q;
}

// The cells of a JSON-stat dataset in which one dimension varies: [{code, label, value, status}]
function cellsAlong(doc, varying) {
  const cat = doc.dimension[varying].category;
  const codes = Object.keys(cat.index).sort((a, b) => cat.index[a] - cat.index[b]);
  return codes.map((code, i) => ({
    code, label: cat.label[code], value: doc.value[i], status: (doc.status || {})[String(i)] || "",
  }));
}

function measureInfo() {
  return dimensions.find((d) => d.code === "measure").categories.find((c) => c.code === state.choice.measure);
}

function shown(cell) {
  if (cell.status) return cell.status;
  if (cell.value === null || cell.value === undefined) return "";
  const decimals = measureInfo().decimals || 0;
  return cell.value.toLocaleString(state.lang === "nb" ? "nb-NO" : "en-GB",
    { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

async function render() {
  saveState();
  try {
    const geo = dimensions.find((d) => d.code === "geo");
    const fylker = geo.categories.filter((c) => c.level === "fylke").map((c) => c.code);
    const m = measureInfo();
    const geoLabel = geo.categories.find((c) => c.code === state.choice.geo).label;
    const legend = {};
    const series = $("series");
    if (info.time_dimension) {
      const time = dimensions.find((d) => d.code === info.time_dimension);
      const doc = await getJSON(`${API}/table/${state.table}/data?${filters(time.code, time.categories.map((c) => c.code))}`);
      Object.assign(legend, doc.extension.status);
      const cells = cellsAlong(doc, time.code);
      $("series-title").textContent = `${m.label} (${m.unit}), ${geoLabel}, ${t("series")}`;
      fillTable($("series-table"), time.label, cells);
      lineChart($("series-chart"), cells);
      series.hidden = false;
    } else {
      series.hidden = true;
    }
    if (fylker.length) {
      const doc = await getJSON(`${API}/table/${state.table}/data?${filters("geo", fylker)}`);
      Object.assign(legend, doc.extension.status);
      const cells = cellsAlong(doc, "geo");
      const when = info.time_dimension ? `, ${dimensions.find((d) => d.code === info.time_dimension)
        .categories.find((c) => c.code === state.choice[info.time_dimension]).label}` : "";
      $("fylke-title").textContent = `${m.label} (${m.unit}) ${t("byFylke")}${when}`;
      fillTable($("fylke-table"), t("geo"), cells);
      barChart($("fylke-chart"), cells);
    }
    const dl = $("legend");
    dl.replaceChildren();
    for (const [symbol, text] of Object.entries(legend)) dl.append(element("dt", {}, symbol), element("dd", {}, text));
    dl.append(element("dt", {}, "\u00a0"), element("dd", {}, t("missing")));
    const licence = info.licence;
    $("licence").textContent = `${t("released")} ${info.latest.reference_date}, ${t("revision")} ${info.latest.revision}. `
      + `${t("licence")}: ${licence.name[state.lang]}`;
    $("status").textContent = t("ready");
    $("status").className = "";
    document.body.dataset.ready = `${state.table}:${state.lang}`;
  } catch (err) {
    $("status").textContent = String(err.message || err);
    $("status").className = "error";
  }
}

// ---------------------------------------------------------------------------------------------
// Tables and charts

function fillTable(table, heading, cells) {
  table.replaceChildren(element("tr", {}, element("th", {}, heading), element("th", {}, t("value"))));
  for (const cell of cells) {
    table.append(element("tr", { "data-code": cell.code }, element("td", {}, cell.label),
      element("td", { class: "cell", "data-status": cell.status }, shown(cell))));
  }
}

function scale(cells) {
  const values = cells.filter((c) => !c.status && c.value !== null).map((c) => c.value);
  return Math.max(1, ...values);
}

function lineChart(svg, cells) {
  const w = 720, h = 260, left = 50, bottom = 40, top = 15;
  const max = scale(cells);
  const x = (i) => left + (cells.length > 1 ? i * (w - left - 20) / (cells.length - 1) : (w - left) / 2);
  const y = (v) => h - bottom - v / max * (h - bottom - top);
  svg.replaceChildren(element("line", { class: "axis", x1: left, y1: h - bottom, x2: w - 10, y2: h - bottom }),
    element("line", { class: "axis", x1: left, y1: top, x2: left, y2: h - bottom }),
    element("text", { x: 4, y: top + 4 }, shown({ value: max, status: "" })),
    element("text", { x: 4, y: h - bottom }, "0"));
  let run = [];
  const flush = () => {
    if (run.length > 1) svg.append(element("polyline", { class: "line", points: run.join(" ") }));
    run = [];
  };
  cells.forEach((c, i) => {
    const every = Math.ceil(cells.length / 8);
    if (i % every === 0 || i === cells.length - 1) {
      svg.append(element("text", { x: x(i) - 20, y: h - bottom + 16 }, c.code));
    }
    if (c.status || c.value === null) {  // a gap in the line, marked with the symbol
      flush();
      svg.append(element("text", { class: "hidden-mark", x: x(i) - 3, y: h - bottom - 4, "data-code": c.code }, c.status || ""));
      return;
    }
    run.push(`${x(i)},${y(c.value)}`);
    svg.append(element("circle", { class: "dot", cx: x(i), cy: y(c.value), r: 3, "data-code": c.code },
      element("title", {}, `${c.label}: ${shown(c)}`)));
  });
  flush();
}

function barChart(svg, cells) {
  const w = 720, left = 230, row = 24, top = 10;
  const max = scale(cells);
  svg.setAttribute("height", top + row * cells.length + 10);
  svg.setAttribute("viewBox", `0 0 ${w} ${top + row * cells.length + 10}`);
  svg.replaceChildren();
  cells.forEach((c, i) => {
    const yy = top + i * row;
    svg.append(element("text", { x: 4, y: yy + 15 }, c.label));
    if (c.status || c.value === null) {
      svg.append(element("text", { class: "hidden-mark", x: left + 4, y: yy + 15, "data-code": c.code }, c.status || ""));
      return;
    }
    const width = Math.max(0, c.value / max * (w - left - 80));
    svg.append(element("rect", { class: "bar", x: left, y: yy + 3, width, height: row - 8, "data-code": c.code },
      element("title", {}, `${c.label}: ${shown(c)}`)),
      element("text", { x: left + width + 4, y: yy + 15 }, shown(c)));
  });
}

start().catch((err) => { $("status").textContent = String(err.message || err); $("status").className = "error"; });
