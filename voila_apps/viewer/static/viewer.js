// corehour's results viewer: asks the server (voila_apps/viewer/server.py) for what to draw and
// draws it with plotly.js (WebGL).  The server has already made it small: decimated grids,
// isosurface meshes, at most so many atoms a frame.  #scene's data-drawn counts finished
// draws, so tests and people's scripts know when a picture is complete.
"use strict";

const page = JSON.parse(document.getElementById("page-data").textContent);
const sceneDiv = document.getElementById("scene");
const statusLine = document.getElementById("status");
const controls = document.getElementById("controls");
const flatControls = document.getElementById("flat-controls");
// plotly draws WebGL at twice the screen's resolution unless told; in software (a node or a
// laptop without a GPU) that costs four times the pixels.  The screen's own ratio is enough.
const plotConfig = {
  responsive: true,
  displaylogo: false,
  plotGlPixelRatio: Math.min(2, Math.max(1, window.devicePixelRatio || 1)),
};
const SURFACE_COLOURS = { positive: "#d62728", negative: "#1f77b4" };

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

async function ask(what, params) {
  const query = new URLSearchParams({ path: page.path, ...params });
  let response;
  if (window.firstScene && what === "scene") {
    response = await window.firstScene; // asked for by the page before plotly.js loaded
    window.firstScene = null;
  } else {
    const headers = { "X-XSRFToken": page.xsrf };
    response = await fetch(`${page.api}${what}?${query}`, { credentials: "same-origin", headers });
  }
  let body;
  try {
    body = await response.json();
  } catch (e) {
    throw new Error(`the server answered ${response.status} ${response.statusText}`);
  }
  if (!response.ok) throw new Error(body.message || `the server answered ${response.status}`);
  return body;
}

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function labelled(text, input) {
  return element("label", {}, [text, input]);
}

function axesSwitch() {
  const box = element("input", { id: "axes", type: "checkbox" });
  box.checked = view.axes;
  box.addEventListener("change", () => {
    view.axes = box.checked;
    const visible = { "scene.xaxis.visible": view.axes, "scene.yaxis.visible": view.axes };
    Plotly.relayout(sceneDiv, { ...visible, "scene.zaxis.visible": view.axes });
  });
  return labelled("Axes ", box);
}

const paintedFrame = () =>
  new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));

// Draws ``traces``, then adds ``later`` (atoms and bonds): the surfaces appear a few hundred
// milliseconds sooner, before WebGL has built the markers' and lines' programs.
async function draw(traces, layout, later = []) {
  sceneDiv.dataset.state = "drawing";
  const fresh = !sceneDiv.dataset.firstFrameMs;
  await Plotly.react(sceneDiv, fresh ? traces : [...traces, ...later], layout, plotConfig);
  // Plotly resolves once the WebGL scene has the new data; one more animation frame and it
  // is on the screen.
  await paintedFrame();
  if (fresh) {
    sceneDiv.dataset.firstFrameMs = String(Math.round(performance.now())); // since navigation
    if (later.length) {
      await Plotly.addTraces(sceneDiv, later);
      await paintedFrame();
    }
  }
  sceneDiv.dataset.drawn = String(Number(sceneDiv.dataset.drawn) + 1);
  sceneDiv.dataset.state = "ready";
}

// Axes start hidden, as molecular viewers show them: plotly turns every tick label into
// triangles, which was most of the first frame's time (0.6 s of 2 s in software WebGL).
const view = { axes: false };

function sceneLayout(title, unit) {
  const axis = (name) => ({
    visible: view.axes,
    title: { text: unit ? `${name} (${unit})` : name },
  });
  return {
    title: { text: title, font: { size: 14 } },
    margin: { l: 0, r: 0, t: 36, b: 0 },
    showlegend: false,
    uirevision: page.path.replace(/[^/]*$/, ""), // keep the camera when the field changes
    scene: {
      aspectmode: "data",
      xaxis: axis("x"),
      yaxis: axis("y"),
      zaxis: axis("z"),
    },
  };
}

