// The price calculator of a business that prices by a formula (bot.web.calculator): GET /api/price-formula gives the
// packages, factors and options in the page's language; every change is priced by POST /api/price-formula, the
// same implementation the bot uses, and shown as the chat shows it. "Continue in the chat" sends the configuration
// to the chat (chat.js listens for closer:say). Picking another language in #language draws it again in that one.
(() => {
  "use strict";
  const box = document.getElementById("calculator");
  const summary = box.querySelector("summary");
  const form = box.querySelector("form");
  const output = box.querySelector("output");
  let formula = null;
  let priced = null;

  function field(label, control) {
    const wrap = document.createElement("label");
    const span = document.createElement("span");
    span.textContent = label;
    wrap.append(span, control);
    return wrap;
  }

  function select(name, choices, value) {
    const control = document.createElement("select");
    control.name = name;
    choices.forEach(([id, text]) => {
      const option = new Option(text, id, false, id === value);
      control.appendChild(option);
    });
    return control;
  }

  function current() {
    const data = new FormData(form);
    const levels = {};
    form.querySelectorAll("select[data-factor]").forEach((s) => (levels[s.name] = s.value));
    return { package: data.get("package"), levels, options: data.getAll("option"), language: formula.language };
  }

  function draw(chosen) {
    const texts = formula.texts;
    summary.textContent = texts.title;
    form.innerHTML = "";
    const packageId = chosen || formula.packages[0].id;
    const pkg = formula.packages.find((p) => p.id === packageId);
    form.appendChild(field(texts.package, select("package", formula.packages.map((p) => [p.id, p.name]), packageId)));
    pkg.factors.forEach((id) => {
      const factor = formula.factors[id];
      const levels = factor.levels.map((l) => [l.id, `${l.name} (× ${l.coefficient})`]);
      const control = select(id, levels, factor.levels[0].id);
      control.dataset.factor = id;
      form.appendChild(field(factor.name, control));
    });
    if (pkg.options.length) {
      const set = document.createElement("fieldset");
      const legend = document.createElement("legend");
      legend.textContent = texts.options;
      set.appendChild(legend);
      pkg.options.forEach((id) => {
        const box = document.createElement("input");
        box.type = "checkbox"; box.name = "option"; box.value = id;
        set.appendChild(field(`${formula.options[id].name}: + ${formula.options[id].price}`, box));
      });
      form.appendChild(set);
    }
    const more = document.createElement("button");
    more.type = "button"; more.id = "calculator-continue"; more.textContent = texts.continue;
    more.addEventListener("click", () => {
      if (!priced) return;
      const name = formula.packages.find((p) => p.id === current().package).name;
      window.dispatchEvent(new CustomEvent("closer:say", { detail: { shown: name, payload: priced.payload } }));
    });
    form.appendChild(more);
    price();
  }

  async function price() {
    priced = null;
    const res = await fetch("/api/price-formula", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(current()),
    });
    const body = await res.json();
    if (res.ok) priced = body;
    output.textContent = res.ok ? body.text : body.error;
  }

  form.addEventListener("change", (e) => (e.target.name === "package" ? draw(e.target.value) : price()));

  async function load() {
    const res = await fetch("/api/price-formula?language=" + encodeURIComponent(document.documentElement.lang));
    if (!res.ok) { box.hidden = true; return; }
    const chosen = formula && current().package;
    formula = await res.json();
    draw(chosen);
  }

  const picker = document.getElementById("language");
  if (picker) picker.addEventListener("change", load);
  load();
})();
