/**
 * The widget's behaviour: boot, resume a stored conversation, send a message and read its
 * answer stream, follow the conversation's live events while the panel is open (or a person is
 * on it), hand off, and collect feedback. `view.ts` draws; this file talks to the API.
 */

import { ApiClient, ApiError, isAbort, NetworkError, uuid } from "./api";
import type { Command, Identity } from "./embed";
import { EventsStream } from "./events";
import { pickLanguage, primarySubtag, type Language } from "./i18n";
import { parseData, readEventStream, type SseEvent } from "./sse";
import { VisitorStore } from "./storage";
import type {
  BootResponse,
  CitationsData,
  Conversation,
  ConversationStatus,
  DoneData,
  ErrorData,
  Message,
  StatusData,
  TokenData,
  TypingData,
} from "./types";
import { ChatView, type AnswerView, type CustomerMessageView } from "./view";

interface Current {
  id: number;
  status: ConversationStatus;
  lastEventId: number;
}

const BOOT_ATTEMPTS = 4;
const TYPING_MS = 8000;
/** At most one "customer is typing" note this often, and only while a person has the conversation. */
const TYPED_EVERY_MS = 3000;

export class Widget {
  private readonly api: ApiClient;
  private readonly store: VisitorStore;
  private view: ChatView | null = null;
  private identity: Identity = { userId: null, userHash: null, userJwt: null, name: null, email: null };
  private languagePref: string | null = null;
  /** The knowledge scope new conversations start with (`data-tags`, `Resolvo('settings', {tags})`). */
  private tags: string[] = [];
  private conversation: Current | null = null;
  private creating: Promise<Current> | null = null;
  /** Ids of the messages on screen, so replays and the two streams never show one twice. */
  private readonly shown = new Set<number>();
  private sending = false;
  private events: EventsStream | null = null;
  private lifetime = new AbortController();
  private booted = false;
  private booting: Promise<void> | null = null;
  private openWhenReady = false;
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private typedAt = 0;