// --- cube files: isosurfaces, atoms and bonds; a slice and a line profile -------------------
async function showCube(iso) {
  const started = performance.now();
  say(iso === undefined ? `Reading ${page.name}…` : `Isosurface at ±${iso}…`);
  const cube = await ask("scene", iso === undefined ? {} : { iso });
  const traces = cube.surfaces
    .filter((s) => s.x.length)
    .map((s) => ({
      type: "mesh3d",
      name: `${s.name} (${s.level})`,
      x: s.x, y: s.y, z: s.z, i: s.i, j: s.j, k: s.k,
      color: SURFACE_COLOURS[s.name],
      opacity: 0.75,
      flatshading: false,
      lighting: { ambient: 0.45, diffuse: 0.8, specular: 0.2 },
      hoverinfo: "name",
    }));
  const mol = cube.molecule;
  const atoms = [];
  if (mol.bonds.length) {
    const at = (k) => mol.bonds.map((p) => (p ? p[k] : null));
    atoms.push({
      type: "scatter3d", mode: "lines", name: "bonds",
      x: at(0), y: at(1), z: at(2),
      line: { color: "#777", width: 6 }, hoverinfo: "skip",
    });
  }
  atoms.push({
    type: "scatter3d", mode: "markers", name: "atoms",
    x: mol.x, y: mol.y, z: mol.z, text: mol.symbols, hoverinfo: "text",
    marker: { size: 7, color: mol.colours, line: { color: "#333", width: 1 } },
  });
  const field = cube.fields.find((f) => f.name === page.name);
  const title = `${field ? field.label : page.name}: isosurface ${cube.signed ? "±" : ""}${cube.iso}`;
  buildCubeControls(cube);
  await draw(traces, sceneLayout(title, "Å"), atoms);
  sceneDiv.dataset.field = page.name;
  sceneDiv.dataset.iso = String(cube.iso);
  const empty = cube.surfaces.every((s) => !s.x.length);
  const [low, high] = cube.range.map((v) => v.toPrecision(3));
  say(
    empty
      ? `No surface at ${cube.iso}: the values run from ${low} to ${high}. Choose a smaller iso-value.`
      : `Grid ${cube.shape.join("×")}${averaged(cube)}; values ${low} to ${high}; ` +
          `drawn in ${Math.round(performance.now() - started)} ms.`,
    false,
  );
}

function averaged(cube) {
  const same = cube.grid.every((n, k) => n === cube.shape[k]);
  return same ? "" : ` (surfaces from its ${cube.grid.join("×")} block averages)`;
}

function buildCubeControls(cube) {
  controls.replaceChildren();
  const fields = element("select", { id: "field", "aria-label": "Orbital or field" });
  for (const f of cube.fields) {
    const option = element("option", { value: f.name, text: f.label });
    if (f.name === page.name) option.selected = true;
    fields.append(option);
  }
  fields.addEventListener("change", () => openSibling(fields.value));
  const iso = element("input", {
    id: "iso", type: "number", min: "0.0001", step: "0.005", value: String(cube.iso),
  });
  iso.addEventListener("change", () => {
    const value = Number(iso.value);
    if (!(value > 0)) return say("Iso-value: a positive number, such as 0.05.", true);
    showCube(value).catch(failed);
  });
  const reset = element("button", { id: "reset-view", type: "button", text: "Reset view" });
  reset.addEventListener("click", () =>
    Plotly.relayout(sceneDiv, { "scene.camera": { eye: { x: 1.25, y: 1.25, z: 1.25 } } }),
  );
  controls.append(
    labelled(cube.fields.length > 1 ? "Orbital " : "Field ", fields),
    labelled(cube.signed ? "Iso-value ± " : "Iso-value ", iso),
    axesSwitch(),
    reset,
  );
}

