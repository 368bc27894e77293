// After `tsc`: records the digest of the sources the build was compiled from (see
// components/programSource.ts). With --check, exits 1 when the build is missing or stale, so
// scripts/pulumi.sh compiles only when it must.
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { STAMP, sourceDigest, staleBuild } from "../components/programSource";

const ROOT = path.resolve(__dirname, "..", "..");
if (process.argv.includes("--check")) {
    process.exit(staleBuild(ROOT) ? 1 : 0);
}
writeFileSync(path.join(ROOT, STAMP), `${sourceDigest(ROOT)}\n`);
