/** The accent colour from the server's settings, and colours derived from it for contrast. */

export interface Palette {
  accent: string;
  /** Text on the accent: white or near-black, whichever reads better (WCAG contrast). */
  onAccent: string;
  /** A darker accent for hover states and for links on white. */
  accentStrong: string;
  /** A very light tint for soft backgrounds. */
  accentSoft: string;
}

const FALLBACK = "#2563EB";

export function parseHex(value: string | null | undefined): [number, number, number] | null {
  const m = /^#?([0-9a-f]{6}|[0-9a-f]{3})$/i.exec((value ?? "").trim());
  if (!m) return null;
  const hex = m[1].length === 3 ? [...m[1]].map((c) => c + c).join("") : m[1];
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}

function toHex(rgb: number[]): string {
  return "#" + rgb.map((c) => Math.round(Math.max(0, Math.min(255, c))).toString(16).padStart(2, "0")).join("");
}

function luminance([r, g, b]: number[]): number {
  const lin = (c: number): number => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

export function contrast(a: number[], b: number[]): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

function mix(a: number[], b: number[], amount: number): number[] {
  return a.map((c, i) => c + (b[i] - c) * amount);
}

/** A palette for `colour` ("#RRGGBB"); an unusable value falls back to a neutral blue. */
export function palette(colour: string | null | undefined): Palette {
  const rgb = parseHex(colour) ?? (parseHex(FALLBACK) as [number, number, number]);
  const white = [255, 255, 255];
  const ink = [17, 24, 39];
  const onAccent = contrast(rgb, white) >= contrast(rgb, ink) ? "#ffffff" : toHex(ink);
  // Darken until the colour reads on white (links, focus rings), at most 60 %.
  let strong = rgb as number[];
  for (let step = 0; step < 12 && contrast(strong, white) < 4.5; step++) strong = mix(strong, [0, 0, 0], 0.08);
  return { accent: toHex(rgb), onAccent, accentStrong: toHex(strong), accentSoft: toHex(mix(rgb, white, 0.9)) };
}
