"""The spawn form, built from the site file.

Pure: ``render_options_form(site)`` returns the HTML fields that JupyterHub
wraps in its own ``<form>``.  Every limit is shown next to its field, and a
small script narrows clusters, images and ranges when the profile changes.
The form is a convenience only: the server validates every value again.
"""

from __future__ import annotations

import json
from html import escape

from centre.options import AUTO
from centre.site import Site


def _profile_data(site: Site) -> dict[str, dict]:
    data = {}
    for name, p in site.profiles.items():
        data[name] = {
            "clusters": list(site.clusters_for(name)),
            "cores": p.cores.model_dump(),
            "memory_gb": p.memory_gb.model_dump(),
            "gpus": p.gpus.model_dump(),
            "walltime_hours": p.walltime_hours.model_dump(),
            "images": list(p.images),
            "default_image": p.image_default,
        }
    return data


def _options(pairs: list[tuple[str, str]], selected: str) -> str:
    return "".join(
        f'<option value="{escape(v)}"{" selected" if v == selected else ""}>{escape(label)}</option>'
        for v, label in pairs
    )


def _number_field(
    name: str, label: str, low: float, high: float, value: float, step: str, unit: str
) -> str:
    return f"""
  <div class="ch-field">
    <label for="ch-{name}">{escape(label)}</label>
    <input class="form-control" type="number" inputmode="decimal" id="ch-{name}" name="{name}"
           min="{low:g}" max="{high:g}" step="{step}" value="{value:g}" required>
    <small class="form-text text-muted" id="ch-{name}-limit">{low:g} to {high:g} {escape(unit)}</small>
  </div>"""


def _account_field(billing: dict | None) -> str:
    if not billing:
        return ""
    pairs = [(a["name"], a["label"]) for a in billing["accounts"]]
    return f"""
  <div class="ch-field">
    <label for="ch-account">Charge to account</label>
    <select class="form-control" id="ch-account" name="account">{_options(pairs, pairs[0][0] if pairs else "")}</select>
    <small class="form-text text-muted">your personal account unless you choose a project or course</small>
  </div>"""


def _price_panel(billing: dict | None) -> str:
    if not billing:
        return ""
    return """
  <div class="ch-field ch-wide ch-price" id="ch-price" role="status" aria-live="polite">
    <strong id="ch-price-per-hour"></strong>
    <span id="ch-price-detail"></span>
    <span id="ch-price-covers"></span>
  </div>"""


def _starts_panel(estimates_url: str | None) -> str:
    if not estimates_url:
        return ""
    return """
  <div class="ch-field ch-wide ch-starts" id="ch-starts" role="status" aria-live="polite">
    <strong>When and where it would start</strong>
    <ul id="ch-starts-list"><li>asking the clusters…</li></ul>
  </div>"""


def _recent_use_panel(recent_use_url: str | None) -> str:
    if not recent_use_url:
        return ""
    return """
  <div class="ch-field ch-wide ch-recent" id="ch-recent" role="status" aria-live="polite" data-state="asking" hidden></div>"""


