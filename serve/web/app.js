// The page of resgo serve: shows a chosen or dropped image, posts it to
// /predict and shows the top classes with their probabilities and the
// time the answer took. Plain JavaScript, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
let previewURL = null;

function showError(msg) {
  $("error").textContent = msg;
  $("error").hidden = false;
}

// showResults lists the top classes, each with a bar as long as its
// probability.
function showResults(top) {
  const list = $("results");
  list.replaceChildren();
  for (const c of top) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = c.name;
    name.title = c.name + " (class " + c.index + ")";
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    fill.style.width = (100 * c.prob).toFixed(1) + "%";
    bar.append(fill);
    const prob = document.createElement("span");
    prob.className = "prob";
    prob.textContent = (100 * c.prob).toFixed(1) + "%";
    li.append(name, bar, prob);
    list.append(li);
  }
}

// serverTiming returns the steps of a Server-Timing header as text.
function serverTiming(header) {
  if (!header) return "";
  const parts = [];
  for (const entry of header.split(",")) {
    const m = entry.trim().match(/^(\w+);dur=([\d.]+)/);
    if (m) parts.push(m[1] + " " + m[2] + " ms");
  }
  return parts.join(", ");
}

async function classify(file) {
  $("error").hidden = true;
  $("results").replaceChildren();
  $("latency").textContent = "";
  if (previewURL) URL.revokeObjectURL(previewURL);
  previewURL = URL.createObjectURL(file);
  $("preview").src = previewURL;
  $("preview").hidden = false;
  $("hint").textContent = file.name;
  $("status").textContent = "Classifying " + file.name + "…";
  const began = performance.now();
  try {
    const resp = await fetch("predict?topk=5", {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
    const took = performance.now() - began;
    const answer = await resp.json();
    $("status").textContent = "";
    if (!resp.ok) {
      showError(answer.error || "the server answered " + resp.status);
      return;
    }
    showResults(answer.top);
    const steps = serverTiming(resp.headers.get("Server-Timing"));
    $("latency").textContent = "Answered in " + took.toFixed(1) + " ms" + (steps ? " (server: " + steps + ")" : "");
  } catch (e) {
    $("status").textContent = "";
    showError("The request failed: " + e.message);
  }
}

function init() {
  fetch("info").then((r) => r.json()).then((info) => {
    $("model").textContent = info.arch + ", " + info.num_classes + " classes, on " + info.backend;
  }).catch(() => { $("model").textContent = ""; });

  $("file").addEventListener("change", () => {
    if ($("file").files.length > 0) classify($("file").files[0]);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length > 0) classify(e.dataTransfer.files[0]);
  });
}

init();