  constructor(
    private readonly publicKey: string,
    apiBase: string,
    /** The platform's origin, for relative citation links. */
    private readonly linkBase: string,
  ) {
    this.api = new ApiClient(apiBase);
    this.store = new VisitorStore(publicKey);
    window.addEventListener("pagehide", () => this.suspend());
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) this.resume();
    });
  }

  // --- the page's commands ------------------------------------------------------------------------

  command(command: Command): void {
    switch (command.name) {
      case "identify": {
        const changed =
          command.identity.userId !== this.identity.userId ||
          command.identity.userHash !== this.identity.userHash ||
          command.identity.userJwt !== this.identity.userJwt;
        this.identity = command.identity;
        if (changed && this.booted) void this.boot();
        break;
      }
      case "settings":
        this.languagePref = command.language;
        this.view?.setLanguage(this.language());
        if (command.tags !== null) this.scope(command.tags);
        break;
      case "open":
        if (this.view) this.view.open();
        else this.openWhenReady = true;
        break;
      case "close":
        this.openWhenReady = false;
        this.view?.close();
        break;
      case "toggle":
        if (this.view) {
          if (this.view.isOpen) this.view.close();
          else this.view.open();
        } else {
          this.openWhenReady = !this.openWhenReady;
        }
        break;
    }
  }

  /** Scope the conversations started from now on to these tags (none: the whole knowledge base). */
  scope(tags: string[]): void {
    this.tags = [...tags];
  }

  private language(): Language {
    const browser = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
    return pickLanguage(this.languagePref, browser);
  }

  // --- boot -----------------------------------------------------------------------------------------

  start(): Promise<void> {
    return this.boot();
  }

  private boot(): Promise<void> {
    if (!this.booting) {
      this.booting = this.bootOnce().finally(() => {
        this.booting = null;
      });
    }
    return this.booting;
  }

  private async bootOnce(): Promise<void> {
    const storedToken = this.store.token;
    let response: BootResponse | null = null;
    for (let attempt = 1; attempt <= BOOT_ATTEMPTS && !response; attempt++) {
      try {
        response = await this.api.boot(
          {
            key: this.publicKey,
            visitor_token: storedToken,
            user_id: this.identity.userId,
            user_hash: this.identity.userHash,
            user_jwt: this.identity.userJwt,
            language: primarySubtag(this.languagePref ?? navigator.language),
          },
          this.lifetime.signal,
        );
      } catch (error) {
        if (isAbort(error)) return;
        const retryable = error instanceof NetworkError || (error instanceof ApiError && (error.status >= 500 || error.status === 429));
        if (!retryable || attempt === BOOT_ATTEMPTS) {
          const reason = error instanceof ApiError ? `${error.status} ${error.detail}`.trim() : "the server is unreachable";
          console.warn(`Resolvo: the chat widget is not shown (${reason}).`);
          if (error instanceof ApiError && error.status === 403) this.teardown();
          return;
        }
        const wait = error instanceof ApiError && error.retryAfter !== null ? error.retryAfter : 2 ** attempt;
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      }
    }
    if (!response) return;

    const newVisitor = storedToken !== null && storedToken !== response.visitor_token;
    this.store.token = response.visitor_token;
    this.api.token = response.visitor_token;
    if (newVisitor) this.forgetConversation();

    const view = this.view ?? this.createView();
    view.configure(response.organization.name, response.widget);
    view.mount();
    this.booted = true;

    if (response.conversation) {
      if (this.conversation && this.conversation.id !== response.conversation.id) this.forgetConversation();
      this.load(response.conversation);
    } else if (this.conversation === null) {
      this.store.conversationId = null;
    }
    if (this.openWhenReady) {
      this.openWhenReady = false;
      view.open();
    }
    this.follow();
  }

  private createView(): ChatView {
    const view = new ChatView(
      this.language(),
      {
        send: (text) => this.send(text),
        opened: () => this.follow(),
        closed: () => this.follow(),
        handoff: () => this.handoff(),
        feedback: (id, rating) => this.feedback(id, rating),
        csat: (score, comment) => this.csat(score, comment),
        typing: () => this.typed(),
      },
      this.linkBase,
    );
    view.setLanguage(this.language());
    this.view = view;
    return view;
  }

  /** Refused (403): nothing stays on the page. */
  private teardown(): void {
    this.events?.stop();
    this.events = null;
    this.view?.unmount();
    this.view = null;
    this.booted = false;
  }

  private forgetConversation(): void {
    this.events?.stop();
    this.events = null;
    this.conversation = null;
    this.store.conversationId = null;
    this.shown.clear();
    this.view?.reset();
  }

  private load(conversation: Conversation): void {
    this.conversation = { id: conversation.id, status: conversation.status, lastEventId: conversation.last_event_id };
    this.store.conversationId = conversation.id;
    for (const message of conversation.messages ?? []) this.show(message);
    this.setStatus(conversation.status, false);
  }

  private show(message: Message): void {
    if (this.shown.has(message.id) || !this.view) return;
    this.shown.add(message.id);
    // Offer a person under an abstention only while the assistant still has the conversation.
    this.view.addMessage(message, { canHandoff: (this.conversation?.status ?? "bot") === "bot" });
  }

  private setStatus(status: ConversationStatus, live: boolean): void {
    const before = this.conversation?.status;
    if (this.conversation) this.conversation.status = status;
    this.view?.setStatus(status);
    if (live && status === "resolved" && before !== "resolved") this.view?.addCsat();
    this.follow();
  }

  // --- the live events stream -------------------------------------------------------------------------

  /**
   * Follow the conversation's events while the panel is open, and also while a person has it
   * (so an agent's reply lights the launcher's badge); otherwise no connection is held.
   */
  private follow(): void {
    const c = this.conversation;
    const wanted =
      this.view !== null &&
      c !== null &&
      !this.lifetime.signal.aborted &&
      (this.view.isOpen || c.status === "waiting_human" || c.status === "human");
    if (!wanted) {
      this.events?.stop();
      this.events = null;
      return;
    }
    if (this.events && this.events.active && this.events.conversationId === c.id) return;
    this.events?.stop();
    const stream = new EventsStream(this.api, c.id, c.lastEventId, {
      onEvent: (event) => {
        if (this.conversation && this.conversation.id === stream.conversationId) {
          this.conversation.lastEventId = Math.max(this.conversation.lastEventId, stream.after);
        }
        this.onLiveEvent(event);
      },
      onRefused: (error) => {
        if (this.events === stream) this.events = null;
        console.warn(`Resolvo: live updates stopped (${error.status} ${error.detail}).`.replace(" )", ")"));
      },
    });
    this.events = stream;
    stream.start();
  }

  private onLiveEvent(event: SseEvent): void {
    const view = this.view;
    if (!view) return;
    switch (event.event) {
      case "message": {
        const message = parseData<Message>(event);
        if (!message || typeof message.id !== "number") return;
        // While a send is in flight its own stream shows the customer's message and the answer.
        if (this.sending && (message.role === "customer" || message.role === "assistant")) return;
        if (this.shown.has(message.id)) return;
        if (message.role === "agent") this.typing(false);
        this.show(message);
        if (!view.isOpen && (message.role === "agent" || message.role === "system")) view.setUnread(true);
        break;
      }
      case "status": {
        const data = parseData<StatusData>(event);
        const to = data?.to ?? data?.status;
        if (to) this.setStatus(to, true);
        if (to === "resolved" || to === "closed" || to === "bot") this.typing(false);
        break;
      }
      case "typing": {
        const data = parseData<TypingData>(event);
        if (data?.role === "agent") this.typing(true);
        break;
      }
    }
  }

  /** The customer types: tell the agent (people only; the assistant does not need to know). */
  private typed(): void {
    const c = this.conversation;
    const now = Date.now();
    if (!c || (c.status !== "waiting_human" && c.status !== "human") || now - this.typedAt < TYPED_EVERY_MS) return;
    this.typedAt = now;
    this.api.typing(c.id).catch(() => undefined);
  }

  private typing(on: boolean): void {
    clearTimeout(this.typingTimer);
    this.view?.showTyping(on);
    if (on) this.typingTimer = setTimeout(() => this.view?.showTyping(false), TYPING_MS);
  }

  // --- sending ------------------------------------------------------------------------------------------

  private send(text: string): void {
    const view = this.view;
    if (!view) return;
    const bubble = view.addCustomer(text);
    view.scrollToBottom(true);
    void this.deliver(text, bubble, uuid());
  }

  /** The conversation, created on the first message. */
  private ensureConversation(): Promise<Current> {
    if (this.conversation) return Promise.resolve(this.conversation);
    if (!this.creating) {
      this.creating = this.api
        .createConversation(this.tags, this.lifetime.signal)
        .then((conversation) => {
          this.load(conversation);
          return this.conversation as Current;
        })
        .finally(() => {
          this.creating = null;
        });
    }
    return this.creating;
  }

  /** Send one message (again, with the same key, when retried) and show the answer as it streams. */
  private async deliver(text: string, bubble: CustomerMessageView, key: string): Promise<void> {
    const view = this.view;
    if (!view) return;
    this.sending = true;
    view.setBusy(true);
    let answer: AnswerView | null = null;
    let stored = false;
    let finished = false;
    const answerView = (): AnswerView => {
      if (!answer) {
        answer = view.addAnswer();
        answer.thinking();
      }
      return answer;
    };
    try {
      const conversation = await this.ensureConversation();
      // A person has the conversation: no answer will come, so no "Thinking…".
      const expectAnswer = conversation.status !== "waiting_human" && conversation.status !== "human";
      if (expectAnswer) answerView();
      const response = await this.api.sendMessage(conversation.id, text, key, this.lifetime.signal);
      if (!response.body) throw new NetworkError("no response body");
      await readEventStream(response.body, (event) => {
        switch (event.event) {
          case "message": {
            const message = parseData<Message>(event);
            if (message && typeof message.id === "number") {
              bubble.id = message.id;
              this.shown.add(message.id);
              stored = true;
            }
            break;
          }
          case "token": {
            const data = parseData<TokenData>(event);
            if (data?.text) answerView().append(data.text);
            break;
          }
          case "citations": {
            const data = parseData<CitationsData>(event);
            if (data) answerView().setCitations(Array.isArray(data.citations) ? data.citations : []);
            break;
          }
          case "done": {
            const data = parseData<DoneData>(event);
            if (!data) break;
            const a = answerView();
            if (data.replaced || !a.streamed) a.setText(data.answer);
            if (typeof data.message_id === "number") this.shown.add(data.message_id);
            a.finish(typeof data.message_id === "number" ? data.message_id : null, Boolean(data.abstained), Boolean(data.abstained));
            finished = true;
            break;
          }
          case "error": {
            const data = parseData<ErrorData>(event);
            answerView().failed(data?.message || view.t("genericError"));
            finished = true;
            if (data?.handoff) this.setStatus("waiting_human", true);
            break;
          }
          case "status": {
            const data = parseData<StatusData>(event);
            const status = data?.status ?? data?.to;
            if (status) this.setStatus(status, true);
            finished = true;
            break;
          }
        }
      });
      if (!finished) {
        const pending = answer as AnswerView | null;
        if (pending && !pending.streamed) pending.remove();
        if (!stored) throw new NetworkError("the stream ended before the message was stored");
        if (expectAnswer) view.addNotice(view.t("genericError"), () => void this.deliver(text, bubble, key));
      }
    } catch (error) {
      if (isAbort(error)) return;
      const pending = answer as AnswerView | null;
      if (pending && !pending.streamed) pending.remove();
      this.failed(error, text, bubble, key, stored);
    } finally {
      this.sending = false;
      this.view?.setBusy(false);
    }
  }

  private failed(error: unknown, text: string, bubble: CustomerMessageView, key: string, stored: boolean): void {
    const view = this.view;
    if (!view) return;
    const retry = (): void => void this.deliver(text, bubble, key);
    if (error instanceof ApiError) {
      const detail = error.detail || view.t("genericError");
      if (error.status === 429) {
        const wait = error.retryAfter ?? 5;
        view.blockSending(wait);
        bubble.failed(detail, retry);
      } else if (error.status === 404 && this.conversation) {
        // The stored conversation is gone: start a new one on the retry.
        this.forgetConversationKeepingScreen();
        bubble.failed(detail, () => void this.deliver(text, bubble, uuid()));
      } else if (error.status === 400 || error.status === 413 || error.status === 422) {
        // The message itself was refused (empty, too long): back into the box to be fixed.
        bubble.remove();
        view.addNotice(detail);
        view.restoreDraft(text);
      } else {
        bubble.failed(detail, error.status >= 500 || error.status === 408 ? retry : null);
      }
    } else if (stored) {
      view.addNotice(view.t("networkError"), retry);
    } else {
      bubble.failed(view.t("networkError"), retry);
    }
  }

  private forgetConversationKeepingScreen(): void {
    this.events?.stop();
    this.events = null;
    this.conversation = null;
    this.store.conversationId = null;
  }

  // --- handoff, feedback, satisfaction -----------------------------------------------------------------

  private async handoff(): Promise<boolean> {
    const view = this.view;
    if (!view) return false;
    try {
      const conversation = await this.ensureConversation();
      const result = await this.api.handoff(conversation.id, this.lifetime.signal);
      this.setStatus(result.status || "waiting_human", true);
      view.focusInput();
      return true;
    } catch (error) {
      if (!isAbort(error)) view.addNotice(this.errorText(error));
      return false;
    }
  }

  private async feedback(messageId: number, rating: "up" | "down"): Promise<void> {
    try {
      await this.api.feedback(messageId, rating);
    } catch (error) {
      this.view?.addNotice(this.errorText(error));
      throw error;
    }
  }

  private async csat(score: number, comment: string): Promise<void> {
    const conversation = this.conversation;
    if (!conversation) return;
    try {
      await this.api.csat(conversation.id, score, comment);
    } catch (error) {
      this.view?.addNotice(this.errorText(error));
      throw error;
    }
  }

  private errorText(error: unknown): string {
    const view = this.view;
    if (error instanceof ApiError && error.detail) return error.detail;
    if (!view) return "";
    return error instanceof NetworkError ? view.t("networkError") : view.t("genericError");
  }

  // --- page lifecycle -------------------------------------------------------------------------------------

  /** The page is going away (or into the back-forward cache): drop every open connection. */
  private suspend(): void {
    this.lifetime.abort();
    this.events?.stop();
    this.events = null;
  }

  private resume(): void {
    this.lifetime = new AbortController();
    this.follow();
  }
}
