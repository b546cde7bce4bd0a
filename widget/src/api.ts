/**
 * The public widget API (`{origin}/api/widget/v1`). Every call but boot carries the visitor
 * token as a bearer token; nothing uses cookies (`credentials: "omit"`), so the platform's CORS
 * answer needs no `Allow-Credentials`. Errors are `{"detail": "…"}` with a 4xx status, and a
 * 429 carries `Retry-After`.
 */

import type { BootRequest, BootResponse, Conversation, HandoffResponse } from "./types";

/** The server refused the call; `detail` is meant for the customer. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    /** Seconds to wait before trying again (from `Retry-After`), when the server said. */
    readonly retryAfter: number | null,
  ) {
    super(detail || `HTTP ${status}`);
    this.name = "ApiError";
  }
}

/** No answer at all: offline, DNS, a refused CORS check, or a stream cut in the middle. */
export class NetworkError extends Error {
  constructor(readonly reason: unknown) {
    super("network error");
    this.name = "NetworkError";
  }
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}

interface RequestOptions {
  method?: "GET" | "POST";
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  accept?: string;
}

export class ApiClient {
  /** The visitor token from boot; sent on every later call. */
  token: string | null = null;

  constructor(
    readonly base: string,
    private readonly fetchImpl: typeof fetch = (input, init) => fetch(input, init),
  ) {}

  async boot(request: BootRequest, signal?: AbortSignal): Promise<BootResponse> {
    const response = await this.request("/boot", { method: "POST", body: request, signal }, false);
    return (await response.json()) as BootResponse;
  }

  /** A new conversation; `tags` scope its answers to documents with any of them (none: all). */
  async createConversation(tags: string[] = [], signal?: AbortSignal): Promise<Conversation> {
    const body = tags.length ? { tags } : undefined;
    const response = await this.request("/conversations", { method: "POST", body, signal });
    return (await response.json()) as Conversation;
  }

  /** Send a message; the answer comes back as an event stream (read the body with `sse.ts`). */
  sendMessage(conversationId: number, text: string, idempotencyKey: string, signal?: AbortSignal): Promise<Response> {
    return this.request(`/conversations/${conversationId}/messages`, {
      method: "POST",
      body: { text },
      headers: { "Idempotency-Key": idempotencyKey },
      accept: "text/event-stream",
      signal,
    });
  }

  /** The conversation's events after `after`, as an event stream the server ends every ~25 s. */
  events(conversationId: number, after: number, signal?: AbortSignal): Promise<Response> {
    return this.request(`/conversations/${conversationId}/events?after=${encodeURIComponent(String(after))}`, {
      accept: "text/event-stream",
      signal,
    });
  }

  async handoff(conversationId: number, signal?: AbortSignal): Promise<HandoffResponse> {
    const response = await this.request(`/conversations/${conversationId}/handoff`, { method: "POST", signal });
    return (await response.json()) as HandoffResponse;
  }

  async feedback(messageId: number, rating: "up" | "down"): Promise<void> {
    await this.request(`/messages/${messageId}/feedback`, { method: "POST", body: { rating } });
  }

  /** The customer is typing (the agent sees it); best effort, callers throttle it. */
  async typing(conversationId: number): Promise<void> {
    await this.request(`/conversations/${conversationId}/typing`, { method: "POST" });
  }

  async csat(conversationId: number, score: number, comment: string): Promise<void> {
    await this.request(`/conversations/${conversationId}/csat`, { method: "POST", body: { score, comment } });
  }

  private async request(path: string, options: RequestOptions, authorised = true): Promise<Response> {
    const headers: Record<string, string> = { Accept: options.accept ?? "application/json", ...options.headers };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (authorised && this.token) headers.Authorization = `Bearer ${this.token}`;
    let response: Response;
    try {
      response = await this.fetchImpl(this.base + path, {
        method: options.method ?? "GET",
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        credentials: "omit",
        mode: "cors",
        cache: "no-store",
        signal: options.signal,
      });
    } catch (error) {
      if (isAbort(error)) throw error;
      throw new NetworkError(error);
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }
}

/** The `ApiError` for a failed response: its `detail` (or none) and `Retry-After`. */
export async function errorFrom(response: Response): Promise<ApiError> {
  let detail = "";
  try {
    const body: unknown = await response.json();
    detail = detailText(body);
  } catch {
    // not JSON: the customer sees our generic message
  }
  return new ApiError(response.status, detail, parseRetryAfter(response.headers.get("Retry-After")));
}

/** `{"detail": "…"}`, or a validation error list `{"detail": [{"msg": "…"}]}`, as one line. */
export function detailText(body: unknown): string {
  if (typeof body !== "object" || body === null) return "";
  const detail = (body as { detail?: unknown }).detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => (typeof item === "object" && item !== null ? String((item as { msg?: unknown }).msg ?? "") : ""))
      .filter(Boolean)
      .join(" ");
  }
  return "";
}

/** `Retry-After` in seconds: either a number of seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

/** A random UUID (v4); `crypto.randomUUID` exists only on secure pages, `getRandomValues` everywhere. */
export function uuid(): string {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === "function") return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
