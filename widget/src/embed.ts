/**
 * How the page embeds us: finding our own `<script>` tag, the API base it implies, and the
 * command queue (`Resolvo('identify', …)`) the page may have filled before we loaded.
 */

/**
 * Who the page says its user is, with one proof: `userHash` (the HMAC of `userId`) or `userJwt`
 * (a short-lived HS256 JWT signed by the page's server, whose `sub` is the user id). The server
 * refuses a boot that carries both.
 */
export interface Identity {
  userId: string | null;
  userHash: string | null;
  userJwt: string | null;
  name: string | null;
  email: string | null;
}

export type Command =
  | { name: "identify"; identity: Identity }
  | { name: "settings"; language: string | null; tags: string[] | null }
  | { name: "open" }
  | { name: "close" }
  | { name: "toggle" };

/** Our script element: `document.currentScript` while it runs, else the tag that names a key. */
export function findScript(doc: Document): HTMLScriptElement | null {
  const current = doc.currentScript;
  if (current instanceof HTMLScriptElement && current.dataset.key) return current;
  return doc.querySelector<HTMLScriptElement>('script[data-key][src*="resolvo.js"]');
}

/** `https://help.example.com/widget/v1/resolvo.js?v=3` → `https://help.example.com/api/widget/v1`. */
export function apiBaseFromSrc(src: string): string | null {
  try {
    const url = new URL(src);
    if (url.protocol !== "https:" && url.protocol !== "http:") return null;
    return `${url.origin}/api/widget/v1`;
  } catch {
    return null;
  }
}

function text(value: unknown): string | null {
  if (typeof value === "number") return String(value);
  return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
}

/**
 * The knowledge scope the page asks for: `['tv', 'galaxy-s10']` or `"tv, galaxy-s10"` (the
 * script tag's `data-tags`), trimmed and lowercased; null when not given. The server checks each
 * tag (letters, digits and single hyphens) and refuses the conversation for a malformed one.
 */
export function parseTags(value: unknown): string[] | null {
  let items: unknown[];
  if (typeof value === "string") items = value.split(",");
  else if (Array.isArray(value)) items = value;
  else return null;
  const tags = items.map((item) => (typeof item === "string" ? item.trim().toLowerCase() : "")).filter((t) => t !== "");
  return Array.from(new Set(tags));
}

/** One queued call's arguments as a command; null (and ignored) for anything unknown. */
export function parseCommand(args: ArrayLike<unknown>): Command | null {
  const name = args[0];
  const options = (typeof args[1] === "object" && args[1] !== null ? args[1] : {}) as Record<string, unknown>;
  switch (name) {
    case "identify":
      return {
        name,
        identity: {
          userId: text(options.userId),
          userHash: text(options.userHash),
          userJwt: text(options.userJwt),
          name: text(options.name),
          email: text(options.email),
        },
      };
    case "settings":
      return { name, language: text(options.language), tags: parseTags(options.tags) };
    case "open":
    case "close":
    case "toggle":
      return { name };
    default:
      return null;
  }
}
