/**
 * What survives a reload, in the host page's `localStorage` under keys scoped by the widget's
 * public key: the visitor token and the current conversation's id. No cookies. Storage can be
 * unavailable (blocked third-party storage, private modes): then we keep the values in memory
 * and the conversation lasts as long as the page.
 */

export class VisitorStore {
  private readonly memory = new Map<string, string>();

  constructor(
    private readonly publicKey: string,
    private readonly storage: Storage | null = safeLocalStorage(),
  ) {}

  get token(): string | null {
    return this.read("visitor");
  }

  set token(value: string | null) {
    this.write("visitor", value);
  }

  get conversationId(): number | null {
    const raw = this.read("conversation");
    const id = raw === null ? NaN : Number(raw);
    return Number.isInteger(id) && id > 0 ? id : null;
  }

  set conversationId(value: number | null) {
    this.write("conversation", value === null ? null : String(value));
  }

  key(name: string): string {
    return `resolvo:${this.publicKey}:${name}`;
  }

  private read(name: string): string | null {
    const key = this.key(name);
    try {
      if (this.storage) return this.storage.getItem(key);
    } catch {
      // fall through to memory
    }
    return this.memory.get(key) ?? null;
  }

  private write(name: string, value: string | null): void {
    const key = this.key(name);
    if (value === null) this.memory.delete(key);
    else this.memory.set(key, value);
    try {
      if (!this.storage) return;
      if (value === null) this.storage.removeItem(key);
      else this.storage.setItem(key, value);
    } catch {
      // quota or a blocked store: the in-memory copy is enough for this page
    }
  }
}

function safeLocalStorage(): Storage | null {
  try {
    return typeof window !== "undefined" ? window.localStorage : null;
  } catch {
    return null; // reading the property itself throws where storage is blocked
  }
}
