/**
 * How the program runs. It runs compiled (build/index.js), not through ts-node: no type check at
 * every run. `npm run build` stamps the build with a digest of the sources it was compiled from;
 * the program refuses to run from a build whose sources have changed since.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";

/** Where `npm run build` writes the digest of the sources it compiled. */
export const STAMP = path.join("build", "program.sha256");

function tsFiles(dir: string, rel: string): string[] {
    return readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
        const p = path.join(rel, e.name);
        return e.isDirectory() ? tsFiles(dir, p) : e.name.endsWith(".ts") ? [p] : [];
    });
}

/** Digest of what the program is compiled from: index.ts, components/**\/*.ts and tsconfig.json. */
export function sourceDigest(root: string): string {
    const files = ["index.ts", "tsconfig.json", ...tsFiles(root, "components")].sort();
    const h = createHash("sha256");
    for (const f of files) {
        h.update(`${f}\0`)
            .update(readFileSync(path.join(root, f)))
            .update("\0");
    }
    return h.digest("hex");
}

/** Why the build at `root` cannot run, or undefined when it was compiled from the sources there. */
export function staleBuild(root: string): string | undefined {
    let stamped: string;
    try {
        stamped = readFileSync(path.join(root, STAMP), "utf8").trim();
    } catch {
        return "the program has not been built: run `npm run build` (npm run pulumi does it for you)";
    }
    return stamped === sourceDigest(root) ? undefined : "the compiled program (build/) is older than its TypeScript sources: run `npm run build` (npm run pulumi does it for you)";
}

/**
 * Stack traces in V8's own format. Pulumi's runner installs source-map-support, which maps every
 * frame of every stack trace through the source maps of each file on the stack, and the SDK records
 * a stack trace for each promise it makes (a dozen per resource). With hundreds of co-ops that
 * mapping was a sixth of the preview (bench:scale). The program is compiled JavaScript: its frames
 * name build/*.js, which need no map to be read.
 */
export function plainStackTraces(): void {
    delete (Error as { prepareStackTrace?: unknown }).prepareStackTrace;
}
