// Closer web chat: talks to the console's /api/chat, keeps the conversation in localStorage.
// A knowledge answer's bubble carries 👍/👎 (POST /api/feedback); its history entry keeps
// answer_id, rating ("up" | "down") and commented (true once a comment was sent).
// Messages the customer's turns do not bring — a sales manager's replies, Closer's follow-ups — are fetched from
// /api/chat/updates: every 3 s while a manager has the conversation (/api/chat answered "paused": true), every
// 30 s otherwise while the page is open; state.after is the timestamp (Rasa's clock, Unix seconds) of the last
// one shown.
// Languages: the page is rendered in one of the business's languages (<html lang>); #languages holds every
// language's {name, dir, texts}. Picking another in #language switches the page's texts, lang and dir, keeps the
// choice in the closer_language cookie (bot.web.chat.LANGUAGE_COOKIE: the next page comes in it) and sends
// /set_language{"language": code} to Rasa; a new conversation starts with /greet{"language": code}.
(() => {
  "use strict";
  const STORE = "closer.chat.v1";
  // the customer's IANA time zone: a call's free slots are shown in it (bot.booking)
  const TIMEZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  const POLL_MS = 3000;
  const IDLE_POLL_MS = 30000;
  const COOKIE = "closer_language";
  const LANGUAGES = JSON.parse(document.getElementById("languages").textContent);
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const send = document.getElementById("send");
  const typing = document.getElementById("typing");
  const picker = document.getElementById("language");  // absent when the business has one language
  let language = document.documentElement.lang;
  const t = (key) => LANGUAGES[language].texts[key];

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

  // A bubble's direction is its text's (dir="auto": Arabic right to left whatever the page's language).
  function bubble(className) {
    const li = document.createElement("li");
    li.className = className;
    li.dir = "auto";
    return li;
  }

  function render(item, live) {
    if (item.text) {
      const li = bubble("msg " + (item.from === "manager" ? "bot manager" : item.from));
      if (item.from === "manager") {
        const label = document.createElement("strong");
        label.className = "from";
        label.dir = "auto";  // its own direction: the bubble's is the message's
        label.textContent = t("manager");
        li.append(label, "\n");
      }
      linkify(li, item.text);
      log.appendChild(li);
    }
    if (item.document) {  // the quote PDF, sent as a document on every channel
      const li = bubble("msg bot document");
      const a = document.createElement("a");
      a.href = item.document.url; a.textContent = "📄 " + item.document.filename;
      a.target = "_blank"; a.rel = "noopener";
      li.appendChild(a);
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
        btn.dir = "auto";
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
    if (item.answer_id) log.appendChild(feedback(item));
    log.scrollTop = log.scrollHeight;
  }

  // The 👍/👎 control under a knowledge answer: a rating is sent on click, an optional comment
  // is sent later with the same rating. Controls are disabled while a request is under way.
  function feedback(item) {
    const li = document.createElement("li");
    li.className = "feedback";
    li.dataset.answerId = item.answer_id;
    const choices = {};
    [["up", "👍", t("helpful")], ["down", "👎", t("not_helpful")]].forEach(([rating, icon, label]) => {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "feedback-" + rating;
      btn.textContent = icon;
      btn.title = label;
      btn.setAttribute("aria-label", label);
      btn.addEventListener("click", () => post({ rating }, () => (item.rating = rating)));
      choices[rating] = btn;
      li.appendChild(btn);
    });
    const comment = document.createElement("form");
    comment.className = "feedback-comment";
    const box = document.createElement("input");
    box.maxLength = 500;
    box.dir = "auto";
    box.placeholder = t("comment");
    box.setAttribute("aria-label", t("comment_label"));
    const sendComment = document.createElement("button");
    sendComment.type = "submit";
    sendComment.textContent = t("send");
    comment.append(box, sendComment);
    comment.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = box.value.trim();
      if (text) post({ rating: item.rating, comment: text }, () => (item.commented = true));
    });
    const thanks = document.createElement("span");
    thanks.className = "feedback-thanks";
    thanks.textContent = t("thanks");
    const error = document.createElement("span");
    error.className = "feedback-error";
    error.textContent = t("feedback_error");
    error.hidden = true;
    li.append(comment, thanks, error);

    function show() {
      Object.entries(choices).forEach(([rating, btn]) => {
        btn.classList.toggle("selected", item.rating === rating);
        btn.setAttribute("aria-pressed", String(item.rating === rating));
      });
      comment.hidden = !item.rating || !!item.commented;
      thanks.hidden = !item.commented;
    }

    async function post(fields, saved) {
      li.querySelectorAll("button").forEach((b) => (b.disabled = true));
      error.hidden = true;
      try {
        const res = await fetch("/api/feedback", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ sender: state.sender, answer_id: item.answer_id, ...fields }),
        });
        if (!res.ok) throw new Error("HTTP " + res.status);
        saved();
        save();
      } catch (e) {
        error.hidden = false;
      }
      li.querySelectorAll("button").forEach((b) => (b.disabled = false));
      show();
      li.scrollIntoView({ block: "nearest" });
    }

    show();
    return li;
  }

  // A custom {feedback: true, answer_id} message follows the text of a knowledge answer.
  function attachFeedback(answerId) {
    const item = state.items[state.items.length - 1];
    if (!item || item.from !== "bot" || !item.text) return;
    item.answer_id = answerId;
    save();
    log.appendChild(feedback(item));
    log.scrollTop = log.scrollHeight;
  }

  function add(item) {
    state.items.push(item);
    save();
    render(item, item.from === "bot" && !item.used);
  }

  let timer = null;
  let polling = false;

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, state.paused ? POLL_MS : IDLE_POLL_MS);
  }

  // Managers' replies and follow-ups since state.after; a failed request is tried again at the next tick.
  async function poll() {
    if (polling) return;
    polling = true;
    const sender = state.sender;
    try {
      const query = new URLSearchParams({ sender, after: String(state.after || 0) });
      const res = await fetch("/api/chat/updates?" + query);
      if (!res.ok) throw new Error("HTTP " + res.status);
      const body = await res.json();
      if (sender === state.sender) {
        body.messages.forEach((m) => {
          state.after = Math.max(state.after || 0, m.timestamp);
          add({ from: m.from === "bot" ? "bot" : "manager", text: m.text, used: true });
        });
        state.paused = body.paused;
        save();
      }
    } catch (e) {
      // offline or the server is busy: the next poll asks again
    }
    polling = false;
    if (sender === state.sender) schedule();
  }

  // When the manager has handed back, one last poll picks up replies sent since the previous one.
  function setPaused(paused) {
    const handedBack = state.paused && !paused;
    state.paused = paused;
    save();
    if (handedBack) poll();
    else schedule();
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
        body: JSON.stringify({ sender: state.sender, message: payload, language, timezone: TIMEZONE }),
      });
      const body = await res.json();
      messages = body.messages;
      if (typeof body.paused === "boolean") setPaused(body.paused);
    } catch (e) {
      messages = [{ text: t("offline") }];
    }
    typing.hidden = true; send.disabled = false;
    (messages || []).forEach((m) => {
      if (m.custom && m.custom.feedback && m.custom.answer_id) attachFeedback(m.custom.answer_id);
      else if (m.custom && m.custom.document) add({ from: "bot", document: m.custom.document });
      else add({ from: "bot", text: m.text, image: m.image, buttons: m.buttons, quick_replies: m.quick_replies });
    });
    input.focus();
  }

  // The price calculator (calculator.js) continues in the chat with its configuration.
  window.addEventListener("closer:say", (e) => say(e.detail.shown, e.detail.payload));

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say(text, text);
  });

  // The page's texts, lang and dir in `language`; the conversation drawn again (its labels and controls).
  function showLanguage() {
    const root = document.documentElement;
    root.lang = language;
    root.dir = LANGUAGES[language].dir;
    document.querySelectorAll("[data-text]").forEach((el) => (el.textContent = t(el.dataset.text)));
    [["label", "aria-label"], ["tip", "title"], ["placeholder", "placeholder"]].forEach(([key, attribute]) => {
      document.querySelectorAll(`[data-${key}]`).forEach((el) => el.setAttribute(attribute, t(el.dataset[key])));
    });
    drawLog();
  }

  function drawLog() {
    log.innerHTML = "";
    const last = state.items.length - 1;
    state.items.forEach((item, i) => render(item, i === last && item.from === "bot" && !item.used));
  }

  const greet = () => say(t("hi"), "/greet" + JSON.stringify({ language }));

  if (picker) {
    picker.addEventListener("change", () => {
      language = picker.value;
      document.cookie = `${COOKIE}=${language}; path=/; max-age=31536000; samesite=lax`;
      showLanguage();
      say(LANGUAGES[language].name, "/set_language" + JSON.stringify({ language }));
    });
  }

  document.getElementById("reset").addEventListener("click", () => {
    state = { sender: newSender(), items: [] };
    save();
    schedule();
    log.innerHTML = "";
    greet();
  });

  drawLog();
  if (!state.items.length) greet();
  if (state.paused) poll();
  else schedule();
})();
