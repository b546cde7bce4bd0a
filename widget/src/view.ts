/**
 * The widget's DOM: a `<resolvo-chat>` host with an open shadow root holding the launcher
 * button and the chat panel. The view knows nothing about the API; `widget.ts` drives it and
 * receives the customer's actions through `ViewActions`.
 */

import { palette } from "./colour";
import { append, clear, h } from "./dom";
import { translate, type Language, type StringKey } from "./i18n";
import { icon, srOnly } from "./icons";
import { parseMarkdown, safeHref } from "./markdown";
import { renderMarkdown, resolveCitations, type CitationTarget } from "./render";
import CSS from "./widget.css";
import type { Citation, ConversationStatus, Message, WidgetSettings } from "./types";

export interface ViewActions {
  send(text: string): void;
  opened(): void;
  closed(): void;
  handoff(): Promise<boolean>;
  feedback(messageId: number, rating: "up" | "down"): Promise<void>;
  csat(score: number, comment: string): Promise<void>;
  typing(): void;
}

type Vars = Record<string, string | number>;

interface Binding {
  el: Element;
  key: StringKey;
  attr: string | null;
  vars: () => Vars;
}

const NEAR_BOTTOM_PX = 96;

export class ChatView {
  readonly host: HTMLElement;
  private readonly root: HTMLDivElement;
  private readonly launcher: HTMLButtonElement;
  private readonly launcherText: HTMLSpanElement;
  private readonly badge: HTMLSpanElement;
  private readonly panel: HTMLDivElement;
  private readonly avatar: HTMLDivElement;
  private readonly title: HTMLHeadingElement;
  private readonly status: HTMLParagraphElement;
  private readonly statusText: HTMLSpanElement;
  private readonly menuButton: HTMLButtonElement;
  private readonly menu: HTMLDivElement;
  private readonly menuHandoff: HTMLButtonElement;
  private readonly log: HTMLDivElement;
  private readonly greeting: HTMLDivElement;
  private readonly typing: HTMLDivElement;
  private readonly input: HTMLTextAreaElement;
  private readonly sendButton: HTMLButtonElement;
  private readonly bindings: Binding[] = [];
  private statusValue: ConversationStatus = "bot";
  private organization = "";
  private sendBlockedUntil = 0;
  private busy = false;
  /** Follow new content down, until the customer scrolls up to read. */
  private pinned = true;
  language: Language;
  isOpen = false;

