"use strict";
// ebssnap coverage page: everything it shows comes from the embedded report (#report); text is
// set with textContent only, never parsed as HTML.
(function () {
  const report = JSON.parse(document.getElementById("report").textContent);
  const volumes = report.volumes || [];
  const scopes = report.scopes || [];
  const STATUSES = ["unprotected", "stale", "excluded", "protected"];

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) e.setAttribute(k, String(v));
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function hours(s) {
    if (s === null || s === undefined) return "";
    return (s / 3600).toFixed(1) + " h";
  }

  document.getElementById("generated").textContent =
    "Report of " + report.now + ": " + volumes.length + " volume(s) in " + scopes.length +
    " account/Region scope(s).";

  // Scopes: which accounts and Regions were read, and which could not be.
  const scopeList = el("ul", { class: "scopes" });
  for (const s of scopes) {
    const li = el("li", { class: s.error ? "scope error" : "scope" },
      (s.account || "?") + " / " + (s.region || "?") + ": " +
      (s.error ? "not read: " + s.error : s.volumes + " volume(s), " + s.targets.length + " target(s)"));
    scopeList.appendChild(li);
  }
  document.getElementById("scopes").appendChild(scopeList);

  // Totals per status.
  const totals = document.getElementById("totals");
  for (const st of STATUSES) {
    const n = (report.totals && report.totals.volumes && report.totals.volumes[st]) || 0;
    const gib = (report.totals && report.totals.gib && report.totals.gib[st]) || 0;
    const card = el("div", { class: "card " + st, "data-status": st });
    card.appendChild(el("span", { class: "count" }, n));
    card.appendChild(el("span", { class: "label" }, st));
    card.appendChild(el("span", { class: "gib" }, gib + " GiB"));
    totals.appendChild(card);
  }

  // Chart: each selected volume's newest restore-point age as a share of its stale age.
  const chart = document.getElementById("chart");
  const plotted = volumes
    .filter((v) => v.stale_after_seconds)
    .map((v) => ({
      v: v,
      ratio: v.newest_restore_point_age_seconds === null || v.newest_restore_point_age_seconds === undefined
        ? 2 : v.newest_restore_point_age_seconds / v.stale_after_seconds,
    }))
    .sort((a, b) => b.ratio - a.ratio);
  const bars = el("div", { class: "bars", role: "img",
    "aria-label": "restore-point age of " + plotted.length + " volume(s)" });
  bars.appendChild(el("div", { class: "limit" }, "stale"));
  for (const p of plotted) {
    const none = p.v.newest_restore_point_age_seconds === null || p.v.newest_restore_point_age_seconds === undefined;
    const bar = el("div", {
      class: "bar " + p.v.status + (none ? " none" : ""),
      "data-volume": p.v.volume_id,
      title: p.v.volume_id + (p.v.name ? " (" + p.v.name + ")" : "") + ": " +
        (none ? "no restore point" : "newest restore point " + hours(p.v.newest_restore_point_age_seconds) + " old") +
        ", stale after " + hours(p.v.stale_after_seconds),
    });
    bar.style.height = (Math.min(p.ratio, 2) / 2 * 100).toFixed(2) + "%";
    bars.appendChild(bar);
  }
  chart.appendChild(bars);
  if (plotted.length === 0) chart.appendChild(el("p", { class: "hint" }, "No volume is selected by a recurring target."));

  // Table.
  const COLUMNS = [
    ["account", "Account", (v) => v.account],
    ["region", "Region", (v) => v.region],
    ["volume_id", "Volume", (v) => v.volume_id],
    ["name", "Name", (v) => v.name],
    ["status", "Status", (v) => v.status],
    ["size_gb", "GiB", (v) => v.size_gb],
    ["volume_type", "Type", (v) => v.volume_type],
    ["zone", "Zone", (v) => v.zone],
    ["instance_id", "Instance", (v) => v.instance_id],
    ["device", "Device", (v) => v.device],
    ["targets", "Targets", (v) => (v.targets || []).concat(
      (v.disabled_targets || []).map((t) => t + " (disabled)"),
      (v.excluded_by || []).map((e) => e.target + " (excluded: " + e.rule + ")")).join(", ")],
    ["age", "Newest restore point age", (v) => v.newest_restore_point_age_seconds],
    ["restore_points", "Restore points", (v) => v.restore_points],
    ["last_restore_test", "Last restore test", (v) => v.last_restore_test],
    ["next_run", "Next run", (v) => v.next_run],
    ["copies", "Copies", (v) => Object.entries(v.copies || {})
      .map(([region, c]) => region + ": " + c.count).join(", ")],
  ];
  const table = document.getElementById("volumes");
  const headRow = el("tr");
  COLUMNS.forEach(([key, label], i) => {
    const th = el("th", { scope: "col", "data-key": key, "aria-sort": "none", tabindex: 0 }, label);
    th.addEventListener("click", () => sortBy(i));
    th.addEventListener("keydown", (e) => { if (e.key === "Enter") sortBy(i); });
    headRow.appendChild(th);
  });
  table.tHead.appendChild(headRow);
  const tbody = table.tBodies[0];
  const rows = volumes.map((v) => {
    const tr = el("tr", { class: v.status, "data-volume": v.volume_id, "data-status": v.status });
    for (const [key, , get] of COLUMNS) {
      const value = get(v);
      const text = key === "age" ? hours(value) : value;
      tr.appendChild(el("td", { "data-key": key }, text === undefined || text === null ? "" : text));
    }
    const haystack = COLUMNS.map(([, , get]) => get(v)).filter((x) => x !== null && x !== undefined)
      .join(" ").toLowerCase();
    return { v: v, tr: tr, haystack: haystack };
  });
  for (const r of rows) tbody.appendChild(r.tr);

  let sortState = { col: -1, dir: 1 };
  function sortBy(i) {
    sortState = { col: i, dir: sortState.col === i ? -sortState.dir : 1 };
    const get = COLUMNS[i][2];
    rows.sort((a, b) => {
      const x = get(a.v), y = get(b.v);
      if (x === y) return 0;
      if (x === null || x === undefined || x === "") return 1;
      if (y === null || y === undefined || y === "") return -1;
      return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * sortState.dir;
    });
    for (const r of rows) tbody.appendChild(r.tr);
    headRow.querySelectorAll("th").forEach((th, j) => th.setAttribute("aria-sort",
      j === i ? (sortState.dir > 0 ? "ascending" : "descending") : "none"));
  }

  const filter = document.getElementById("filter");
  const status = document.getElementById("status");
  const shown = document.getElementById("shown");
  function applyFilter() {
    const q = filter.value.trim().toLowerCase();
    const st = status.value;
    let n = 0;
    for (const r of rows) {
      const ok = (!st || r.v.status === st) && (!q || r.haystack.includes(q));
      r.tr.hidden = !ok;
      if (ok) n++;
    }
    shown.textContent = n + " of " + rows.length + " shown";
  }
  filter.addEventListener("input", applyFilter);
  status.addEventListener("change", applyFilter);
  applyFilter();
})();
