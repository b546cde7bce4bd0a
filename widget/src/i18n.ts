/**
 * The widget's own interface strings in English, Spanish, German and French. Messages written
 * by the assistant or an agent come from the server in the customer's language; only the
 * chrome around them is translated here. The type makes a missing translation a build error.
 */

export const LANGUAGES = ["en", "es", "de", "fr"] as const;
export type Language = (typeof LANGUAGES)[number];

const en = {
  openChat: "Open chat",
  closeChat: "Close chat",
  moreOptions: "More options",
  chatWith: "Chat with {name}",
  statusBot: "AI answers from our help center",
  greeting: "Hi! How can we help?",
  statusWaiting: "Waiting for a person…",
  statusHuman: "You're chatting with our team",
  statusResolved: "This conversation is resolved",
  placeholder: "Ask a question",
  send: "Send",
  talkToPerson: "Talk to a person",
  personWillReply: "A person will reply here",
  thinking: "Thinking…",
  agentTyping: "Our team is typing…",
  sources: "Sources",
  sourceLabel: "Source {n}: {title}",
  wasHelpful: "Was this helpful?",
  helpfulYes: "Yes, this helped",
  helpfulNo: "No, this didn't help",
  feedbackThanks: "Thanks for your feedback",
  csatTitle: "How did we do?",
  csatScore: "{n} out of 5",
  csatComment: "Anything you'd like to add? (optional)",
  csatSubmit: "Send",
  csatThanks: "Thank you! Your rating helps us improve.",
  you: "You",
  assistant: "Assistant",
  agent: "Support team",
  retry: "Try again",
  networkError: "We couldn't reach the server. Check your connection and try again.",
  genericError: "Something went wrong. Please try again.",
  newMessage: "New message",
  poweredBy: "Powered by Resolvo",
};

export type StringKey = keyof typeof en;
type Strings = Record<StringKey, string>;

const es: Strings = {
  openChat: "Abrir chat",
  closeChat: "Cerrar chat",
  moreOptions: "Más opciones",
  chatWith: "Chatea con {name}",
  statusBot: "Respuestas IA del centro de ayuda",
  greeting: "¡Hola! ¿En qué podemos ayudarte?",
  statusWaiting: "Esperando a una persona…",
  statusHuman: "Estás hablando con nuestro equipo",
  statusResolved: "Esta conversación está resuelta",
  placeholder: "Haz una pregunta",
  send: "Enviar",
  talkToPerson: "Hablar con una persona",
  personWillReply: "Una persona te responderá aquí",
  thinking: "Pensando…",
  agentTyping: "Nuestro equipo está escribiendo…",
  sources: "Fuentes",
  sourceLabel: "Fuente {n}: {title}",
  wasHelpful: "¿Te ha resultado útil?",
  helpfulYes: "Sí, me ha ayudado",
  helpfulNo: "No, no me ha ayudado",
  feedbackThanks: "Gracias por tu opinión",
  csatTitle: "¿Qué tal lo hemos hecho?",
  csatScore: "{n} de 5",
  csatComment: "¿Quieres añadir algo? (opcional)",
  csatSubmit: "Enviar",
  csatThanks: "¡Gracias! Tu valoración nos ayuda a mejorar.",
  you: "Tú",
  assistant: "Asistente",
  agent: "Equipo de soporte",
  retry: "Reintentar",
  networkError: "No hemos podido conectar con el servidor. Revisa tu conexión e inténtalo de nuevo.",
  genericError: "Algo ha fallado. Inténtalo de nuevo.",
  newMessage: "Mensaje nuevo",
  poweredBy: "Con la tecnología de Resolvo",
};

