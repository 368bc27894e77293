// npm run bench:scale — how program evaluation grows with the number of co-ops.
//  1. The whole program on prod's stack file with the engine mocked (test/mockProgram.ts), with
//     1, 50 and 200 co-ops: wall time and peak memory of the process, median of 3 fresh processes.
//  2. A real `pulumi preview` through the pinned CLI, with 1, 50 and 200 co-ops. The DigitalOcean
//     provider plugin cannot be built on this machine (README, "The toolchain"), so the previewed
//     stack is the application layer on the local hosts' shape (hosts, co-op instances, their
//     remote commands and files); peak memory is the largest process's (CLI, language host or
//     provider), from GNU time. It uses a throwaway file backend: nothing of the local stack is touched.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { MockRun } from "../test/mockProgram";
import { ROOT, localHostsUp, pulumi } from "../test/support";
import { images, initLocalStack, median, must, printFigures } from "./common";

const SIZES = [1, 50, 200];
const RUNS = 3;

function mocked(coops: number): { ms: number; rssMb: number; resources: number } {
    const r = spawnSync(process.execPath, [path.join(ROOT, "build", "test", "mockProgram.js"), path.join(ROOT, "Pulumi.prod.yaml"), "--coops", String(coops)], {
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
    });
    const run = JSON.parse(r.stdout) as MockRun;
    if (run.error) {
        throw new Error(`mocked run with ${coops} co-ops: ${run.error}`);
    }
    return { ms: run.ms, rssMb: run.maxRssKb / 1024, resources: run.resources.length };
}

function preview(coops: number, env: NodeJS.ProcessEnv): { ms: number; rssMb: number; creates: number } {
    const stack = `bench-scale-${coops}`;
    const img = images();
    initLocalStack(
        stack,
        Array.from({ length: coops }, (_, i) => ({ id: `c${i}`, domains: [`c${i}.localhost`], image: img["demo:v1"], migrate: ["migrate"], generatedSecrets: ["SECRET_KEY"] })),
        env,
    );
    // One preview, under GNU time for its peak memory (the largest resident set of any process it waited for).
    const started = performance.now();
    const timed = spawnSync("/usr/bin/time", ["-f", "%M", path.join(ROOT, "scripts", "pulumi.sh"), "preview", "--stack", stack, "--json", "--non-interactive"], {
        cwd: ROOT,
        env: { ...process.env, ...env },
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
    });
    const ms = performance.now() - started;
    must({ status: timed.status, stdout: timed.stdout, stderr: timed.stderr }, `preview (${coops} co-ops)`);
    const creates = (JSON.parse(timed.stdout) as { changeSummary: { create?: number } }).changeSummary.create ?? 0;
    const rssKb = Number(timed.stderr.trim().split("\n").at(-1));
    pulumi(["stack", "rm", "--stack", stack, "--yes", "--force"], { env });
    rmSync(path.join(ROOT, `Pulumi.${stack}.yaml`), { force: true });
    return { ms, rssMb: rssKb / 1024, creates };
}

function main(): void {
    const figures: Record<string, number> = {};
    for (const n of SIZES) {
        const runs = Array.from({ length: RUNS }, () => mocked(n));
        figures[`mocked_${n}_ms`] = median(runs.map((x) => x.ms));
        figures[`mocked_${n}_peak_rss_mb`] = Math.max(...runs.map((x) => x.rssMb));
        figures[`mocked_${n}_resources`] = runs[0].resources;
        console.error(`mocked prod, ${n} co-ops: ${runs.map((x) => x.ms.toFixed(0)).join(", ")} ms`);
    }

    localHostsUp();
    const backend = mkdtempSync(path.join(tmpdir(), "coop-bench-scale-"));
    const env = { PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE: "bench-only" };
    try {
        for (const n of SIZES) {
            const runs = Array.from({ length: RUNS }, () => preview(n, env));
            figures[`preview_${n}_ms`] = median(runs.map((x) => x.ms));
            figures[`preview_${n}_peak_rss_mb`] = Math.max(...runs.map((x) => x.rssMb));
            figures[`preview_${n}_creates`] = runs[0].creates;
            console.error(`preview (application layer), ${n} co-ops: ${runs.map((x) => x.ms.toFixed(0)).join(", ")} ms`);
        }
    } finally {
        rmSync(backend, { recursive: true, force: true });
    }
    figures.mocked_200_over_1_ratio = figures.mocked_200_ms / figures.mocked_1_ms;
    figures.preview_200_over_1_ratio = figures.preview_200_ms / figures.preview_1_ms;
    printFigures(figures);
}

main();
