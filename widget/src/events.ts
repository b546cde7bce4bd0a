/**
 * The conversation's live events (`GET /conversations/{id}/events?after=N`): agent messages,
 * status changes and typing. The server ends each response after about 25 s; we reconnect from
 * the last event id seen, at once after a clean end and with growing, jittered delays after
 * errors. A 4xx other than 429 (the conversation is gone, the token refused) stops the loop.
 */

import { ApiClient, ApiError, isAbort } from "./api";
import { readEventStream, type SseEvent } from "./sse";

export interface EventsHandlers {
  onEvent(event: SseEvent): void;
  /** The server refused the stream for good. */
  onRefused(error: ApiError): void;
}

/** Delay before reconnect attempt `failures` (1, 2, …): 1 s doubling to 30 s, ±50 % jitter. */
export function backoffDelay(failures: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.5 + random()));
}

export class EventsStream {
  private controller: AbortController | null = null;
  private running = false;

  constructor(
    private readonly api: ApiClient,
    readonly conversationId: number,
    /** The last event id seen; advanced as events arrive. */
    public after: number,
    private readonly handlers: EventsHandlers,
  ) {}

  get active(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  stop(): void {
    this.running = false;
    this.controller?.abort();
    this.controller = null;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      const controller = new AbortController();
      this.controller = controller;
      try {
        const response = await this.api.events(this.conversationId, this.after, controller.signal);
        if (!response.body) throw new Error("no response body");
        await readEventStream(response.body, (event) => {
          const seq = Number(event.id);
          if (event.id !== "" && Number.isFinite(seq) && seq > this.after) this.after = seq;
          if (this.running) this.handlers.onEvent(event);
        });
        failures = 0;
        await sleep(250, controller.signal); // a clean end: the server's ~25 s window is over
      } catch (error) {
        if (!this.running || isAbort(error)) break;
        if (error instanceof ApiError && error.status < 500 && error.status !== 429 && error.status !== 408) {
          this.running = false;
          this.handlers.onRefused(error);
          break;
        }
        failures++;
        const wait =
          error instanceof ApiError && error.retryAfter !== null ? error.retryAfter * 1000 : backoffDelay(failures);
        try {
          await sleep(wait, controller.signal);
        } catch {
          break;
        }
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new DOMException("Aborted", "AbortError"));
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("Aborted", "AbortError"));
      },
      { once: true },
    );
  });
}
