// npm run bench:scale — how the program's cost grows with the number of co-ops.
//  1. The whole program on prod's stack file with the engine mocked (test/mockProgram.ts), with
//     1, 50 and 200 co-ops: wall time and peak memory of the process, median of 3 fresh processes.
//  2. Where the DigitalOcean plugin is installed: a real `pulumi preview` of prod's whole graph
//     (infrastructure and application layers) with 1 and 200 co-ops, through the pinned CLI and the
//     real plugin: wall time and the peak resident memory of the largest process (GNU time's %M is
//     the largest of the process tree it waits for); preview_200_over_1_ratio and peak_mb_200.
//  3. Where it is not: the same for the application layer alone, on the local hosts' shape.
// With 200 co-ops prod's database is a 16 GB node with pools of 1 connection (so 200 pools fit,
// as the config parser demands); 1 co-op gets the same settings, so only the count differs.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { cloudProject, digitaloceanPluginInstalled } from "../test/cloudProject";
import { operatorStackFile, type MockRun } from "../test/mockProgram";
import { ROOT, localHostsUp, pulumi } from "../test/support";
import { images, initLocalStack, median, must, printFigures } from "./common";

const SIZES = [1, 50, 200];
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** prod's co-ops as N copies of its first one, on a database that serves N pools. */
function scaled(config: Record<string, any>, coops: number): void {
    const first = config["coop:coops"][0];
    config["coop:coops"] = Array.from({ length: coops }, (_, i) => ({ ...first, id: `coop-${i + 1}`, domains: [`coop-${i + 1}.coophost.example`] }));
    config["coop:digitalocean"].database = { ...config["coop:digitalocean"].database, size: "db-s-6vcpu-16gb", poolSize: 1 };
}

function mocked(coops: number): { ms: number; rssMb: number; resources: number } {
    const prepared = operatorStackFile(path.join(ROOT, "Pulumi.prod.yaml"), { edit: (c) => scaled(c, coops) });
    const r = spawnSync(process.execPath, [path.join(ROOT, "build", "test", "mockProgram.js"), prepared.file, "--as-is", "--plaintext", writePlaintext(prepared.plaintext)], {
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
    });
    const run = JSON.parse(r.stdout) as MockRun;
    if (run.error) throw new Error(`mocked run with ${coops} co-ops: ${run.error}`);
    return { ms: run.ms, rssMb: run.maxRssKb / 1024, resources: run.resources.length };
}

function writePlaintext(p: Record<string, string>): string {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "coop-plaintext-")), "plaintext.json");
    require("node:fs").writeFileSync(file, JSON.stringify(p));
    return file;
}

/** One preview under GNU time: wall time, peak memory of the largest process, creates. */
function timedPreview(args: string[], env: NodeJS.ProcessEnv): { ms: number; rssMb: number; creates: number } {
    const started = performance.now();
    const timed = spawnSync("/usr/bin/time", ["-f", "%M", path.join(ROOT, "scripts", "pulumi.sh"), ...args, "--json", "--non-interactive"], {
        cwd: ROOT,
        env: { ...process.env, ...env },
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
    });
    const ms = performance.now() - started;
    must({ status: timed.status, stdout: timed.stdout, stderr: timed.stderr }, `preview ${args.join(" ")}`);
    const creates = (JSON.parse(timed.stdout) as { changeSummary: { create?: number } }).changeSummary.create ?? 0;
    return { ms, rssMb: Number(timed.stderr.trim().split("\n").at(-1)) / 1024, creates };
}

function cloudPreview(work: string, coops: number): { ms: number; rssMb: number; creates: number } {
    const p = cloudProject(work, "prod", (c) => scaled(c, coops));
    return timedPreview(["--cwd", p.dir, "preview", "--stack", "prod"], p.env);
}

function appLayerPreview(coops: number, env: NodeJS.ProcessEnv): { ms: number; rssMb: number; creates: number } {
    const stack = `bench-scale-${coops}`;
    const img = images();
    initLocalStack(
        stack,
        Array.from({ length: coops }, (_, i) => ({ id: `c${i}`, domains: [`c${i}.localhost`], image: img["demo:v1"], migrate: ["migrate"], generatedSecrets: ["SECRET_KEY"] })),
        env,
    );
    const r = timedPreview(["preview", "--stack", stack], env);
    pulumi(["stack", "rm", "--stack", stack, "--yes", "--force"], { env });
    rmSync(path.join(ROOT, `Pulumi.${stack}.yaml`), { force: true });
    return r;
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
    figures.mocked_200_over_1_ratio = figures.mocked_200_ms / figures.mocked_1_ms;

    const work = mkdtempSync(path.join(tmpdir(), "coop-bench-scale-"));
    try {
        if (digitaloceanPluginInstalled()) {
            for (const n of [1, 200]) {
                const runs = Array.from({ length: RUNS }, () => cloudPreview(work, n));
                figures[`preview_${n}_ms`] = median(runs.map((x) => x.ms));
                figures[`peak_mb_${n}`] = Math.max(...runs.map((x) => x.rssMb));
                figures[`preview_${n}_creates`] = runs[0].creates;
                console.error(`preview of prod's whole graph, ${n} co-ops: ${runs.map((x) => `${x.ms.toFixed(0)} ms / ${x.rssMb.toFixed(0)} MB`).join(", ")}`);
            }
            figures.preview_200_over_1_ratio = figures.preview_200_ms / figures.preview_1_ms;
        } else {
            console.error(
                "the DigitalOcean plugin is not installed: previewing the application layer alone (pulumi plugin install resource digitalocean VERSION for the whole graph)",
            );
            localHostsUp();
            const env = { PULUMI_BACKEND_URL: `file://${work}`, PULUMI_CONFIG_PASSPHRASE: "bench-only" };
            for (const n of SIZES) {
                const runs = Array.from({ length: RUNS }, () => appLayerPreview(n, env));
                figures[`app_preview_${n}_ms`] = median(runs.map((x) => x.ms));
                figures[`app_peak_mb_${n}`] = Math.max(...runs.map((x) => x.rssMb));
                figures[`app_preview_${n}_creates`] = runs[0].creates;
            }
            figures.app_preview_200_over_1_ratio = figures.app_preview_200_ms / figures.app_preview_1_ms;
        }
    } finally {
        rmSync(work, { recursive: true, force: true });
    }
    printFigures(figures);
}

main();
