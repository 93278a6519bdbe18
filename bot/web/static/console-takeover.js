// Escalation page (/console/escalations/<id>): redraws the conversation every 3 s from the JSON
// endpoint in #transcript's data-src (same origin, with the session cookie), as the page drew it.
(() => {
  "use strict";
  const POLL_MS = 3000;
  const list = document.getElementById("transcript");
  const status = document.getElementById("transcript-status");
  if (!list || !list.dataset.src) return;

  const who = (m) => (m.speaker === "customer" ? "Customer" : m.speaker === "bot" ? "Bot" : "Manager " + m.manager);
  let drawn = null;

  function turn(m) {
    const li = document.createElement("li");
    li.className = "turn turn-" + m.speaker;
    const name = document.createElement("strong");
    name.className = "who";
    name.textContent = who(m);
    const at = new Date(m.timestamp * 1000).toISOString();
    const time = document.createElement("time");
    time.dateTime = at;
    time.textContent = at.slice(11, 19);  // UTC, like the page
    const text = document.createElement("div");
    text.className = "text";
    m.text.split("\n").forEach((line, i) => {
      if (i) text.append(document.createElement("br"));
      text.append(line);
    });
    li.append(name, " ", time, text);
    return li;
  }

  async function refresh() {
    try {
      const res = await fetch(list.dataset.src, { headers: { Accept: "application/json" } });
      const body = await res.json();
      if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
      const key = JSON.stringify(body.messages);
      if (key !== drawn) {
        drawn = key;
        list.replaceChildren(...body.messages.map(turn));
      }
      status.textContent = body.paused
        ? "The bot is paused: a manager has this conversation." : "The bot is answering.";
    } catch (e) {
      status.textContent = "The conversation cannot be read right now: " + e.message;
    }
    setTimeout(refresh, POLL_MS);
  }

  setTimeout(refresh, POLL_MS);
})();
