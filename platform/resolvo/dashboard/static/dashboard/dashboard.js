// Resolvo agent dashboard: keyboard shortcuts, live updates (server-sent events) and the AI
// draft stream. Pages work without it (forms post and redirect); this makes them quick.
"use strict";

(() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const page = document.querySelector("[data-page]");
  const kind = page?.dataset.page;

  // --- small helpers --------------------------------------------------------------------------
  const typingInField = (e) => {
    const t = e.target;
    return t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  };
  // HX-Request marks a script's request: a refusal then comes back as a 422 with the reason.
  const post = (url, body) =>
    fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": csrf(), "HX-Request": "true" },
      body,
      credentials: "same-origin",
    });
  const trigger = (name) => window.htmx && window.htmx.trigger(document.body, name);

  function toast(text) {
    let box = document.querySelector(".flash");
    if (!box) {
      box = document.createElement("div");
      box.className = "flash";
      box.setAttribute("role", "status");
      document.querySelector(".topbar")?.after(box);
    }
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = text; // never HTML
    box.replaceChildren(p);
  }

  // Refusals from htmx requests (a 4xx carries the reason as text).
  document.body.addEventListener("htmx:responseError", (e) => {
    const xhr = e.detail.xhr;
    toast(xhr.status === 403 ? "You are not allowed to do that." : xhr.responseText || "That did not work.");
  });

  // Server-sent events with reconnection handled by EventSource itself.
  function listen(url, handlers, dot) {
    if (!url || !window.EventSource) return;
    const source = new EventSource(url);
    source.onopen = () => dot?.classList.add("on");
    source.onerror = () => dot?.classList.remove("on");
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (e) => fn(JSON.parse(e.data || "{}")));
    }
    window.addEventListener("pagehide", () => source.close());
  }

  // --- keyboard -------------------------------------------------------------------------------
  const help = document.getElementById("help");
  document.querySelector("[data-help]")?.addEventListener("click", () => help?.showModal());
  let pendingG = false;
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey && e.key === "Enter") {
      const form = e.target instanceof HTMLElement ? e.target.closest("form") : null;
      if (form) {
        e.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (e.metaKey || e.ctrlKey || e.altKey || typingInField(e)) return;
    if (e.key === "?") return help?.showModal();
    if (pendingG) {
      pendingG = false;
      if (e.key === "i") window.location.href = "/app/inbox/";
      return;
    }
    if (e.key === "g") {
      pendingG = true;
      setTimeout(() => (pendingG = false), 1200);
      return;
    }
    if (kind === "inbox") inboxKey(e);
    if (kind === "ticket") ticketKey(e);
  });

  // --- inbox ----------------------------------------------------------------------------------
  let selected = -1;
  const rows = () => [...document.querySelectorAll("[data-rows] tbody tr")];
  function select(i) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, i));
    all.forEach((r, n) => r.classList.toggle("selected", n === selected));
    all[selected].scrollIntoView({ block: "nearest" });
  }
  function inboxKey(e) {
    if (e.key === "j") select(selected + 1);
    else if (e.key === "k") select(selected - 1);
    else if ((e.key === "Enter" || e.key === "o") && selected >= 0) window.location.href = rows()[selected].dataset.href;
    else if (e.key === "/") {
      e.preventDefault();
      document.getElementById("q")?.focus();
    } else return;
    e.preventDefault();
  }
  if (kind === "inbox") {
    document.addEventListener("click", (e) => {
      const row = e.target instanceof HTMLElement ? e.target.closest("tr[data-href]") : null;
      if (row && !(e.target instanceof HTMLAnchorElement)) window.location.href = row.dataset.href;
    });
    document.body.addEventListener("htmx:afterSwap", () => {
      selected = -1;
      document.querySelector("[data-live-dot]")?.classList.add("on");
    });
    const liveUrl = document.querySelector("[data-live]")?.dataset.live;
    listen(liveUrl, { changed: () => trigger("inbox-changed") }, document.querySelector("[data-live-dot]"));
  }

  // --- ticket page ----------------------------------------------------------------------------
  function ticketKey(e) {
    const composer = document.querySelector("[data-composer]");
    if (e.key === "r") showTab(composer, "reply", true);
    else if (e.key === "n") showTab(composer, "note", true);
    else if (e.key === "d") document.querySelector("[data-draft-button]")?.click();
    else if (e.key === "a") document.querySelector("[data-take]")?.click();
    else return;
    e.preventDefault();
  }

  function showTab(composer, name, focus) {
    if (!composer) return;
    composer.classList.toggle("note", name === "note");
    composer.querySelectorAll("[data-tab]").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
    composer.querySelectorAll("[data-form]").forEach((f) => (f.hidden = f.dataset.form !== name));
    if (focus) composer.querySelector(`[data-form="${name}"] textarea`)?.focus();
  }

  if (kind === "ticket") {
    const composer = document.querySelector("[data-composer]");
    composer?.querySelectorAll("[data-tab]").forEach((b) => b.addEventListener("click", () => showTab(composer, b.dataset.tab, true)));

    // Sidebar fields save as they change (a refusal comes back as a message).
    document.addEventListener("change", (e) => {
      const form = e.target instanceof HTMLElement ? e.target.closest("form[data-autosubmit]") : null;
      if (!form) return;
      saveSidebar(form, e.target);
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && e.target instanceof HTMLInputElement && e.target.name === "tags") {
        e.preventDefault();
        e.target.blur();
      }
    });
    async function saveSidebar(form, field) {
      const body = new FormData();
      body.set(field.name, field.value);
      const response = await post(form.action, body);
      if (!response.ok) toast((await response.text()) || "That did not work.");
      trigger("sidebar-changed");
    }

    // The customer and other agents see that someone is typing (at most every 3 s).
    const typingUrl = page.dataset.typing;
    let lastTyping = 0;
    document.getElementById("reply-text")?.addEventListener("input", () => {
      const now = Date.now();
      if (now - lastTyping > 3000) {
        lastTyping = now;
        post(typingUrl, new FormData());
      }
    });

    // Canned responses go in at the cursor.
    document.querySelector("[data-canned]")?.addEventListener("change", (e) => {
      const option = e.target.selectedOptions[0];
      const area = document.getElementById("reply-text");
      if (option?.dataset.text && area) {
        const at = area.selectionStart ?? area.value.length;
        area.value = area.value.slice(0, at) + option.dataset.text + area.value.slice(area.selectionEnd ?? at);
        area.focus();
      }
      e.target.value = "";
    });

    // Live: the thread and sidebar re-fetch when they change; typing and presence show as is.
    const typingLine = document.querySelector("[data-typing-line]");
    const presence = document.querySelector("[data-presence]");
    const here = new Map();
    let typingTimer;
    const showPresence = () => {
      const now = Date.now();
      for (const [name, seen] of here) if (now - seen > 30000) here.delete(name);
      presence.textContent = here.size ? `Also viewing: ${[...here.keys()].join(", ")}` : "";
    };
    listen(page.dataset.live, {
      thread: () => trigger("thread-changed"),
      sidebar: () => trigger("sidebar-changed"),
      typing: (d) => {
        typingLine.textContent = d.on === false ? "" : `${d.who} is typing…`;
        clearTimeout(typingTimer);
        typingTimer = setTimeout(() => (typingLine.textContent = ""), 5000);
      },
      presence: (d) => {
        if (d.here) here.set(d.name, Date.now());
        else here.delete(d.name);
        showPresence();
      },
    });
    setInterval(showPresence, 10000);
    document.body.addEventListener("htmx:afterSwap", (e) => {
      if (e.detail.target?.id === "thread") {
        const thread = document.getElementById("thread");
        thread?.lastElementChild?.scrollIntoView({ block: "nearest" });
        typingLine.textContent = "";
      }
    });

    setupDraft();
  }

  // --- AI draft -------------------------------------------------------------------------------
  function setupDraft() {
    const button = document.querySelector("[data-draft-button]");
    const discard = document.querySelector("[data-draft-discard]");
    const status = document.querySelector("[data-draft-status]");
    const cites = document.querySelector("[data-draft-cites]");
    const draftId = document.querySelector("[data-draft-id]");
    const area = document.getElementById("reply-text");
    if (!button || !area) return;

    button.addEventListener("click", async () => {
      if (button.disabled) return;
      if (area.value.trim() && !window.confirm("Replace what you have written with an AI draft?")) return;
      button.disabled = true;
      area.value = "";
      cites.replaceChildren();
      draftId.value = "";
      status.textContent = "Searching the documentation…";
      try {
        const response = await post(button.dataset.url, new FormData());
        if (!response.ok || !response.body) throw new Error(await response.text());
        await readEvents(response.body, (name, data) => {
          if (name === "sources") status.textContent = `Writing from ${data.sources.length} passage(s)…`;
          else if (name === "token") area.value += data.text;
          else if (name === "citations") showCitations(cites, data.citations);
          else if (name === "done") {
            if (data.replaced) area.value = data.answer;
            status.textContent = data.abstained
              ? "The documentation does not cover this: write the reply yourself."
              : "Draft ready: check it, edit, and send.";
          } else if (name === "error") status.textContent = data.message;
          else if (name === "draft") {
            draftId.value = String(data.id);
            discard.hidden = false;
            discard.dataset.id = String(data.id);
          }
          grow(area);
        });
      } catch (err) {
        status.textContent = `The draft failed: ${err.message || err}`;
      } finally {
        button.disabled = false;
        area.focus();
      }
    });

    discard?.addEventListener("click", async () => {
      const url = discard.dataset.urlTemplate.replace(/\/0\/discard\/$/, `/${discard.dataset.id}/discard/`);
      await post(url, new FormData());
      area.value = "";
      draftId.value = "";
      cites.replaceChildren();
      discard.hidden = true;
      status.textContent = "Draft discarded.";
    });
  }

  // The reply box grows with a draft (up to a limit) so the agent reads it whole.
  function grow(area) {
    area.style.height = "auto";
    area.style.height = `${Math.min(Math.max(area.scrollHeight + 4, 120), 440)}px`;
  }

  function showCitations(list, citations) {
    list.replaceChildren(
      ...citations.map((c) => {
        const li = document.createElement("li");
        li.append(`[${c.n}] `);
        const label = c.title || c.source;
        if (c.url && /^https?:\/\//.test(c.url)) {
          const a = document.createElement("a");
          a.href = c.url;
          a.target = "_blank";
          a.rel = "noopener noreferrer";
          a.textContent = label;
          li.append(a);
        } else li.append(label);
        if (c.section) li.append(` › ${c.section}`);
        return li;
      }),
    );
  }

  // Parse a text/event-stream body: calls onEvent(name, data) per event.
  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (data.length) onEvent(name, JSON.parse(data.join("\n")));
      }
    }
  }
})();
