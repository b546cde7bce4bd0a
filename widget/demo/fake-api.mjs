// A stand-in for the platform's widget API (/api/widget/v1), for trying the widget by hand and
// for screenshots: canned answers streamed token by token with citations, an abstention that
// offers a person, a handoff whose agent replies on the events stream a few seconds later, and
// resolution with the satisfaction prompt. In-memory, loopback only, no dependencies.
//
//   npm run build && node demo/fake-api.mjs            # http://127.0.0.1:8787/demo/
//   PORT=9000 SPEED=0.2 node demo/fake-api.mjs         # SPEED scales every delay
//
// A second port (PORT + 1) serves the same demo page as a "customer's site" on another origin,
// loading the script from PORT, so the cross-origin path (CORS preflights with Authorization
// and Idempotency-Key, no cookies) is exercised too.
//
// Try: "How do I reset my router?", "How do I set up a guest network?", "What's my admin
// password?" (the draft is replaced by a quote), "Can I get a refund?" (abstains),
// "<img src=x onerror=alert(1)>" (shown as text), "trigger an error" (the engine fails and
// hands off). Once a person has replied, "thanks, that's all" resolves the conversation.

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const HOST = "127.0.0.1";
const PORT = Number(process.env.PORT || 8787);
const SITE_PORT = PORT + 1;
const SPEED = Number(process.env.SPEED || 1);
const EVENTS_WINDOW_MS = Number(process.env.EVENTS_WINDOW_MS || 25000);
const PUBLIC_KEY = "demo-public-key";
const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const API = "/api/widget/v1";

const wait = (ms) => new Promise((r) => setTimeout(r, ms * SPEED));

// --- state -------------------------------------------------------------------------------------

const visitors = new Map(); // token -> { conversations: [id] }
const conversations = new Map(); // id -> conversation
let nextConversation = 4100;
let nextMessage = 52000;
let nextTicket = 1042;

function newConversation(token) {
  const c = {
    id: nextConversation++,
    token,
    status: "bot",
    seq: 0,
    messages: [],
    events: [],
    listeners: new Set(),
    keys: new Map(), // idempotency key -> { message, answer }
    sent: [], // timestamps, for the rate limit
  };
  conversations.set(c.id, c);
  visitors.get(token).conversations.push(c.id);
  return c;
}

function emit(c, type, data) {
  const event = { seq: ++c.seq, type, data };
  c.events.push(event);
  for (const listener of c.listeners) listener(event);
  return event;
}

function addMessage(c, role, text, extra = {}) {
  const message = {
    id: nextMessage++,
    role,
    text,
    citations: extra.citations || [],
    offers_handoff: Boolean(extra.offers_handoff),
    created_at: new Date().toISOString(),
  };
  c.messages.push(message);
  emit(c, "message", message);
  return message;
}

function move(c, to, reason) {
  const from = c.status;
  if (from === to) return;
  c.status = to;
  emit(c, "status", { from, to, reason });
}

const asJson = (c) => ({ id: c.id, status: c.status, last_event_id: c.seq, messages: c.messages });

// --- canned knowledge --------------------------------------------------------------------------

const DOCS = "https://help.nimbus-routers.example";
const cite = (n, title, section, path, inferred = false) => ({
  n,
  source: `${path.split("/").pop()}.md`,
  title,
  section,
  url: `${DOCS}/${path}`,
  inferred,
});

const ANSWERS = [
  {
    match: /reset|factory|restore/i,
    text:
      "To restore your Nimbus router to its factory settings:\n\n" +
      "1. Keep the router **powered on** and find the recessed **Reset** button on the back panel [1].\n" +
      "2. Press and hold it with a paperclip for **10 seconds**, until the status light blinks amber [1].\n" +
      "3. Wait about two minutes for it to restart, then reconnect with the Wi-Fi name and password printed on the label underneath [2] [4].\n\n" +
      "A reset erases your custom settings, so export a backup first from *Settings → System → Backup* if you can [3].",
    citations: [
      cite(1, "Resetting your router", "Factory reset", "articles/factory-reset"),
      cite(2, "Quick start guide", "Connecting for the first time", "guides/quick-start"),
      cite(3, "Backing up your settings", "Export a configuration file", "articles/backup"),
    ],
    dropped: [4],
  },
  {
    match: /guest/i,
    text:
      "You can give visitors Wi-Fi without sharing your main password:\n\n" +
      "- Open the **Nimbus app** and tap *Network → Guest Wi-Fi* [1].\n" +
      "- Turn on **Guest network**, choose a name and a password [1].\n" +
      "- Optionally set it to switch off automatically after `24 hours` [2].\n\n" +
      "Guests can reach the internet but not your computers, printers or smart-home devices [1].",
    citations: [
      cite(1, "Setting up a guest network", "Turning on guest Wi-Fi", "articles/guest-network"),
      cite(2, "Schedules and timers", "Guest network schedule", "articles/schedules"),
    ],
    dropped: [],
  },
  {
    match: /password|admin|login/i,
    draft: "The default admin password is admin, and you can change it later in the app [1].",
    text:
      "The router's admin password is printed on the label on the underside of the router, next to **Admin PIN**; " +
      "each router has its own, there is no shared default [1].",
    citations: [cite(1, "Signing in to the router", "Admin PIN", "articles/admin-sign-in")],
    dropped: [],
  },
  {
    match: /<|script|onerror|javascript/i,
    text:
      "Here is what you wrote, shown exactly as typed: `<img src=x onerror=alert(1)>`.\n\n" +
      "Raw HTML like <b>this</b> or <img src=x onerror=alert(1)> is never interpreted, and a link such as " +
      "[this one](javascript:alert(1)) keeps its words but loses its address. Safe links still work: " +
      "[our status page](https://status.nimbus-routers.example) [1].",
    citations: [cite(1, "Security at Nimbus", "Reporting a vulnerability", "articles/security")],
    dropped: [],
  },
];