  constructor(
    language: Language,
    private readonly actions: ViewActions,
    /** Where relative citation addresses resolve: the platform's origin. */
    readonly linkBase: string,
  ) {
    this.language = language;
    this.host = document.createElement("resolvo-chat");
    const shadow = this.host.attachShadow({ mode: "open" });
    adoptStyles(shadow);

    // Launcher
    this.launcherText = h("span", { class: "rv-launcher-text rv-when-closed" });
    this.badge = h("span", { class: "rv-badge", hidden: true });
    this.launcher = h(
      "button",
      { type: "button", class: "rv-launcher", "aria-expanded": "false", "aria-controls": "rv-panel" },
      wrap("rv-when-closed", icon("chat", 26)),
      this.launcherText,
      wrap("rv-when-open", icon("chevronDown", 26)),
      this.badge,
    );
    this.launcher.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));

    // Header
    this.avatar = h("div", { class: "rv-avatar", "aria-hidden": "true" });
    this.title = h("h2", { class: "rv-title", id: "rv-title" });
    this.statusText = h("span");
    this.status = h("p", { class: "rv-status" }, h("span", { class: "rv-dot", "aria-hidden": "true" }), this.statusText);
    this.menuButton = h(
      "button",
      { type: "button", class: "rv-icon-btn", "aria-haspopup": "menu", "aria-expanded": "false", "aria-controls": "rv-menu" },
      icon("more", 20),
    );
    this.bind(this.menuButton, "moreOptions", "aria-label");
    const closeButton = h("button", { type: "button", class: "rv-icon-btn" }, icon("close", 20));
    this.bind(closeButton, "closeChat", "aria-label");
    closeButton.addEventListener("click", () => this.close());
    this.menuHandoff = h("button", { type: "button", class: "rv-menu-item", role: "menuitem" }, icon("person", 18));
    const menuHandoffLabel = h("span");
    this.bind(menuHandoffLabel, "talkToPerson");
    this.menuHandoff.appendChild(menuHandoffLabel);
    this.menuHandoff.addEventListener("click", () => {
      this.toggleMenu(false);
      void this.actions.handoff();
    });
    this.menu = h("div", { class: "rv-menu", id: "rv-menu", role: "menu", hidden: true }, this.menuHandoff);
    this.menuButton.addEventListener("click", () => this.toggleMenu(Boolean(this.menu.hidden)));
    const header = h(
      "div",
      { class: "rv-header" },
      this.avatar,
      h("div", { class: "rv-heading" }, this.title, this.status),
      h("div", { class: "rv-header-actions" }, this.menuButton, closeButton),
      this.menu,
    );

    // Conversation log: a polite live region; `aria-busy` holds announcements while an answer streams.
    this.greeting = h("div", { class: "rv-bubble rv-md" });
    this.typing = h("div", { class: "rv-typing", hidden: true }, dots(), h("span"));
    this.bind(this.typing.lastElementChild as Element, "agentTyping");
    this.log = h(
      "div",
      { class: "rv-log", role: "log", "aria-live": "polite", "aria-relevant": "additions text", tabindex: "-1" },
      h("div", { class: "rv-msg rv-msg--assistant" }, this.greeting),
      this.typing,
    );

    this.log.addEventListener("scroll", () => (this.pinned = this.nearBottom()), { passive: true });

    // Composer
    this.input = h("textarea", { class: "rv-input", rows: "1", enterkeyhint: "send" });
    this.bind(this.input, "placeholder", "placeholder");
    this.bind(this.input, "placeholder", "aria-label");
    this.sendButton = h("button", { type: "submit", class: "rv-send", disabled: true }, icon("send", 18));
    this.bind(this.sendButton, "send", "aria-label");
    const footer = h("p", { class: "rv-footer" });
    this.bind(footer, "poweredBy");
    const form = h(
      "form",
      { class: "rv-composer" },
      h("div", { class: "rv-input-wrap" }, this.input, this.sendButton),
      footer,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => {
      this.autosize();
      this.updateSendButton();
      if (this.input.value.trim()) this.actions.typing();
    });

    this.panel = h(
      "div",
      { class: "rv-panel", id: "rv-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "rv-title" },
      header,
      this.log,
      form,
    );
    this.panel.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.stopPropagation();
      if (!this.menu.hidden) {
        this.toggleMenu(false);
        this.menuButton.focus();
      } else {
        this.close();
      }
    });
    // A click anywhere else, in the panel or on the page, closes the menu.
    document.addEventListener(
      "click",
      (event) => {
        if (!this.menu.hidden && !event.composedPath().some((n) => n === this.menu || n === this.menuButton)) {
          this.toggleMenu(false);
        }
      },
      true,
    );

    this.root = h("div", { class: "rv-root" }, this.panel, this.launcher);
    shadow.appendChild(this.root);
    this.bind(this.launcher, "openChat", "aria-label");
    this.setStatus("bot");
  }

  // --- setup ----------------------------------------------------------------------------------

  /** Organisation name, greeting, colours, side and launcher text from the boot response. */
  configure(organization: string, widget: WidgetSettings): void {
    this.organization = organization;
    this.title.textContent = organization;
    this.avatar.textContent = (organization.trim()[0] ?? "?").toUpperCase();
    if (this.panel.hasAttribute("aria-labelledby")) {
      this.panel.removeAttribute("aria-labelledby");
      this.bind(this.panel, "chatWith", "aria-label", () => ({ name: this.organization }));
    } else {
      this.panel.setAttribute("aria-label", this.t("chatWith", { name: organization }));
    }
    clear(this.greeting);
    this.greeting.appendChild(renderMarkdown(document, parseMarkdown(widget.greeting || this.t("greeting")), null));
    const colours = palette(widget.colour);
    this.root.style.setProperty("--rv-accent", colours.accent);
    this.root.style.setProperty("--rv-on-accent", colours.onAccent);
    this.root.style.setProperty("--rv-accent-strong", colours.accentStrong);
    this.root.style.setProperty("--rv-accent-soft", colours.accentSoft);
    this.root.classList.toggle("rv-left", widget.position === "left");
    const text = (widget.launcher_text || "").trim();
    this.launcherText.textContent = text;
    this.launcherText.hidden = text === "";
  }

  mount(): void {
    if (!this.host.isConnected) document.body.appendChild(this.host);
  }

  unmount(): void {
    this.host.remove();
  }

  setLanguage(language: Language): void {
    this.language = language;
    for (const binding of this.bindings) this.apply(binding);
    this.setStatus(this.statusValue);
    this.host.setAttribute("lang", language);
  }

  t(key: StringKey, vars: Vars = {}): string {
    return translate(this.language, key, vars);
  }

  /** Set `el`'s text (or attribute) to a translated string, now and on each language change. */
  bind(el: Element, key: StringKey, attr: string | null = null, vars: () => Vars = () => ({})): void {
    const binding = { el, key, attr, vars };
    this.bindings.push(binding);
    this.apply(binding);
  }

  private apply(binding: Binding): void {
    const value = this.t(binding.key, binding.vars());
    if (binding.attr) binding.el.setAttribute(binding.attr, value);
    else binding.el.textContent = value;
  }

  // --- opening and closing ----------------------------------------------------------------------

  open(): void {
    if (this.isOpen) return;
    this.isOpen = true;
    this.root.classList.add("rv-open");
    this.launcher.setAttribute("aria-expanded", "true");
    this.bindLauncherLabel();
    this.badge.hidden = true;
    this.scrollToBottom(true);
    // Focus after the panel becomes visible (visibility switches on in the same frame).
    requestAnimationFrame(() => this.input.focus({ preventScroll: true }));
    this.actions.opened();
  }

  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.toggleMenu(false);
    this.root.classList.remove("rv-open");
    this.launcher.setAttribute("aria-expanded", "false");
    this.bindLauncherLabel();
    this.launcher.focus({ preventScroll: true });
    this.actions.closed();
  }

  private bindLauncherLabel(): void {
    const binding = this.bindings.find((b) => b.el === this.launcher);
    if (binding) {
      binding.key = this.isOpen ? "closeChat" : "openChat";
      this.apply(binding);
    }
  }

  private toggleMenu(show: boolean): void {
    this.menu.hidden = !show;
    this.menuButton.setAttribute("aria-expanded", String(show));
    if (show) this.menuHandoff.focus();
  }

  /** A red dot on the launcher: something arrived while the panel was closed. */
  setUnread(unread: boolean): void {
    this.badge.hidden = !unread || this.isOpen;
    if (!this.badge.hidden) this.badge.setAttribute("aria-label", this.t("newMessage"));
  }

  // --- header status ------------------------------------------------------------------------------

  setStatus(status: ConversationStatus): void {
    this.statusValue = status;
    this.status.setAttribute("data-status", status);
    const key: StringKey =
      status === "waiting_human"
        ? "statusWaiting"
        : status === "human"
          ? "statusHuman"
          : status === "resolved" || status === "closed"
            ? "statusResolved"
            : "statusBot";
    this.statusText.textContent = this.t(key);
    const withPerson = status === "waiting_human" || status === "human";
    this.menuHandoff.hidden = withPerson;
    this.menuButton.hidden = withPerson;
    this.root.classList.toggle("rv-with-person", withPerson);
  }

  // --- composer -------------------------------------------------------------------------------------

  private submit(): void {
    const text = this.input.value.trim();
    if (!text || this.busy || Date.now() < this.sendBlockedUntil) return;
    this.input.value = "";
    this.autosize();
    this.updateSendButton();
    this.actions.send(text);
  }

  /** While an answer streams the customer can type but not send. */
  setBusy(busy: boolean): void {
    this.busy = busy;
    this.log.setAttribute("aria-busy", String(busy));
    this.updateSendButton();
  }

  /** After a 429: sending is off for `seconds`. */
  blockSending(seconds: number): void {
    this.sendBlockedUntil = Date.now() + seconds * 1000;
    this.updateSendButton();
    setTimeout(() => this.updateSendButton(), seconds * 1000 + 50);
  }

  private updateSendButton(): void {
    this.sendButton.disabled = this.input.value.trim() === "" || this.busy || Date.now() < this.sendBlockedUntil;
  }

  private autosize(): void {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 120)}px`;
  }

  /** Put a refused message back in the box, so the customer can shorten or fix it. */
  restoreDraft(text: string): void {
    if (this.input.value.trim() === "") {
      this.input.value = text;
      this.autosize();
      this.updateSendButton();
    }
    this.focusInput();
  }

  focusInput(): void {
    this.input.focus({ preventScroll: true });
  }

  // --- the conversation log -----------------------------------------------------------------------------

  private nearBottom(): boolean {
    const log = this.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
  }

  /** Keep the newest content in view, unless the customer scrolled up to read. */
  scrollToBottom(force = false): void {
    if (!force && !this.pinned) return;
    this.log.scrollTop = this.log.scrollHeight;
    this.pinned = true;
  }

  private add(node: HTMLElement): void {
    this.log.insertBefore(node, this.typing);
    this.scrollToBottom();
  }

  /** Forget every message (a new visitor or identity); the greeting stays. */
  reset(): void {
    while (this.log.children.length > 2) this.log.removeChild(this.log.children[1]);
    this.showTyping(false);
  }

  showTyping(show: boolean): void {
    this.typing.hidden = !show;
    if (show) this.scrollToBottom();
  }

  addCustomer(text: string): CustomerMessageView {
    const view = new CustomerMessageView(this, text);
    this.add(view.el);
    return view;
  }

  addAnswer(): AnswerView {
    const view = new AnswerView(this);
    this.add(view.el);
    return view;
  }

  /** A stored message: from the boot response (history) or the events stream. */
  addMessage(message: Message, options: { canHandoff: boolean }): void {
    switch (message.role) {
      case "customer":
        this.addCustomer(message.text);
        break;
      case "assistant": {
        const answer = this.addAnswer();
        answer.restore(message, options.canHandoff);
        break;
      }
      case "agent": {
        const bubble = h("div", { class: "rv-bubble rv-md" });
        bubble.appendChild(renderMarkdown(document, parseMarkdown(message.text), null));
        const sender = h("div", { class: "rv-sender" }, h("span", { class: "rv-sender-mark", "aria-hidden": "true" }, icon("person", 12)), h("span"));
        this.bind(sender.lastElementChild as Element, "agent");
        this.add(h("div", { class: "rv-msg rv-msg--agent" }, sender, bubble));
        break;
      }
      case "system":
        this.add(h("div", { class: "rv-msg rv-msg--system" }, h("p", { class: "rv-system" }, message.text)));
        break;
    }
  }

  /** An error for the customer, with the server's words when it gave some. */
  addNotice(text: string, retry?: () => void): HTMLElement {
    const notice = h("div", { class: "rv-notice", role: "alert" }, icon("alert", 18), h("span", {}, text));
    if (retry) {
      const button = h("button", { type: "button", class: "rv-link-btn" });
      this.bind(button, "retry");
      button.addEventListener("click", () => {
        notice.remove();
        retry();
      });
      notice.lastElementChild!.appendChild(button);
    }
    this.add(notice);
    return notice;
  }

  /** "How did we do?": five stars, an optional comment, then thanks. */
  addCsat(): void {
    const card = h("div", { class: "rv-csat", role: "group" });
    const title = h("p", { class: "rv-csat-title", id: `rv-csat-${Date.now()}` });
    this.bind(title, "csatTitle");
    card.setAttribute("aria-labelledby", title.id);
    const stars = h("div", { class: "rv-stars" });
    let score = 0;
    const buttons: HTMLButtonElement[] = [];
    const comment = h("textarea", { rows: "2", maxlength: "2000" });
    this.bind(comment, "csatComment", "placeholder");
    this.bind(comment, "csatComment", "aria-label");
    const submit = h("button", { type: "button", class: "rv-primary" });
    this.bind(submit, "csatSubmit");
    const details = h("div", { hidden: true }, comment, submit);
    const light = (upTo: number): void => buttons.forEach((b, i) => b.classList.toggle("rv-lit", i < upTo));
    for (let n = 1; n <= 5; n++) {
      const button = h("button", { type: "button", "aria-pressed": "false" }, icon("star", 24));
      this.bind(button, "csatScore", "aria-label", () => ({ n }));
      button.addEventListener("mouseenter", () => light(n));
      button.addEventListener("mouseleave", () => light(score));
      button.addEventListener("click", () => {
        score = n;
        buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === n - 1)));
        light(n);
        details.hidden = false;
        this.scrollToBottom(true);
      });
      buttons.push(button);
      stars.appendChild(button);
    }
    submit.addEventListener("click", () => {
      if (!score) return;
      submit.disabled = true;
      this.actions
        .csat(score, comment.value.trim())
        .then(() => {
          clear(card);
          const thanks = h("p", { class: "rv-csat-thanks", role: "status" });
          this.bind(thanks, "csatThanks");
          card.appendChild(thanks);
        })
        .catch(() => {
          submit.disabled = false;
        });
    });
    append(card, title, stars, details);
    this.add(card);
  }

  /** Point `el`'s translated text at another string. */
  retranslate(el: Element, key: StringKey): void {
    const binding = this.bindings.find((b) => b.el === el && b.attr === null);
    if (binding) {
      binding.key = key;
      this.apply(binding);
    }
  }

  actionsHandoff(): Promise<boolean> {
    return this.actions.handoff();
  }

  actionsFeedback(messageId: number, rating: "up" | "down"): Promise<void> {
    return this.actions.feedback(messageId, rating);
  }

  /** A translated element, kept in the language bindings. */
  translated<K extends keyof HTMLElementTagNameMap>(
    tag: K,
    attrs: Record<string, string | boolean | undefined>,
    key: StringKey,
    attr: string | null = null,
    vars: () => Vars = () => ({}),
  ): HTMLElementTagNameMap[K] {
    const el = h(tag, attrs);
    this.bind(el, key, attr, vars);
    return el;
  }
}

/**
 * A constructed stylesheet where the browser has them: pages whose Content-Security-Policy
 * forbids inline styles still style us (CSSOM is not an inline style); else a <style> element.
 */
function adoptStyles(shadow: ShadowRoot): void {
  try {
    if ("adoptedStyleSheets" in shadow && typeof CSSStyleSheet.prototype.replaceSync === "function") {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
      return;
    }
  } catch {
    // fall through to a <style> element
  }
  const style = document.createElement("style");
  style.textContent = CSS;
  shadow.appendChild(style);
}

function wrap(className: string, child: Node): HTMLSpanElement {
  return h("span", { class: className, "aria-hidden": "true" }, child);
}

function dots(): HTMLSpanElement {
  return h("span", { class: "rv-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i"));
}

/** A message the customer sent: it may still fail, and then offers to try again. */
export class CustomerMessageView {
  readonly el: HTMLDivElement;
  id: number | null = null;
  private error: HTMLElement | null = null;

  constructor(
    private readonly view: ChatView,
    text: string,
  ) {
    const label = srOnly(view.t("you") + ": ");
    this.el = h("div", { class: "rv-msg rv-msg--customer" }, h("div", { class: "rv-bubble" }, label, text));
  }

  failed(detail: string, retry: (() => void) | null): void {
    this.cleared();
    this.el.classList.add("rv-failed");
    this.error = h("div", { class: "rv-msg-error", role: "alert" }, icon("alert", 14), h("span", {}, detail));
    if (retry) {
      const button = this.view.translated("button", { type: "button", class: "rv-link-btn" }, "retry");
      button.addEventListener("click", () => {
        this.cleared();
        retry();
      });
      this.error.appendChild(button);
    }
    this.el.appendChild(this.error);
    this.view.scrollToBottom();
  }

  remove(): void {
    this.el.remove();
  }

  cleared(): void {
    this.el.classList.remove("rv-failed");
    this.error?.remove();
    this.error = null;
  }
}

/**
 * One answer from the assistant: a thinking indicator until the first token, the text as it
 * streams (rendered at most once a frame), then the verified citations as links and a
 * "Sources" list, the feedback thumbs, and "Talk to a person" when it abstained.
 */
export class AnswerView {
  readonly el: HTMLDivElement;
  private readonly bubble: HTMLDivElement;
  private readonly sender: HTMLDivElement;
  private text = "";
  private citations: Citation[] | null = null;
  private frame = 0;
  messageId: number | null = null;

  constructor(private readonly view: ChatView) {
    this.sender = h(
      "div",
      { class: "rv-sender" },
      h("span", { class: "rv-sender-mark", "aria-hidden": "true" }, "AI"),
      view.translated("span", {}, "assistant"),
    );
    this.bubble = h("div", { class: "rv-bubble rv-md" });
    this.el = h("div", { class: "rv-msg rv-msg--assistant" }, this.sender, this.bubble);
  }

  thinking(): void {
    clear(this.bubble);
    this.bubble.appendChild(
      h("span", { class: "rv-thinking", role: "status" }, dots(), this.view.translated("span", {}, "thinking")),
    );
  }

  append(delta: string): void {
    this.text += delta;
    this.schedule();
  }

  get streamed(): string {
    return this.text;
  }

  setText(text: string): void {
    this.text = text;
    this.schedule();
  }

  setCitations(citations: Citation[]): void {
    this.citations = citations;
    this.renderNow();
    this.renderSources();
  }

  /** A stored answer (history): text, citations, feedback, and the handoff offer. */
  restore(message: Message, canHandoff: boolean): void {
    this.text = message.text;
    this.citations = message.citations ?? [];
    this.renderNow();
    this.renderSources();
    this.finish(message.id, message.offers_handoff && canHandoff, message.offers_handoff);
  }

  /** The answer is complete: a way to a person if it abstained, else feedback on a stored answer. */
  finish(messageId: number | null, offerHandoff: boolean, abstained: boolean): void {
    this.messageId = messageId;
    if (this.citations === null) this.citations = [];
    this.renderNow();
    if (offerHandoff) this.addHandoff();
    if (messageId !== null && !abstained) this.addFeedback(messageId);
    this.view.scrollToBottom();
  }

  /** The assistant could not answer (the engine's `error`): its message replaces the answer. */
  failed(message: string): void {
    this.text = "";
    cancelAnimationFrame(this.frame);
    clear(this.bubble);
    this.bubble.appendChild(h("p", {}, message));
  }

  remove(): void {
    cancelAnimationFrame(this.frame);
    this.el.remove();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.renderNow();
    });
  }

  private renderNow(): void {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    if (!this.text) return;
    let blocks = parseMarkdown(this.text);
    let targets: Map<number, CitationTarget> | null = null;
    if (this.citations !== null) {
      blocks = resolveCitations(blocks, new Set(this.citations.map((c) => c.n)));
      targets = new Map(
        this.citations.map((c) => [
          c.n,
          {
            n: c.n,
            href: safeHref(c.url, this.view.linkBase),
            label: this.view.t("sourceLabel", { n: c.n, title: sourceTitle(c) }),
          },
        ]),
      );
    }
    clear(this.bubble);
    this.bubble.appendChild(renderMarkdown(document, blocks, targets));
    this.view.scrollToBottom();
  }

  private renderSources(): void {
    this.el.querySelector(".rv-sources")?.remove();
    const citations = [...(this.citations ?? [])].sort((a, b) => a.n - b.n);
    if (citations.length === 0) return;
    const list = h("ol");
    for (const c of citations) {
      const href = safeHref(c.url, this.view.linkBase);
      const title = sourceTitle(c);
      const titleNode = href
        ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, title)
        : h("span", { class: "rv-source-title" }, title);
      const section = c.section && c.section !== title ? h("span", { class: "rv-source-section" }, ` · ${c.section}`) : null;
      list.appendChild(
        h(
          "li",
          { class: "rv-source" },
          h("span", { class: "rv-source-n", "aria-hidden": "true" }, String(c.n)),
          h("span", { class: "rv-source-text" }, srOnly(`${c.n}. `), titleNode, section),
        ),
      );
    }
    const box = h("div", { class: "rv-sources" }, this.view.translated("p", { class: "rv-sources-title" }, "sources"), list);
    this.bubble.after(box);
    this.view.scrollToBottom();
  }

  private addHandoff(): void {
    const button = h("button", { type: "button", class: "rv-handoff" }, icon("person", 16), this.view.translated("span", {}, "talkToPerson"));
    button.addEventListener("click", () => {
      button.disabled = true;
      void this.view.actionsHandoff().then((ok) => {
        if (ok) button.replaceWith(handoffDone(this.view));
        else button.disabled = false;
      });
    });
    this.el.appendChild(button);
  }

  private addFeedback(messageId: number): void {
    const label = this.view.translated("span", { class: "rv-rate-label" }, "wasHelpful");
    const up = h("button", { type: "button", "aria-pressed": "false" }, icon("thumbsUp", 16));
    const down = h("button", { type: "button", "aria-pressed": "false" }, icon("thumbsDown", 16));
    this.view.bind(up, "helpfulYes", "aria-label");
    this.view.bind(down, "helpfulNo", "aria-label");
    this.view.bind(up, "helpfulYes", "title");
    this.view.bind(down, "helpfulNo", "title");
    const rate = (rating: "up" | "down"): void => {
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
      this.view.actionsFeedback(messageId, rating).then(
        () => this.view.retranslate(label, "feedbackThanks"),
        () => {
          up.setAttribute("aria-pressed", "false");
          down.setAttribute("aria-pressed", "false");
        },
      );
    };
    up.addEventListener("click", () => rate("up"));
    down.addEventListener("click", () => rate("down"));
    this.el.appendChild(h("div", { class: "rv-actions" }, h("span", { class: "rv-rate" }, label, up, down)));
  }
}

function handoffDone(view: ChatView): HTMLElement {
  return h("p", { class: "rv-handoff-done", role: "status" }, icon("check", 16), view.translated("span", {}, "personWillReply"));
}

/** A citation's title as text: its title, else the source document's name. */
export function sourceTitle(c: Citation): string {
  return (c.title || c.source || `#${c.n}`).trim();
}
