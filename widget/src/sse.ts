/**
 * Server-sent events over `fetch`: an incremental parser for the `text/event-stream` format
 * (the WHATWG "event stream interpretation" rules), and a reader that feeds it a response body.
 *
 * `EventSource` cannot send an `Authorization` header or a POST body, so both of the widget's
 * streams (an answer, and the conversation's events) are read with `fetch` and parsed here.
 */

export interface SseEvent {
  /** The `event:` field, or "message" when the frame had none. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The last `id:` seen on this stream so far (ids persist across frames, as in EventSource). */
  id: string;
  /** The `retry:` value in milliseconds, when this frame carried one. */
  retry?: number;
}

/**
 * Feed it text as it arrives, in chunks cut anywhere (even between "\r" and "\n"); it returns
 * the events completed by each chunk. Frames end with a blank line; a frame with no `data:`
 * line dispatches nothing; lines starting with ":" are comments (keep-alives).
 */
export class SseParser {
  private buffer = "";
  private started = false;
  private pendingCr = false;
  private eventType = "";
  private dataLines: string[] = [];
  private hasData = false;
  private retry: number | undefined;
  lastEventId = "";

  feed(chunk: string): SseEvent[] {
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    if (this.pendingCr && chunk.length > 0) {
      if (chunk.charCodeAt(0) === 10) chunk = chunk.slice(1); // a "\r\n" cut between chunks
      this.pendingCr = false;
    }
    this.buffer += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.buffer.slice(start, i);
      if (c === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
      const event = this.line(line);
      if (event) out.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  /** The stream ended: an unterminated last frame is discarded, as the specification says. */
  end(): SseEvent[] {
    this.buffer = "";
    this.reset();
    return [];
  }

  private line(line: string): SseEvent | null {
    if (line === "") return this.dispatch();
    if (line.charCodeAt(0) === 58 /* ":" */) return null;
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon !== -1) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.dataLines.push(value);
        this.hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
    return null;
  }

  private dispatch(): SseEvent | null {
    if (!this.hasData) {
      this.reset();
      return null;
    }
    const event: SseEvent = {
      event: this.eventType || "message",
      data: this.dataLines.join("\n"),
      id: this.lastEventId,
    };
    if (this.retry !== undefined) event.retry = this.retry;
    this.reset();
    return event;
  }

  private reset(): void {
    this.eventType = "";
    this.dataLines = [];
    this.hasData = false;
    this.retry = undefined;
  }
}

/**
 * Read a `text/event-stream` body to its end, calling `onEvent` for each event in order.
 * Resolves when the server closes the stream; rejects on a network error or an abort.
 */
export async function readEventStream(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: SseEvent) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  const parser = new SseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const event of parser.feed(decoder.decode(value, { stream: true }))) onEvent(event);
    }
    for (const event of parser.feed(decoder.decode())) onEvent(event);
    parser.end();
  } finally {
    reader.releaseLock();
  }
}

/** `JSON.parse` for an event's data; null when it is not JSON (a malformed frame is skipped). */
export function parseData<T>(event: SseEvent): T | null {
  try {
    return JSON.parse(event.data) as T;
  } catch {
    return null;
  }
}
