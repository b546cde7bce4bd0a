/**
 * The entry point of `resolvo.js`. A page embeds it as
 *
 *   <script src="https://HOST/widget/v1/resolvo.js" data-key="PUBLIC_KEY" async></script>
 *
 * and may call `Resolvo(...)` before it loads, through the usual queue stub:
 *
 *   window.Resolvo = window.Resolvo || function () { (Resolvo.q = Resolvo.q || []).push(arguments) };
 *   Resolvo('identify', { userId, userHash, name, email });   // or { userJwt, name, email }
 *   Resolvo('settings', { language: 'de' });
 *   Resolvo('settings', { tags: ['tv'] });   // answer from the documents tagged tv only
 *
 * or scope it on the tag itself: `<script … data-key="PUBLIC_KEY" data-tags="tv,galaxy-s10">`.
 * A conversation keeps the scope it started with.
 *   Resolvo('open');
 *
 * The API lives on the script's own origin, at `/api/widget/v1`.
 */

import { apiBaseFromSrc, findScript, parseCommand, parseTags } from "./embed";
import { Widget } from "./widget";

type ResolvoFunction = ((...args: unknown[]) => void) & { q?: ArrayLike<unknown>[]; loaded?: boolean };

declare global {
  interface Window {
    Resolvo?: ResolvoFunction;
  }
}

function main(): void {
  if (window.Resolvo?.loaded) return; // the script was included twice
  const script = findScript(document);
  const key = script?.dataset.key?.trim();
  const api = script ? apiBaseFromSrc(script.src) : null;
  if (!script || !key || !api) {
    console.warn('Resolvo: no <script src=".../resolvo.js" data-key="..."> tag found; the chat widget is not shown.');
    return;
  }
  if (!customElements.get("resolvo-chat")) customElements.define("resolvo-chat", class extends HTMLElement {});

  const widget = new Widget(key, api, new URL(script.src).origin);
  const tags = parseTags(script.dataset.tags);
  if (tags) widget.scope(tags);
  const queued = Array.isArray(window.Resolvo?.q) ? window.Resolvo.q : [];
  const resolvo: ResolvoFunction = (...args: unknown[]) => {
    const command = parseCommand(args);
    if (command) widget.command(command);
    else console.warn(`Resolvo: unknown command ${JSON.stringify(args[0])}.`);
  };
  resolvo.loaded = true;
  window.Resolvo = resolvo;
  for (const args of queued) resolvo(...Array.from(args));

  const start = (): void => void widget.start();
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start, { once: true });
}

main();
