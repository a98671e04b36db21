// igdm ui: live updates, replies and keyboard navigation. The pages work
// without it (but for live updates); nothing here builds markup from data:
// message items arrive rendered and escaped by the server.
"use strict";

(function () {
  // Live: append (or replace) message items the server streams.
  const list = document.getElementById("messages");
  if (list && list.dataset.live && window.EventSource) {
    const source = new EventSource(list.dataset.live);
    source.addEventListener("message", function (ev) {
      const tpl = document.createElement("template");
      tpl.innerHTML = ev.data;
      const item = tpl.content.firstElementChild;
      if (!item || !item.id) return;
      const old = document.getElementById(item.id);
      if (old) {
        old.replaceWith(item);
      } else {
        list.appendChild(item);
        item.scrollIntoView({ block: "end" });
      }
    });
    source.addEventListener("open", function () {
      document.body.classList.add("live");
    });
  }

  // Compose: one submit per form (its idempotency key covers the rest).
  const form = document.getElementById("compose");
  if (form) {
    form.addEventListener("submit", function () {
      const button = form.querySelector("button");
      if (button) button.disabled = true;
    });
    const replying = form.querySelector(".replying");
    const replyTo = form.querySelector("input[name=reply_to]");
    document.addEventListener("click", function (ev) {
      const btn = ev.target.closest("button.reply");
      if (!btn) return;
      const item = btn.closest("li.msg");
      replyTo.value = item.dataset.id;
      const body = item.querySelector(".body");
      replying.textContent = "Replying to: " + (body ? body.textContent : "a message");
      replying.hidden = false;
      form.querySelector("textarea").focus();
    });
    if (list) form.scrollIntoView({ block: "end" });
  }

  // Inbox: j / k move between conversations, Enter opens, / searches.
  const rows = Array.from(document.querySelectorAll("li.conv a"));
  document.addEventListener("keydown", function (ev) {
    const typing = ev.target.closest("input, textarea, select");
    if (typing) return;
    if (ev.key === "/") {
      const search = document.querySelector("input[type=search]");
      if (search) { ev.preventDefault(); search.focus(); }
      return;
    }
    if (!rows.length || (ev.key !== "j" && ev.key !== "k")) return;
    const at = rows.indexOf(document.activeElement);
    const next = ev.key === "j" ? Math.min(at + 1, rows.length - 1) : Math.max(at - 1, 0);
    rows[next].focus();
    ev.preventDefault();
  });
})();