const ABSTAIN =
  "I couldn't find this in our documentation, so I'd rather not guess. Would you like to talk to a person from our team?";

const GREETINGS = {
  en: "Hi! I'm the Nimbus assistant. Ask me anything about setting up or using your router — I answer from our help center and show you the sources.",
  es: "¡Hola! Soy el asistente de Nimbus. Pregúntame lo que quieras sobre tu router: respondo a partir de nuestro centro de ayuda y te muestro las fuentes.",
  de: "Hallo! Ich bin der Nimbus-Assistent. Fragen Sie mich alles zur Einrichtung und Nutzung Ihres Routers – ich antworte aus unserem Hilfe-Center, mit Quellen.",
  fr: "Bonjour ! Je suis l'assistant Nimbus. Posez-moi vos questions sur votre routeur : je réponds à partir de notre centre d'aide, sources à l'appui.",
};

const HANDOFF_MESSAGE = "We've passed your conversation to our support team. A person will reply here, usually within a few minutes.";

// --- HTTP plumbing ---------------------------------------------------------------------------------

function cors(req, res) {
  const origin = req.headers.origin;
  if (origin) {
    res.setHeader("Access-Control-Allow-Origin", origin);
    res.setHeader("Vary", "Origin");
    res.setHeader("Access-Control-Expose-Headers", "Retry-After");
  }
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store", ...headers });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}

const fail = (res, status, detail, headers) => send(res, status, { detail }, headers);

async function readJson(req) {
  let raw = "";
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > 64 * 1024) throw new Error("too large");
  }
  return raw ? JSON.parse(raw) : {};
}

