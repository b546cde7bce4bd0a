// Compile test/*.test.ts (and the modules they import) into dist-test/ for `node --test`.
import { build } from "esbuild";
import { readdirSync, rmSync } from "node:fs";

rmSync("dist-test", { recursive: true, force: true });
await build({
  entryPoints: readdirSync("test")
    .filter((name) => name.endsWith(".test.ts"))
    .map((name) => `test/${name}`),
  outdir: "dist-test",
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  logLevel: "warning",
});
