// Bundle src/main.ts into dist/resolvo.js: one minified IIFE for es2019 browsers, no runtime
// dependencies. Prints the size raw (unminified), minified and gzipped.
import { build, transform } from "esbuild";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

/** `import css from "./x.css"` gives the stylesheet as a string, minified when the bundle is. */
const cssAsText = (minify) => ({
  name: "css-as-text",
  setup(b) {
    b.onLoad({ filter: /\.css$/ }, async (args) => {
      const source = readFileSync(args.path, "utf8");
      const { code } = await transform(source, { loader: "css", minify, target: ["chrome80", "firefox78", "safari13"] });
      return { contents: code, loader: "text" };
    });
  },
});

const options = {
  entryPoints: ["src/main.ts"],
  bundle: true,
  format: "iife",
  target: "es2019",
  platform: "browser",
  charset: "utf8",
  legalComments: "inline",
  banner: { js: "/*! Resolvo chat widget | icons after Feather (MIT) */" },
  write: false,
  logLevel: "warning",
};

const [raw, min] = await Promise.all([
  build({ ...options, minify: false, plugins: [cssAsText(false)] }),
  build({ ...options, minify: true, plugins: [cssAsText(true)] }),
]);
const code = min.outputFiles[0].contents;
mkdirSync("dist", { recursive: true });
writeFileSync("dist/resolvo.js", code);

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(
  `dist/resolvo.js: ${kb(raw.outputFiles[0].contents.length)} raw, ${kb(code.length)} minified, ` +
    `${kb(gzipSync(code, { level: 9 }).length)} gzipped`,
);