function sse(res) {
  res.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",
  });
  return (type, data, id) => {
    if (res.writableEnded) return;
    res.write(`${id !== undefined ? `id: ${id}\n` : ""}event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  };
}

function isLoopback(origin) {
  try {
    return ["127.0.0.1", "localhost", "[::1]"].includes(new URL(origin).hostname);
  } catch {
    return false;
  }
}

function conversationFor(req, res, id) {
  const token = (req.headers.authorization || "").replace(/^Bearer\s+/i, "");
  const c = conversations.get(Number(id));
  if (!token || !visitors.has(token)) return fail(res, 401, "Your chat session has expired. Please reload the page."), null;
  if (!c || c.token !== token) return fail(res, 404, "This conversation no longer exists."), null;
  return c;
}

// --- the API -----------------------------------------------------------------------------------------

async function api(req, res, path, url) {
  cors(req, res);
  if (req.method === "OPTIONS") {
    res.writeHead(204, {
      "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
      "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key",
      "Access-Control-Max-Age": "600",
    });
    return res.end();
  }

  if (req.method === "POST" && path === "/boot") {
    const body = await readJson(req);
    if (body.key !== PUBLIC_KEY) return fail(res, 403, "This widget key is not valid.");
    if (req.headers.origin && !isLoopback(req.headers.origin)) {
      return fail(res, 403, "This website is not allowed to use this widget.");
    }
    let token = body.visitor_token;
    if (!token || !visitors.has(token)) {
      token = `vt_${randomBytes(18).toString("base64url")}`;
      visitors.set(token, { conversations: [] });
    }
    const ids = visitors.get(token).conversations;
    const latest = ids.length ? conversations.get(ids[ids.length - 1]) : null;
    const language = ["es", "de", "fr"].includes(body.language) ? body.language : "en";
    return send(res, 200, {
      visitor_token: token,
      organization: { name: "Nimbus Routers" },
      widget: {
        greeting: GREETINGS[language],
        colour: process.env.COLOUR || "#4F46E5",
        position: process.env.POSITION === "left" ? "left" : "right",
        launcher_text: process.env.LAUNCHER_TEXT || "",
      },
      conversation: latest ? asJson(latest) : null,
    });
  }

  if (req.method === "POST" && path === "/conversations") {
    const token = (req.headers.authorization || "").replace(/^Bearer\s+/i, "");
    if (!visitors.has(token)) return fail(res, 401, "Your chat session has expired. Please reload the page.");
    return send(res, 201, asJson(newConversation(token)));
  }

  let m;
  if (req.method === "POST" && (m = /^\/conversations\/(\d+)\/messages$/.exec(path))) {
    const c = conversationFor(req, res, m[1]);
    if (!c) return;
    const key = req.headers["idempotency-key"];
    if (!key) return fail(res, 400, "Idempotency-Key header is required.");
    const body = await readJson(req);
    const text = String(body.text || "").trim();
    if (!text) return fail(res, 400, "Please type a message.");
    if (text.length > 4000) return fail(res, 400, `Your message is ${text.length.toLocaleString("en")} characters long; please keep it under 4,000.`);
    if (c.keys.has(key)) return replay(res, c, c.keys.get(key));
    const now = Date.now();
    c.sent = c.sent.filter((t) => now - t < 60000);
    if (c.sent.length >= 10) {
      return fail(res, 429, "You're sending messages very quickly. Please wait a moment and try again.", { "Retry-After": "20" });
    }
    c.sent.push(now);
    if (c.status === "resolved" || c.status === "closed") move(c, "bot", "customer_wrote_again");
    const message = addMessage(c, "customer", text);
    const record = { message, answer: null };
    c.keys.set(key, record);
    return answer(res, c, message, record);
  }

  if (req.method === "GET" && (m = /^\/conversations\/(\d+)\/events$/.exec(path))) {
    const c = conversationFor(req, res, m[1]);
    if (!c) return;
    const after = Number(url.searchParams.get("after") || 0);
    const write = sse(res);
    for (const e of c.events) if (e.seq > after) write(e.type, e.data, e.seq);
    const listener = (e) => write(e.type, e.data, e.seq);
    c.listeners.add(listener);
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 10000);
    const end = setTimeout(() => res.end(), EVENTS_WINDOW_MS);
    res.on("close", () => {
      c.listeners.delete(listener);
      clearInterval(keepAlive);
      clearTimeout(end);
    });
    return;
  }

  if (req.method === "POST" && (m = /^\/conversations\/(\d+)\/handoff$/.exec(path))) {
    const c = conversationFor(req, res, m[1]);
    if (!c) return;
    handoff(c, "customer_asked");
    return send(res, 200, { ticket: c.ticket, status: "waiting_human" });
  }

  if (req.method === "POST" && (m = /^\/messages\/(\d+)\/feedback$/.exec(path))) {
    const body = await readJson(req);
    if (!["up", "down"].includes(body.rating)) return fail(res, 400, "rating must be up or down.");
    console.log(`feedback on message ${m[1]}: ${body.rating}`);
    res.writeHead(204);
    return res.end();
  }

  if (req.method === "POST" && (m = /^\/conversations\/(\d+)\/csat$/.exec(path))) {
    const c = conversationFor(req, res, m[1]);
    if (!c) return;
    const body = await readJson(req);
    if (!Number.isInteger(body.score) || body.score < 1 || body.score > 5) return fail(res, 400, "score must be 1 to 5.");
    console.log(`csat for conversation ${c.id}: ${body.score} ${JSON.stringify(body.comment || "")}`);
    res.writeHead(204);
    return res.end();
  }

  return fail(res, 404, "Not found.");
}

async function answer(res, c, message, record) {
  const write = sse(res);
  write("message", message);
  if (c.status !== "bot") {
    write("status", { status: c.status });
    res.end();
    if (c.status === "human") agentFollowUp(c, message.text);
    return;
  }
  const canned = ANSWERS.find((a) => a.match.test(message.text));
  await wait(700);
  if (/trigger an error/i.test(message.text)) {
    write("sources", { sources: [] });
    write("error", { message: "The assistant is unavailable right now. We've asked a person to help you.", handoff: true });
    res.end();
    handoff(c, "assistant_unavailable");
    return;
  }
  if (!canned) {
    write("sources", { sources: [] });
    await wait(400);
    write("citations", { citations: [], dropped: [] });
    const saved = addMessage(c, "assistant", ABSTAIN, { offers_handoff: true });
    record.answer = saved;
    write("done", { abstained: true, reason: "unsupported", answer: ABSTAIN, replaced: true, message_id: saved.id, usage: {}, timings: {}, backend: "fake", model: "canned" });
    return res.end();
  }
  write("sources", { sources: canned.citations.map((x) => ({ ...x, chunk_id: `c${x.n}`, score: 0.8, similarity: 0.7, snippet: "" })) });
  const streamed = canned.draft || canned.text;
  for (const piece of streamed.match(/\S+\s*|\s+/g)) {
    if (res.writableEnded) return;
    write("token", { text: piece });
    await wait(28 + Math.random() * 30);
  }
  await wait(250);
  write("citations", { citations: canned.citations, dropped: canned.dropped });
  const saved = addMessage(c, "assistant", canned.text, { citations: canned.citations });
  record.answer = saved;
  write("done", {
    abstained: false,
    reason: canned.draft ? "quoted" : "",
    answer: canned.text,
    replaced: Boolean(canned.draft),
    message_id: saved.id,
    usage: { prompt_tokens: 812, completion_tokens: 96 },
    timings: { total: 1840 },
    backend: "fake",
    model: "canned",
  });
  res.end();
}

function replay(res, c, record) {
  const write = sse(res);
  write("message", record.message);
  if (record.answer) {
    write("citations", { citations: record.answer.citations, dropped: [] });
    write("done", { abstained: record.answer.offers_handoff, reason: "", answer: record.answer.text, replaced: true, message_id: record.answer.id });
  } else {
    write("status", { status: c.status });
  }
  res.end();
}

function handoff(c, trigger) {
  if (c.status === "waiting_human" || c.status === "human") return;
  c.ticket = c.ticket || nextTicket++;
  move(c, "waiting_human", `handoff:${trigger}`);
  addMessage(c, "system", HANDOFF_MESSAGE);
  (async () => {
    await wait(2000);
    emit(c, "typing", { role: "agent" });
    await wait(2500);
    move(c, "human", "agent_replied");
    addMessage(
      c,
      "agent",
      "Hi, I'm **Sam** from the Nimbus support team\n\nI've read your conversation. Could you tell me the **model number** on the label under your router? Then I'll check your options.",
    );
  })();
}

async function agentFollowUp(c, text) {
  await wait(1500);
  emit(c, "typing", { role: "agent" });
  await wait(2500);
  if (/thank|bye|that's all|solved/i.test(text)) {
    addMessage(c, "agent", "You're welcome! I'll mark this conversation as resolved. Have a great day.");
    await wait(1200);
    move(c, "resolved", "resolved");
  } else {
    addMessage(c, "agent", "Thanks! That model supports it: open the app, go to *Settings → Billing*, and you'll find the request form there. Anything else?");
  }
}

// --- static files ------------------------------------------------------------------------------------

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml" };

async function file(res, path, rewrite) {
  const full = normalize(join(ROOT, path));
  if (!full.startsWith(ROOT + sep) || !(full.startsWith(join(ROOT, "demo") + sep) || full.startsWith(join(ROOT, "dist") + sep))) {
    return fail(res, 404, "Not found.");
  }
  try {
    let body = await readFile(full);
    if (rewrite) body = rewrite(body.toString("utf8"));
    res.writeHead(200, { "Content-Type": TYPES[extname(full)] || "application/octet-stream", "Cache-Control": "no-store" });
    res.end(body);
  } catch {
    fail(res, 404, "Not found.");
  }
}

function handler(site) {
  return async (req, res) => {
    const url = new URL(req.url, `http://${HOST}`);
    try {
      if (!site && url.pathname.startsWith(API + "/")) return await api(req, res, url.pathname.slice(API.length), url);
      if (url.pathname === "/" || url.pathname === "/demo") {
        res.writeHead(302, { Location: "/demo/" });
        return res.end();
      }
      const path = url.pathname.endsWith("/") ? url.pathname + "index.html" : url.pathname;
      if (site) {
        // The "customer's site" on another origin: the demo page, loading resolvo.js from PORT.
        if (path !== "/demo/index.html") return fail(res, 404, "Not found.");
        return await file(res, path, (html) => html.replace("../dist/resolvo.js", `http://${HOST}:${PORT}/dist/resolvo.js`));
      }
      return await file(res, decodeURIComponent(path));
    } catch (error) {
      console.error(error);
      if (!res.headersSent) fail(res, 400, "The request could not be read.");
      else res.end();
    }
  };
}

createServer(handler(false)).listen(PORT, HOST, () => {
  console.log(`fake widget API and demo: http://${HOST}:${PORT}/demo/`);
});
createServer(handler(true)).listen(SITE_PORT, HOST, () => {
  console.log(`the same page on another origin (cross-origin API): http://${HOST}:${SITE_PORT}/demo/`);
});