const de: Strings = {
  openChat: "Chat öffnen",
  closeChat: "Chat schließen",
  moreOptions: "Weitere Optionen",
  chatWith: "Chat mit {name}",
  statusBot: "KI-Antworten aus dem Hilfe-Center",
  greeting: "Hallo! Wie können wir helfen?",
  statusWaiting: "Warten auf eine Person…",
  statusHuman: "Sie chatten mit unserem Team",
  statusResolved: "Diese Unterhaltung ist gelöst",
  placeholder: "Stellen Sie eine Frage",
  send: "Senden",
  talkToPerson: "Mit einer Person sprechen",
  personWillReply: "Eine Person antwortet Ihnen hier",
  thinking: "Denkt nach…",
  agentTyping: "Unser Team schreibt…",
  sources: "Quellen",
  sourceLabel: "Quelle {n}: {title}",
  wasHelpful: "War das hilfreich?",
  helpfulYes: "Ja, das hat geholfen",
  helpfulNo: "Nein, das hat nicht geholfen",
  feedbackThanks: "Danke für Ihr Feedback",
  csatTitle: "Wie waren wir?",
  csatScore: "{n} von 5",
  csatComment: "Möchten Sie noch etwas ergänzen? (optional)",
  csatSubmit: "Senden",
  csatThanks: "Vielen Dank! Ihre Bewertung hilft uns, besser zu werden.",
  you: "Sie",
  assistant: "Assistent",
  agent: "Support-Team",
  retry: "Erneut versuchen",
  networkError: "Der Server ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
  genericError: "Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.",
  newMessage: "Neue Nachricht",
  poweredBy: "Bereitgestellt von Resolvo",
};

const fr: Strings = {
  openChat: "Ouvrir le chat",
  closeChat: "Fermer le chat",
  moreOptions: "Plus d'options",
  chatWith: "Discuter avec {name}",
  statusBot: "Réponses IA du centre d'aide",
  greeting: "Bonjour ! Comment pouvons-nous vous aider ?",
  statusWaiting: "En attente d'une personne…",
  statusHuman: "Vous discutez avec notre équipe",
  statusResolved: "Cette conversation est résolue",
  placeholder: "Posez une question",
  send: "Envoyer",
  talkToPerson: "Parler à une personne",
  personWillReply: "Une personne vous répondra ici",
  thinking: "Réflexion…",
  agentTyping: "Notre équipe écrit…",
  sources: "Sources",
  sourceLabel: "Source {n} : {title}",
  wasHelpful: "Cette réponse vous a-t-elle aidé ?",
  helpfulYes: "Oui, cela m'a aidé",
  helpfulNo: "Non, cela ne m'a pas aidé",
  feedbackThanks: "Merci pour votre avis",
  csatTitle: "Comment nous sommes-nous débrouillés ?",
  csatScore: "{n} sur 5",
  csatComment: "Voulez-vous ajouter quelque chose ? (facultatif)",
  csatSubmit: "Envoyer",
  csatThanks: "Merci ! Votre note nous aide à nous améliorer.",
  you: "Vous",
  assistant: "Assistant",
  agent: "Équipe support",
  retry: "Réessayer",
  networkError: "Impossible de joindre le serveur. Vérifiez votre connexion et réessayez.",
  genericError: "Une erreur s'est produite. Veuillez réessayer.",
  newMessage: "Nouveau message",
  poweredBy: "Propulsé par Resolvo",
};

export const STRINGS: Record<Language, Strings> = { en, es, de, fr };

/**
 * The interface language: the host page's `Resolvo('settings', {language})` when given and
 * supported, else the browser's first supported preference, else English. Tags are matched on
 * their primary subtag ("fr-CA" → "fr", "de_AT" → "de").
 */
export function pickLanguage(preferred: string | null | undefined, browser: readonly string[]): Language {
  for (const tag of [preferred, ...browser]) {
    const base = primarySubtag(tag);
    if (base && (LANGUAGES as readonly string[]).includes(base)) return base as Language;
  }
  return "en";
}

/** "pt-BR" → "pt"; null for an empty or malformed tag. */
export function primarySubtag(tag: string | null | undefined): string | null {
  if (!tag) return null;
  const base = tag.trim().toLowerCase().split(/[-_]/)[0];
  return /^[a-z]{2,3}$/.test(base) ? base : null;
}

/** The string `key` in `language`, with `{name}` placeholders filled from `vars`. */
export function translate(language: Language, key: StringKey, vars: Record<string, string | number> = {}): string {
  const template = STRINGS[language][key] ?? STRINGS.en[key];
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}
