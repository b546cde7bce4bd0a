import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ApiClient, ApiError, detailText, parseRetryAfter, uuid } from "../src/api";
import { contrast, palette, parseHex } from "../src/colour";
import { apiBaseFromSrc, parseCommand, parseTags } from "../src/embed";
import { backoffDelay } from "../src/events";
import { VisitorStore } from "../src/storage";

describe("embedding", () => {
  it("derives the API base from the script's origin", () => {
    assert.equal(apiBaseFromSrc("https://help.acme.example/widget/v1/resolvo.js?v=2"), "https://help.acme.example/api/widget/v1");
    assert.equal(apiBaseFromSrc("http://127.0.0.1:8787/dist/resolvo.js"), "http://127.0.0.1:8787/api/widget/v1");
    assert.equal(apiBaseFromSrc("data:text/javascript,1"), null);
    assert.equal(apiBaseFromSrc(""), null);
  });

  it("reads queued commands, ignoring unknown ones", () => {
    assert.deepEqual(parseCommand(["identify", { userId: 42, userHash: "abc", name: " Ada ", email: "" }]), {
      name: "identify",
      identity: { userId: "42", userHash: "abc", userJwt: null, name: "Ada", email: null },
    });
    assert.deepEqual(parseCommand(["identify", { userJwt: " eyJ.a.b ", name: "Ada" }]), {
      name: "identify",
      identity: { userId: null, userHash: null, userJwt: "eyJ.a.b", name: "Ada", email: null },
    });
    assert.deepEqual(parseCommand(["settings", { language: "de" }]), { name: "settings", language: "de", tags: null });
    assert.deepEqual(parseCommand(["settings", { tags: [" TV ", "galaxy-s10", "tv", 3] }]), {
      name: "settings",
      language: null,
      tags: ["tv", "galaxy-s10"],
    });
    assert.deepEqual(parseCommand(["open"]), { name: "open" });
    assert.equal(parseCommand(["explode"]), null);
    assert.deepEqual(parseCommand(["settings"]), { name: "settings", language: null, tags: null });
  });

  it("reads the knowledge scope from data-tags or the settings command", () => {
    assert.deepEqual(parseTags("tv, Galaxy-S10 ,,"), ["tv", "galaxy-s10"]);
    assert.deepEqual(parseTags([]), []);
    assert.equal(parseTags(undefined), null);
    assert.equal(parseTags({ tv: true }), null);
  });

  it("stores the visitor token and conversation per public key, and survives a broken storage", () => {
    const data = new Map<string, string>();
    const storage = {
      getItem: (k: string) => data.get(k) ?? null,
      setItem: (k: string, v: string) => void data.set(k, v),
      removeItem: (k: string) => void data.delete(k),
    } as unknown as Storage;
    const store = new VisitorStore("pk_1", storage);
    store.token = "vt_abc";
    store.conversationId = 12;
    assert.equal(data.get("resolvo:pk_1:visitor"), "vt_abc");
    assert.equal(data.get("resolvo:pk_1:conversation"), "12");
    assert.equal(new VisitorStore("pk_1", storage).conversationId, 12);
    store.conversationId = null;
    assert.equal(data.has("resolvo:pk_1:conversation"), false);

    const broken = { getItem() { throw new Error("denied"); }, setItem() { throw new Error("denied"); }, removeItem() {} } as unknown as Storage;
    const fallback = new VisitorStore("pk_1", broken);
    fallback.token = "vt_mem";
    assert.equal(fallback.token, "vt_mem");
  });
});

