// Closer web chat: talks to the console's /api/chat, keeps the conversation in localStorage.
(() => {
  "use strict";
  const STORE = "closer.chat.v1";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const send = document.getElementById("send");
  const typing = document.getElementById("typing");

  const newSender = () => (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2)).replace(/[^A-Za-z0-9_-]/g, "");
  let state = JSON.parse(localStorage.getItem(STORE) || "null") || { sender: newSender(), items: [] };
  const save = () => localStorage.setItem(STORE, JSON.stringify(state));

  function linkify(node, text) {
    const parts = text.split(/(https?:\/\/[^\s)]+)/g);
    parts.forEach((part, i) => {
      if (i % 2) {
        const a = document.createElement("a");
        a.href = part; a.textContent = part; a.target = "_blank"; a.rel = "noopener";
        node.appendChild(a);
      } else if (part) {
        node.appendChild(document.createTextNode(part));
      }
    });
  }

  function render(item, live) {
    if (item.text) {
      const li = document.createElement("li");
      li.className = "msg " + item.from;
      linkify(li, item.text);
      log.appendChild(li);
    }
    if (item.image) {
      const li = document.createElement("li");
      li.className = "msg bot";
      const img = document.createElement("img");
      img.src = item.image; img.alt = "";
      li.appendChild(img);
      log.appendChild(li);
    }
    const buttons = item.buttons || item.quick_replies;
    if (buttons && buttons.length) {
      const li = document.createElement("li");
      li.className = "buttons";
      buttons.forEach((b) => {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.title;
        btn.dataset.payload = b.payload;
        btn.disabled = !live;
        btn.addEventListener("click", () => {
          li.querySelectorAll("button").forEach((x) => (x.disabled = true));
          item.used = true; save();
          say(b.title, b.payload);
        });
        li.appendChild(btn);
      });
      log.appendChild(li);
    }
    log.scrollTop = log.scrollHeight;
  }

  function add(item) {
    state.items.push(item);
    save();
    render(item, item.from === "bot" && !item.used);
  }

  function disableOldButtons() {
    log.querySelectorAll(".buttons button").forEach((b) => (b.disabled = true));
  }

  async function say(shown, payload) {
    disableOldButtons();
    add({ from: "user", text: shown });
    typing.hidden = false; send.disabled = true;
    let messages;
    try {
      const res = await fetch("/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: state.sender, message: payload }),
      });
      messages = (await res.json()).messages;
    } catch (e) {
      messages = [{ text: "Sorry, I can't reach the server. Please check your connection and try again." }];
    }
    typing.hidden = true; send.disabled = false;
    (messages || []).forEach((m) => add({ from: "bot", text: m.text, image: m.image, buttons: m.buttons, quick_replies: m.quick_replies }));
    input.focus();
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say(text, text);
  });

  document.getElementById("reset").addEventListener("click", () => {
    state = { sender: newSender(), items: [] };
    save();
    log.innerHTML = "";
    say("hi", "/greet");
  });

  const last = state.items.length - 1;
  state.items.forEach((item, i) => render(item, i === last && item.from === "bot" && !item.used));
  if (!state.items.length) say("hi", "/greet");
})();