function openSibling(name) {
  const folder = page.path.replace(/[^/]*$/, "");
  page.path = folder + name;
  page.name = name;
  document.getElementById("file-name").textContent = name;
  document.title = `${name} · corehour viewer`;
  history.replaceState(null, "", `?${new URLSearchParams({ path: page.path })}`);
  showCube().then(() => showSlice()).catch(failed);
}

async function showSlice(axis, index) {
  const params = axis === undefined ? {} : { axis, index };
  const cut = await ask("slice", params);
  flatControls.replaceChildren();
  const axes = element("select", { id: "slice-axis", "aria-label": "Slice across" });
  for (const a of ["x", "y", "z"]) {
    const option = element("option", { value: a, text: `across ${a}` });
    if (a === cut.axis) option.selected = true;
    axes.append(option);
  }
  const plane = element("input", {
    id: "slice-index", type: "range", min: "0", max: String(cut.points - 1), value: String(cut.index),
  });
  axes.addEventListener("change", () => showSlice(axes.value).catch(failed));
  plane.addEventListener("change", () => showSlice(axes.value, plane.value).catch(failed));
  flatControls.append(labelled("2D slice ", axes), labelled("Plane ", plane));
  await Plotly.react(
    "slice",
    [{
      type: "heatmap", x: cut.u_positions, y: cut.v_positions, z: cut.values,
      colorscale: cutIsSigned(cut) ? "RdBu" : "Viridis", reversescale: cutIsSigned(cut),
      zmid: cutIsSigned(cut) ? 0 : undefined,
    }],
    {
      title: { text: `Slice ${cut.index + 1} of ${cut.points} across ${cut.axis} (${cut.position} Å)`, font: { size: 13 } },
      margin: { l: 50, r: 10, t: 36, b: 40 },
      xaxis: { title: { text: `${cut.u} (Å)` } },
      yaxis: { title: { text: `${cut.v} (Å)` }, scaleanchor: "x" },
    },
    plotConfig,
  );
  await Plotly.react(
    "profile",
    [{ type: "scatter", mode: "lines", x: cut.profile.positions, y: cut.profile.values }],
    {
      title: { text: `Line profile along ${cut.profile.along} (${cut.v} = ${cut.profile.at} Å)`, font: { size: 13 } },
      margin: { l: 60, r: 10, t: 36, b: 40 },
      xaxis: { title: { text: `${cut.profile.along} (Å)` } },
      yaxis: { title: { text: "value (a.u.)" } },
    },
    plotConfig,
  );
}

function cutIsSigned(cut) {
  return cut.values.some((row) => row.some((v) => v < 0));
}

// --- LAMMPS dumps: atoms by type or speed, frame by frame --------------------------------
const movie = { frame: null, frames: 0, colour: "type", playing: false, busy: false };

async function showFrame(number) {
  movie.busy = true;
  try {
    const params = { colour: movie.colour };
    if (number !== null && number !== undefined) params.frame = number;
    const frame = await ask("scene", params);
    movie.frame = frame.frame;
    movie.frames = frame.frames;
    const bySpeed = frame.colour === "speed";
    const traces = [
      {
        type: "scatter3d", mode: "markers", name: "atoms",
        x: frame.x, y: frame.y, z: frame.z,
        marker: {
          size: frame.shown > 5000 ? 2 : 3.5,
          color: frame.values,
          colorscale: bySpeed ? "Viridis" : "Portland",
          showscale: bySpeed,
          colorbar: bySpeed ? { title: { text: "speed" }, thickness: 14 } : undefined,
        },
        hoverinfo: "skip",
      },
      boxTrace(frame.box),
    ];
    buildFrameControls(frame);
    // A dump's length unit is the run's (σ in LJ units, Å in real units): none is printed.
    await draw(traces, sceneLayout(`Step ${frame.step.toLocaleString("en")}, frame ${frame.frame + 1} of ${frame.frames}`, ""));
    sceneDiv.dataset.frame = String(frame.frame);
    sceneDiv.dataset.colour = frame.colour;
    const sample = frame.every > 1 ? ` (every ${frame.every}th atom of ${frame.atoms.toLocaleString("en")})` : "";
    say(`${frame.shown.toLocaleString("en")} atoms drawn${sample}; ${frame.frames} frames.`);
    await Plotly.react(
      "profile",
      [{ type: "scatter", mode: "lines", x: frame.profile.positions, y: frame.profile.density }],
      {
        title: { text: `Number density along z, step ${frame.step.toLocaleString("en")}`, font: { size: 13 } },
        margin: { l: 60, r: 10, t: 36, b: 40 },
        xaxis: { title: { text: "z" } },
        yaxis: { title: { text: "atoms per unit volume" }, rangemode: "tozero" },
      },
      plotConfig,
    );
  } finally {
    movie.busy = false;
  }
}

