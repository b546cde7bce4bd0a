/** The shapes of the public widget API (`/api/widget/v1`), as the server sends them. */

export type ConversationStatus = "bot" | "waiting_human" | "human" | "resolved" | "closed";
export type Role = "customer" | "assistant" | "agent" | "system";

export interface Citation {
  n: number;
  source: string;
  title: string;
  section: string;
  url: string;
  inferred: boolean;
}

export interface Message {
  id: number;
  role: Role;
  text: string;
  citations: Citation[];
  offers_handoff: boolean;
  created_at: string;
}

export interface Conversation {
  id: number;
  status: ConversationStatus;
  /** The knowledge scope the conversation started with (empty: the whole knowledge base). */
  tags?: string[];
  last_event_id: number;
  messages: Message[];
}

export interface WidgetSettings {
  greeting: string;
  colour: string;
  position: "right" | "left";
  launcher_text: string;
}

export interface BootRequest {
  key: string;
  visitor_token: string | null;
  user_id: string | null;
  user_hash: string | null;
  user_jwt: string | null;
  language: string | null;
}

export interface BootResponse {
  visitor_token: string;
  organization: { name: string };
  widget: WidgetSettings;
  conversation: Conversation | null;
}

export interface HandoffResponse {
  ticket: number;
  status: ConversationStatus;
}

/** Events of one answer stream (`POST /conversations/{id}/messages`). */
export interface TokenData {
  text: string;
}
export interface CitationsData {
  citations: Citation[];
  dropped: number[];
}
export interface DoneData {
  /** answered, quoted, abstained (a person is offered) or clarified (the answer asks which one). */
  outcome?: "answered" | "quoted" | "abstained" | "clarified";
  /** The language of the answer (ISO 639-1). */
  language?: string;
  abstained: boolean;
  reason: string;
  answer: string;
  replaced: boolean;
  message_id: number | null;
}
export interface ErrorData {
  message: string;
  handoff: boolean;
}
export interface StatusData {
  status?: ConversationStatus;
  from?: ConversationStatus;
  to?: ConversationStatus;
  reason?: string;
}
export interface TypingData {
  role: Role;
}