describe("API client", () => {
  it("sends the bearer token and idempotency key, never cookies", async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const fake = (async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      return new Response("event: message\ndata: {}\n\n", { status: 200, headers: { "Content-Type": "text/event-stream" } });
    }) as unknown as typeof fetch;
    const api = new ApiClient("https://h.example/api/widget/v1", fake);
    api.token = "vt_1";
    await api.sendMessage(5, "Hi", "key-1");
    const { url, init } = calls[0];
    const headers = init.headers as Record<string, string>;
    assert.equal(url, "https://h.example/api/widget/v1/conversations/5/messages");
    assert.equal(init.method, "POST");
    assert.equal(init.credentials, "omit");
    assert.equal(headers.Authorization, "Bearer vt_1");
    assert.equal(headers["Idempotency-Key"], "key-1");
    assert.equal(init.body, '{"text":"Hi"}');
  });

  it("does not send a token with boot, and turns error bodies into readable details", async () => {
    let seen: Record<string, string> = {};
    const fake = (async (_url: string, init: RequestInit) => {
      seen = init.headers as Record<string, string>;
      return new Response('{"detail": "Slow down."}', { status: 429, headers: { "Retry-After": "20" } });
    }) as unknown as typeof fetch;
    const api = new ApiClient("https://h.example/api/widget/v1", fake);
    api.token = "vt_1";
    await assert.rejects(
      api.boot({ key: "pk", visitor_token: null, user_id: null, user_hash: null, user_jwt: null, language: "en" }),
      (error: unknown) => error instanceof ApiError && error.status === 429 && error.detail === "Slow down." && error.retryAfter === 20,
    );
    assert.equal(seen.Authorization, undefined);
  });

  it("starts a scoped conversation with its tags, and an unscoped one without a body", async () => {
    const bodies: (string | undefined)[] = [];
    const fake = (async (_url: string, init: RequestInit) => {
      bodies.push(init.body === undefined ? undefined : String(init.body));
      return new Response('{"id": 1, "status": "bot", "tags": [], "last_event_id": 0, "messages": []}', { status: 200 });
    }) as unknown as typeof fetch;
    const api = new ApiClient("https://h.example/api/widget/v1", fake);
    await api.createConversation(["tv"]);
    await api.createConversation();
    assert.deepEqual(bodies, ['{"tags":["tv"]}', undefined]);
  });

  it("sends the identity JWT in the boot body", async () => {
    let body = "";
    const fake = (async (_url: string, init: RequestInit) => {
      body = String(init.body);
      return new Response('{"visitor_token": "vt_2"}', { status: 200 });
    }) as unknown as typeof fetch;
    const api = new ApiClient("https://h.example/api/widget/v1", fake);
    await api.boot({ key: "pk", visitor_token: null, user_id: null, user_hash: null, user_jwt: "eyJ.a.b", language: null });
    assert.equal(JSON.parse(body).user_jwt, "eyJ.a.b");
  });

  it("reads details, Retry-After and makes UUIDs", () => {
    assert.equal(detailText({ detail: [{ msg: "text is required" }, { msg: "too long" }] }), "text is required too long");
    assert.equal(detailText("nope"), "");
    assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:10 GMT", Date.parse("Wed, 21 Oct 2015 07:28:00 GMT")), 10);
    assert.equal(parseRetryAfter("soon"), null);
    assert.match(uuid(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("backs off from 1 s to 30 s with jitter", () => {
    assert.equal(backoffDelay(1, () => 0.5), 1000);
    assert.equal(backoffDelay(3, () => 0.5), 4000);
    assert.equal(backoffDelay(20, () => 0.5), 30000);
    assert.equal(backoffDelay(1, () => 0), 500);
  });
});

describe("colours", () => {
  it("picks readable text on the accent and a link colour that reads on white", () => {
    assert.deepEqual(parseHex("#0f0"), [0, 255, 0]);
    assert.equal(parseHex("red"), null);
    assert.equal(palette("#4F46E5").onAccent, "#ffffff");
    assert.equal(palette("#FDE047").onAccent, "#111827", "dark text on yellow");
    const strong = parseHex(palette("#FDE047").accentStrong)!;
    assert.ok(contrast(strong, [255, 255, 255]) >= 4.5);
    assert.equal(palette("not a colour").accent, "#2563eb");
  });
});