def render_options_form(
    site: Site,
    billing: dict | None = None,
    estimates_url: str | None = None,
    recent_use_url: str | None = None,
) -> str:
    """The form's fields; with ``billing`` (accounts, prices) it also shows the live price,
    with ``estimates_url`` each cluster's expected start (spawners/estimates.py), and with
    ``recent_use_url`` how busy the person's last servers on the chosen profile were."""
    profile_name = site.default_profile
    profile = site.profiles[profile_name]
    clusters = site.clusters_for(profile_name)
    cluster_pairs = [(AUTO, "auto: where it starts soonest")] + [
        (c, site.clusters[c].display_name or c) for c in clusters
    ]
    profile_pairs = [(n, p.display_name or n) for n, p in site.profiles.items()]
    image_pairs = [(i, site.images[i].display_name or i) for i in profile.images]
    descriptions = {n: p.description for n, p in site.profiles.items()}
    names = {
        "clusters": {n: c.display_name or n for n, c in site.clusters.items()},
        "images": {n: i.display_name or n for n, i in site.images.items()},
    }
    data = json.dumps(
        {
            "profiles": _profile_data(site),
            "partitions": {n: p.partition for n, p in site.profiles.items()},
            "descriptions": descriptions,
            "names": names,
            "billing": billing,
            "estimates_url": estimates_url,
            "recent_use_url": recent_use_url,
        }
    )
    # "</" cannot appear inside the script element, whatever the site file holds.
    data = data.replace("</", "<\\/")
    return f"""
<style>
  .ch-form {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: 0.75rem 1.25rem; }}
  .ch-field label {{ font-weight: 600; display: block; }}
  .ch-field small {{ display: block; }}
  .ch-wide {{ grid-column: 1 / -1; }}
  .ch-price {{ padding: 0.5rem 0.75rem; border-radius: 0.375rem; background: var(--bs-tertiary-bg, #f3f3f3); }}
  .ch-price.ch-short {{ background: var(--bs-warning-bg-subtle, #fff3cd); }}
  .ch-starts ul {{ margin: 0.25rem 0 0; padding-left: 1.25rem; }}
</style>
<div class="ch-form" id="corehour-spawn-form">
  <div class="ch-field">
    <label for="ch-profile">Profile</label>
    <select class="form-control" id="ch-profile" name="profile">{_options(profile_pairs, profile_name)}</select>
    <small class="form-text text-muted" id="ch-profile-description">{escape(profile.description)}</small>
  </div>
  <div class="ch-field">
    <label for="ch-cluster">Cluster</label>
    <select class="form-control" id="ch-cluster" name="cluster">{_options(cluster_pairs, AUTO)}</select>
    <small class="form-text text-muted">auto picks the cluster that can start the job soonest</small>
  </div>
  {_number_field("cores", "CPU cores", profile.cores.min, profile.cores.max, profile.cores.default, "1", "cores")}
  {_number_field("memory_gb", "Memory (GB)", profile.memory_gb.min, profile.memory_gb.max, profile.memory_gb.default, "1", "GB")}
  {_number_field("gpus", "GPUs", profile.gpus.min, profile.gpus.max, profile.gpus.default, "1", "GPUs")}
  {_number_field("walltime_hours", "Walltime (hours)", 0.25, profile.walltime_hours.max, profile.walltime_hours.default, "0.25", "hours")}
  <div class="ch-field">
    <label for="ch-image">Image</label>
    <select class="form-control" id="ch-image" name="image">{_options(image_pairs, profile.image_default)}</select>
  </div>{_account_field(billing)}{_price_panel(billing)}{_starts_panel(estimates_url)}{_recent_use_panel(recent_use_url)}
</div>
<script type="application/json" id="corehour-form-data">{data}</script>
<script>
(function () {{
  var data = JSON.parse(document.getElementById("corehour-form-data").textContent);
  var byId = function (id) {{ return document.getElementById(id); }};
  function fill(select, values, labels, first) {{
    select.innerHTML = "";
    (first ? [first] : []).concat(values).forEach(function (v) {{
      var o = document.createElement("option");
      o.value = v[0]; o.textContent = v[1]; select.appendChild(o);
    }});
  }}
  function range(name, r, unit) {{
    var input = byId("ch-" + name);
    input.min = name === "walltime_hours" ? 0.25 : r.min; input.max = r.max; input.value = r.default;
    byId("ch-" + name + "-limit").textContent = input.min + " to " + r.max + " " + unit;
    input.closest(".ch-field").style.display = (name === "gpus" && r.max === 0) ? "none" : "";
  }}
  function update() {{
    var name = byId("ch-profile").value, p = data.profiles[name];
    byId("ch-profile-description").textContent = data.descriptions[name] || "";
    fill(byId("ch-cluster"), p.clusters.map(function (c) {{ return [c, data.names.clusters[c]]; }}),
         null, ["auto", "auto: where it starts soonest"]);
    fill(byId("ch-image"), p.images.map(function (i) {{ return [i, data.names.images[i]]; }}));
    byId("ch-image").value = p.default_image;
    range("cores", p.cores, "cores"); range("memory_gb", p.memory_gb, "GB");
    range("gpus", p.gpus, "GPUs"); range("walltime_hours", p.walltime_hours, "hours");
  }}
  function price() {{
    var b = data.billing;
    if (!b) return;
    var profile = byId("ch-profile").value, partition = data.partitions[profile];
    var cluster = byId("ch-cluster").value;
    var clusters = cluster === "auto" ? data.profiles[profile].clusters : [cluster];
    var account = b.accounts.filter(function (a) {{ return a.name === byId("ch-account").value; }})[0];
    if (!account) return;
    var cores = +byId("ch-cores").value || 0, mem = +byId("ch-memory_gb").value || 0;
    var gpus = byId("ch-gpus").closest(".ch-field").style.display === "none" ? 0 : (+byId("ch-gpus").value || 0);
    var perHour = 0, rate = null;
    clusters.forEach(function (c) {{
      var r = (b.prices[c] || {{}})[partition];
      if (!r) return;
      var p = (cores * r.core_hour + gpus * r.gpu_hour + mem * r.gb_mem_hour) * account.multiplier;
      if (p >= perHour) {{ perHour = p; rate = r; }}
    }});
    var available = account.available_mc / 1000;
    byId("ch-price-per-hour").textContent = perHour.toFixed(3) + " " + b.currency + " per hour";
    byId("ch-price-detail").textContent = rate ? " (" + cores + " cores × " + rate.core_hour +
      (gpus ? " + " + gpus + " GPUs × " + rate.gpu_hour : "") + " + " + mem + " GB × " + rate.gb_mem_hour +
      (+account.multiplier !== 1 ? ", × " + account.multiplier + " tier" : "") +
      (clusters.length > 1 ? ", dearest of " + clusters.join(", ") : "") + ")." : "";
    var minimum = perHour * b.minimum_run_minutes / 60;
    var hours = perHour > 0 ? available / perHour : Infinity;
    var covers = byId("ch-price-covers"), panel = byId("ch-price");
    if (perHour > 0 && available < minimum) {{
      covers.textContent = " Your " + available.toFixed(3) + " " + b.currency + " do not cover the minimum run of " +
        b.minimum_run_minutes + " minutes (" + minimum.toFixed(3) + "). Top up first: see " + b.usage_url + ".";
      panel.classList.add("ch-short");
    }} else {{
      covers.textContent = " Your " + available.toFixed(3) + " " + b.currency + " cover " +
        (isFinite(hours) ? hours.toFixed(1) + " hours" : "any length") + ".";
      panel.classList.remove("ch-short");
    }}
  }}
  // Each cluster's expected start and price, asked of the hub (sbatch --test-only as the
  // person); the answer of a question overtaken by a newer one is dropped.
  var asked = 0, timer = null;
  function starts() {{
    if (!data.estimates_url) return;
    clearTimeout(timer);
    timer = setTimeout(function () {{
      var ticket = ++asked, query = new URLSearchParams();
      ["profile", "cluster", "cores", "memory_gb", "walltime_hours", "image"].forEach(function (n) {{
        query.set(n, byId("ch-" + n).value);
      }});
      if (byId("ch-gpus").closest(".ch-field").style.display !== "none") query.set("gpus", byId("ch-gpus").value);
      var xsrf = (window.jhdata || {{}}).xsrf_token || "";
      fetch(data.estimates_url + "?" + query.toString(), {{ credentials: "same-origin", headers: {{ "X-XSRFToken": xsrf }} }})
        .then(function (r) {{ return r.json().then(function (body) {{ return [r.ok, body]; }}); }})
        .then(function (answer) {{ if (ticket === asked) showStarts(answer[0], answer[1]); }})
        .catch(function () {{ if (ticket === asked) showStarts(false, {{ message: "the hub did not answer" }}); }});
    }}, 400);
  }}
  function showStarts(ok, body) {{
    var list = byId("ch-starts-list");
    list.innerHTML = "";
    var rows = ok ? body.clusters : [{{ cluster: "", note: body.message || "no estimate" }}];
    var account = data.billing ? data.billing.accounts.filter(function (a) {{ return a.name === byId("ch-account").value; }})[0] : null;
    rows.forEach(function (row) {{
      var li = document.createElement("li"), text = row.cluster ? (data.names.clusters[row.cluster] || row.cluster) + ": " : "";
      text += row.note;
      if (data.billing && row.hourly_mc != null) {{
        text += " · " + (row.hourly_mc / 1000 * (account ? +account.multiplier : 1)).toFixed(3) + " " + data.billing.currency + " per hour";
      }}
      if (row.auto_pick && byId("ch-cluster").value === "auto") text += " (auto picks this)";
      li.textContent = text;
      li.dataset.cluster = row.cluster || "";
      li.dataset.state = row.state || "error";
      list.appendChild(li);
    }});
  }}
  // How busy the person's last servers on this profile were (My jobs' API), read once.
  var recentJobs = null;
  function recent() {{
    var panel = byId("ch-recent");
    if (!panel || !recentJobs) return;
    var partition = data.partitions[byId("ch-profile").value];
    var rows = recentJobs.filter(function (j) {{
      return j.efficiency && j.elapsed_s >= 60 && j.partition === partition && /^corehour(-|$)/.test(j.name);
    }}).slice(0, 5);
    if (!rows.length) {{ panel.hidden = true; panel.dataset.state = "none"; return; }}
    var percent = rows.reduce(function (s, j) {{ return s + j.efficiency.cpu_percent; }}, 0) / rows.length;
    var busiest = Math.max.apply(null, rows.map(function (j) {{ return j.cores * j.efficiency.cpu_percent / 100; }}));
    var enough = Math.max(1, Math.ceil(busiest * 1.25)), chosen = +byId("ch-cores").value;
    var text = "Your last " + (rows.length === 1 ? "server" : rows.length + " servers") + " on this profile kept " +
      percent.toFixed(0) + " % of their cores busy on average (at most " + busiest.toFixed(2) + " cores).";
    if (enough < chosen) text += " " + enough + (enough === 1 ? " core" : " cores") + " would have served: every core costs the same, busy or idle.";
    panel.textContent = text;
    panel.dataset.state = "ok";
    panel.dataset.suggestedCores = enough < chosen ? String(enough) : "";
    panel.hidden = false;
  }}
  if (data.recent_use_url) {{
    fetch(data.recent_use_url, {{ credentials: "same-origin", headers: {{ "X-XSRFToken": (window.jhdata || {{}}).xsrf_token || "" }} }})
      .then(function (r) {{ return r.ok ? r.json() : {{ jobs: [] }}; }})
      .then(function (body) {{ recentJobs = body.jobs || []; recent(); }})
      .catch(function () {{ recentJobs = []; }});
  }}
  byId("ch-profile").addEventListener("change", function () {{ update(); price(); starts(); recent(); }});
  byId("ch-cores").addEventListener("input", recent);
  ["ch-cluster", "ch-cores", "ch-memory_gb", "ch-gpus", "ch-walltime_hours", "ch-image", "ch-account"].forEach(function (id) {{
    var el = byId(id);
    if (el) {{
      el.addEventListener("change", function () {{ price(); starts(); }});
      el.addEventListener("input", function () {{ price(); starts(); }});
    }}
  }});
  update();
  price();
  starts();
}})();
</script>
"""
