// Filters, search and pagination for the pairs page. Data comes from the JSON block the Python side
// wrote; every string is inserted with textContent (never parsed as HTML).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("pairs-data").textContent);
  const S = data.strings;
  // Rules arrive as short arrays (field names in data.fields); rebuild objects and what derives from them.
  data.pairs.forEach((p) => {
    p.rules = p.rules.map((a) => {
      const r = {};
      data.fields.forEach((name, i) => { r[name] = a[i]; });
      r.type = S[r.type];
      r.changed = r.changed === 1;
      ["c", "r"].forEach((side) => { r[side] = r[side] === null || r[side] === undefined ? null : r[side] === 1; });
      r.c_under = r.c === null ? null : (r.changed ? !r.c : r.c);
      r.r_under = r.r === null ? null : (r.changed ? !r.r : r.r);
      r.sep = r.c === null || r.r === null ? null : r.c !== r.r;
      return r;
    });
    p.types = [...new Set(p.rules.map((r) => r.type))];
    p.sep_types = [...new Set(p.rules.filter((r) => r.sep).map((r) => r.type))];
  });
  const pageSize = window.REVERSO_PAGE_SIZE || 50;
  const $ = (id) => document.getElementById(id);
  const fields = ["builder", "split", "margin", "session", "turn", "type"];
  let page = 0;

  const text = (i) => (i === null || i === undefined ? "" : S[i]);
  const haystacks = data.pairs.map((p) => [
    ...p.prompt.map((m) => text(m[1])), text(p.chosen), text(p.rejected),
    ...p.rules.flatMap((r) => [text(r.c_why), text(r.r_why), text(r.rule), text(r.orig)]),
    p.session, ...p.warnings,
  ].join("\n").toLowerCase());

  function matches(p, i, f) {
    if (f.builder && p.builder !== f.builder) return false;
    if (f.split && p.split !== f.split) return false;
    if (f.margin && String(p.margin) !== f.margin) return false;
    if (f.session && p.session !== f.session) return false;
    if (f.turn && String(p.turn) !== f.turn) return false;
    if (f.type && !(f.separating ? p.sep_types : p.types).includes(f.type)) return false;
    if (!f.type && f.separating && p.sep_types.length === 0) return false;
    if (f.warnings && p.warnings.length === 0) return false;
    if (f.search && !haystacks[i].includes(f.search)) return false;
    return true;
  }

  function current() {
    const f = {};
    fields.forEach((name) => { f[name] = $("f-" + name).value; });
    f.separating = $("f-separating").checked;
    f.warnings = $("f-warnings").checked;
    f.search = $("f-search").value.trim().toLowerCase();
    return f;
  }

  function badge(el, ok, label) {
    el.className = "badge " + (ok === true ? "pass" : ok === false ? "fail" : "unknown");
    el.textContent = label || (ok === true ? "pass" : ok === false ? "fail" : "?");
    return el;
  }

  function cell(tr, cls) { const td = document.createElement("td"); if (cls) td.className = cls; tr.appendChild(td); return td; }

  function ruleCell(td, code, english) {
    if (code === null || code === undefined) { td.textContent = "—"; return; }
    const en = document.createElement("span"); en.textContent = text(english) || text(code); td.appendChild(en);
    const c = document.createElement("code"); c.textContent = text(code); td.appendChild(c);
  }

  function verdictCell(td, ok, why) {
    td.appendChild(badge(document.createElement("span"), ok));
    if (why !== null && why !== undefined && text(why)) {
      const w = document.createElement("span"); w.className = "why"; w.textContent = text(why); td.appendChild(w);
    }
  }

  function render(p) {
    const node = $("pair-template").content.firstElementChild.cloneNode(true);
    node.dataset.pairId = p.id;
    node.querySelector(".title").textContent = "pair #" + p.id;
    const b = node.querySelector(".builder"); b.textContent = p.builder; b.classList.add(p.builder);
    node.querySelector(".where").textContent = p.split + " · session " + p.session + " · turn " + p.turn;
    node.querySelector(".g").textContent = "g = " + (p.g === null ? "?" : p.g);
    node.querySelector(".margin").textContent = "margin " + p.margin;
    const finish = [];
    if (p.chosen_finish === "length") finish.push("chosen truncated");
    if (p.rejected_finish === "length") finish.push("rejected truncated");
    node.querySelector(".finish").textContent = finish.join(", ");
    node.querySelector(".warnings").textContent = p.warnings.map((w) => "⚠ " + w).join("  ");
    const body = node.querySelector("tbody");
    p.rules.forEach((r, i) => {
      const tr = document.createElement("tr");
      tr.className = "rule" + (r.changed ? " changed" : "");
      tr.dataset.type = r.type;
      cell(tr, "idx").textContent = String(i + 1);
      ruleCell(cell(tr, "orig-rule"), r.orig, r.orig_en);
      ruleCell(cell(tr, "prompt-rule"), r.rule, r.rule_en);
      verdictCell(cell(tr), r.c, r.c_why);
      verdictCell(cell(tr), r.r, r.r_why);
      cell(tr).textContent = r.sep === null ? "?" : r.sep ? "yes" : "";
      const under = cell(tr);
      badge(under.appendChild(document.createElement("span")), r.c_under);
      under.appendChild(document.createTextNode(" "));
      badge(under.appendChild(document.createElement("span")), r.r_under);
      body.appendChild(tr);
    });
    const messages = node.querySelector(".messages");
    p.prompt.forEach((m) => {
      const div = document.createElement("div"); div.className = "msg";
      const role = document.createElement("div"); role.className = "role"; role.textContent = m[0];
      const pre = document.createElement("pre"); pre.className = "text"; pre.textContent = text(m[1]);
      div.appendChild(role); div.appendChild(pre); messages.appendChild(div);
    });
    node.querySelector(".chosen .text").textContent = text(p.chosen);
    node.querySelector(".rejected .text").textContent = text(p.rejected);
    node.querySelector(".chosen h4").textContent = "chosen" + (p.chosen_sample !== null && p.chosen_sample !== undefined ? " (sample " + p.chosen_sample + ")" : "");
    node.querySelector(".rejected h4").textContent = "rejected" + (p.rejected_sample !== null && p.rejected_sample !== undefined ? " (sample " + p.rejected_sample + ")" : "");
    const extra = Object.keys(p.extra);
    node.querySelector(".extra").textContent = extra.length ? "other fields: " + extra.map((k) => k + "=" + JSON.stringify(p.extra[k])).join(", ") : "";
    return node;
  }

  function update() {
    const f = current();
    const hits = data.pairs.filter((p, i) => matches(p, i, f));
    const pages = Math.max(1, Math.ceil(hits.length / pageSize));
    page = Math.min(page, pages - 1);
    const list = $("pair-list");
    list.replaceChildren(...hits.slice(page * pageSize, (page + 1) * pageSize).map(render));
    const first = hits.length ? page * pageSize + 1 : 0;
    const last = Math.min(hits.length, (page + 1) * pageSize);
    const label = "Showing " + first + "–" + last + " of " + hits.length + " matching pairs (" + data.pairs.length + " in all) · page " + (page + 1) + " of " + pages;
    $("shown").textContent = label; $("shown2").textContent = label;
    $("shown").dataset.matching = String(hits.length);
    ["prev", "prev2"].forEach((id) => { $(id).disabled = page === 0; });
    ["next", "next2"].forEach((id) => { $(id).disabled = page >= pages - 1; });
  }

  [...fields.map((n) => "f-" + n), "f-separating", "f-warnings"].forEach((id) => $(id).addEventListener("change", () => { page = 0; update(); }));
  $("f-search").addEventListener("input", () => { page = 0; update(); });
  ["prev", "prev2"].forEach((id) => $(id).addEventListener("click", () => { page -= 1; update(); }));
  ["next", "next2"].forEach((id) => $(id).addEventListener("click", () => { page += 1; update(); }));
  update();
})();