function boxTrace([low, high]) {
  const corner = (bits) => [0, 1, 2].map((k) => ((bits >> k) & 1 ? high[k] : low[k]));
  const edges = [[0, 1], [1, 3], [3, 2], [2, 0], [4, 5], [5, 7], [7, 6], [6, 4], [0, 4], [1, 5], [2, 6], [3, 7]];
  const x = [], y = [], z = [];
  for (const [a, b] of edges) {
    for (const p of [corner(a), corner(b)]) { x.push(p[0]); y.push(p[1]); z.push(p[2]); }
    x.push(null); y.push(null); z.push(null);
  }
  return { type: "scatter3d", mode: "lines", x, y, z, line: { color: "#999", width: 2 }, hoverinfo: "skip" };
}

function buildFrameControls(frame) {
  if (document.getElementById("frame")) {
    const slider = document.getElementById("frame");
    slider.max = String(frame.frames - 1);
    slider.value = String(frame.frame);
    document.getElementById("frame-label").textContent = `${frame.frame + 1} / ${frame.frames}`;
    return;
  }
  const slider = element("input", {
    id: "frame", type: "range", min: "0", max: String(frame.frames - 1), value: String(frame.frame),
  });
  const shown = element("span", { id: "frame-label", text: `${frame.frame + 1} / ${frame.frames}` });
  slider.addEventListener("input", () => {
    shown.textContent = `${Number(slider.value) + 1} / ${movie.frames}`;
  });
  slider.addEventListener("change", () => showFrame(Number(slider.value)).catch(failed));
  const play = element("button", { id: "play", type: "button", text: "Play" });
  play.addEventListener("click", () => {
    movie.playing = !movie.playing;
    play.textContent = movie.playing ? "Pause" : "Play";
    if (movie.playing) playNext();
  });
  const colour = element("select", { id: "colour", "aria-label": "Colour atoms by" });
  for (const [value, text] of [["type", "type"], ["speed", "speed"]]) {
    colour.append(element("option", { value, text }));
  }
  colour.addEventListener("change", () => {
    movie.colour = colour.value;
    showFrame(movie.frame).catch(failed);
  });
  controls.append(
    play,
    labelled("Frame ", slider),
    shown,
    labelled("Colour by ", colour),
    axesSwitch(),
  );
}

async function playNext() {
  if (!movie.playing) return;
  const next = movie.frame + 1 < movie.frames ? movie.frame + 1 : 0;
  try {
    await showFrame(next);
  } catch (e) {
    movie.playing = false;
    document.getElementById("play").textContent = "Play";
    return failed(e);
  }
  setTimeout(playNext, 120);
}

function failed(error) {
  sceneDiv.dataset.state = "error";
  say(`Cannot show ${page.name}: ${error.message}`, true);
}

if (page.kind === "cube") {
  showCube().then(() => showSlice()).catch(failed);
} else {
  document.getElementById("slice").hidden = true; // a dump's 2D view is its density profile
  // The first frame first: a finished run's last frame is one click away on the slider.
  showFrame(0).catch(failed);
}
