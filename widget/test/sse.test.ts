import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { parseData, readEventStream, SseParser, type SseEvent } from "../src/sse";

const ANSWER =
  'event: message\ndata: {"id": 7, "role": "customer"}\n\n' +
  "event: token\ndata: {\"text\": \"Hold \"}\n\n" +
  ": keep-alive\n\n" +
  'event: token\ndata: {"text": "the button [1]."}\n\n' +
  'event: done\ndata: {"abstained": false, "replaced": false, "message_id": 8}\n\n';

function parseAll(chunks: string[]): SseEvent[] {
  const parser = new SseParser();
  return chunks.flatMap((chunk) => parser.feed(chunk));
}

describe("SseParser", () => {
  it("reads an answer stream's frames in order, skipping comments", () => {
    const events = parseAll([ANSWER]);
    assert.deepEqual(
      events.map((e) => e.event),
      ["message", "token", "token", "done"],
    );
    assert.deepEqual(parseData(events[2]), { text: "the button [1]." });
  });

  it("gives the same events however the bytes are cut into chunks", () => {
    const whole = parseAll([ANSWER]);
    for (let cut = 1; cut < ANSWER.length; cut++) {
      assert.deepEqual(parseAll([ANSWER.slice(0, cut), ANSWER.slice(cut)]), whole, `cut at ${cut}`);
    }
    assert.deepEqual(parseAll([...ANSWER]), whole, "one character at a time");
  });

  it("accepts CRLF and CR line ends, even with CRLF split across chunks", () => {
    const crlf = ANSWER.replace(/\n/g, "\r\n");
    assert.deepEqual(parseAll([crlf]), parseAll([ANSWER]));
    assert.deepEqual(parseAll([ANSWER.replace(/\n/g, "\r")]), parseAll([ANSWER]));
    const at = crlf.indexOf("\r\n") + 1;
    assert.deepEqual(parseAll([crlf.slice(0, at), "", crlf.slice(at)]), parseAll([ANSWER]));
  });

  it("joins multi-line data, defaults the event name, and keeps the last id", () => {
    const events = parseAll(["id: 41\nevent: status\ndata: {\"to\":\ndata: \"human\"}\n\n", "data: plain\n\n"]);
    assert.equal(events[0].event, "status");
    assert.equal(events[0].data, '{"to":\n"human"}');
    assert.equal(events[0].id, "41");
    assert.equal(events[1].event, "message");
    assert.equal(events[1].id, "41", "an id persists until the next one");
  });

  it("ignores frames without data, strips one leading space only, drops a BOM and an unfinished frame", () => {
    const parser = new SseParser();
    assert.deepEqual(parser.feed("\ufeffevent: ping\n\nretry: 3000\ndata:  two spaces\n\ndata: cut off"), [
      { event: "message", data: " two spaces", id: "", retry: 3000 },
    ]);
    assert.deepEqual(parser.end(), []);
  });

  it("parseData returns null for data that is not JSON", () => {
    assert.equal(parseData({ event: "token", data: "{oops", id: "" }), null);
  });
});

describe("readEventStream", () => {
  it("decodes UTF-8 split inside a character and reads to the end", async () => {
    const bytes = new TextEncoder().encode('event: token\ndata: {"text": "Grüße – 日本"}\n\nid: 3\nevent: typing\ndata: {}\n\n');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 5) controller.enqueue(bytes.slice(i, i + 5));
        controller.close();
      },
    });
    const seen: SseEvent[] = [];
    await readEventStream(stream, (event) => seen.push(event));
    assert.deepEqual(parseData(seen[0]), { text: "Grüße – 日本" });
    assert.deepEqual(
      seen.map((e) => [e.event, e.id]),
      [
        ["token", ""],
        ["typing", "3"],
      ],
    );
  });
});
