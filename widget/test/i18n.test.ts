import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { LANGUAGES, pickLanguage, primarySubtag, STRINGS, translate } from "../src/i18n";

describe("pickLanguage", () => {
  it("prefers the page's setting, then the browser's languages, then English", () => {
    assert.equal(pickLanguage("de", ["fr-FR"]), "de");
    assert.equal(pickLanguage("es-MX", []), "es");
    assert.equal(pickLanguage(null, ["fr-CA", "en"]), "fr");
    assert.equal(pickLanguage("pt-BR", ["it", "de_AT"]), "de", "unsupported ones are skipped");
    assert.equal(pickLanguage(undefined, ["ja"]), "en");
    assert.equal(pickLanguage("", []), "en");
  });

  it("reads primary subtags", () => {
    assert.equal(primarySubtag("EN-gb"), "en");
    assert.equal(primarySubtag("x"), null);
    assert.equal(primarySubtag(null), null);
  });
});

describe("translate", () => {
  it("has every string in every language, with the same placeholders", () => {
    const keys = Object.keys(STRINGS.en).sort();
    for (const language of LANGUAGES) {
      assert.deepEqual(Object.keys(STRINGS[language]).sort(), keys, language);
      for (const key of keys) {
        const text = STRINGS[language][key as keyof typeof STRINGS.en];
        assert.ok(text.trim(), `${language}.${key} is empty`);
        const holes = (s: string): string[] => (s.match(/\{\w+\}/g) ?? []).sort();
        assert.deepEqual(holes(text), holes(STRINGS.en[key as keyof typeof STRINGS.en]), `${language}.${key}`);
      }
    }
  });

  it("fills placeholders and looks strings up by language", () => {
    assert.equal(translate("en", "sourceLabel", { n: 2, title: "Reset" }), "Source 2: Reset");
    assert.equal(translate("fr", "sourceLabel", { n: 2, title: "Reset" }), "Source 2 : Reset");
    assert.equal(translate("de", "talkToPerson"), "Mit einer Person sprechen");
    assert.equal(translate("es", "send"), "Enviar");
    assert.equal(translate("en", "chatWith"), "Chat with {name}", "a missing value leaves the hole visible");
  });
});
