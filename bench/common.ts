// Shared by the benchmarks: the loadgen binary, a bench co-op on the local host, and figures.
import { ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { CoopSpec } from "../components/config";
import { DeployReport, parseReport, releaseDocument } from "../components/release";
import { render } from "../components/remote/shell";
import { exec, writeFile } from "../components/remote/ssh";
import { ROOT, RunResult, TestHost, localHost, localTarget, proxyGet, pulumi, runOk } from "../test/support";

export function images(): Record<string, string> {
    return JSON.parse(readFileSync(path.join(ROOT, ".local", "images.json"), "utf8")).images;
}

/** Builds bench/loadgen (static, stdlib only) into .local/bin and returns its path. */
export function buildLoadgen(): string {
    const out = path.join(ROOT, ".local", "bin", "loadgen");
    runOk("go", ["build", "-o", out, "."], { env: { CGO_ENABLED: "0" }, cwd: path.join(ROOT, "bench", "loadgen") });
    return out;
}

/** The bench co-op's settings besides its id, domain, image and migrations. */
const BENCH_COOP: CoopSpec = {
    id: "bench",
    domains: [],
    image: "",
    port: 8080,
    healthPath: "/health",
    uptimePath: "/",
    healthTimeout: 30,
    migrate: [],
    env: {},
    secretEnv: {},
    generatedSecrets: [],
    configFiles: {},
    retain: 2,
    rollbackWindow: 900,
    deleteDataOnRemove: true,
    dataVolume: "scratch",
};

/** A co-op the benchmark owns on the local host, deployed by the host agent (test/support.ts installs it). */
export class BenchCoop {
    constructor(
        readonly tool: string,
        readonly id: string,
        readonly opts: { migrate?: boolean } = {},
    ) {}

    get domain(): string {
        return `${this.id}.localhost`;
    }

    async reset(): Promise<void> {
        await exec(localTarget(), `${this.tool} remove ${this.id} --delete-data >/dev/null 2>&1; ${this.tool} prepare ${this.id} >/dev/null`);
    }

    /** Writes the env file; a new `rev` makes the next deploy a new release even with the same image. */
    async env(rev: number): Promise<void> {
        await writeFile(localTarget(), `/opt/coop/coops/${this.id}/env`, `COOP_ID=${this.id}\nREV=${rev}\n`, 0o600);
    }

    /** One release; resolves with the agent's report and the wall time seen from here (SSH included). */
    async deploy(image: string): Promise<{ wallMs: number; report: DeployReport }> {
        const doc = releaseDocument({ ...BENCH_COOP, id: this.id, domains: [this.domain], image, migrate: this.opts.migrate ? ["migrate"] : [] }, { network: "coop", tls: false });
        const started = performance.now();
        const r = await exec(localTarget(), render([this.tool, "deploy", "--health-interval", "0.1"]), { stdin: JSON.stringify(doc) });
        const wallMs = performance.now() - started;
        if (r.code !== 0) {
            throw new Error(`deploy ${this.id} failed:\n${r.stderr}`);
        }
        return { wallMs, report: parseReport(DeployReport, `deploy of ${this.id}`, r.stdout) };
    }

    /** Removes the co-op, its data and (unless kept for another co-op) the benchmark's copy of the tool. */
    async remove(o: { keepTool?: boolean } = {}): Promise<void> {
        await exec(localTarget(), `${this.tool} remove ${this.id} --delete-data >/dev/null${o.keepTool ? "" : ` && rm -f ${this.tool}`}`);
    }
}

/** Status of a GET through the proxy on loopback (0 when the connection failed). */
export async function get(pathname: string, host: string, timeoutMs = 30000): Promise<number> {
    return (await proxyGet(pathname, host, timeoutMs)).status;
}

/** Starts loadgen in the background; `stop()` sends SIGTERM and resolves with its JSON summary. */
export function startLoad(bin: string, args: string[]): { proc: ChildProcess; stop: () => Promise<Record<string, number>> } {
    const proc = spawn(bin, [...args, "-format", "json", "-self-stats"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    proc.stdout!.on("data", (c) => (out += c));
    const done = new Promise<void>((resolve) => proc.on("exit", () => resolve()));
    return {
        proc,
        stop: async () => {
            proc.kill("SIGTERM");
            await done;
            const summary = JSON.parse(out);
            if (process.env.BENCH_VERBOSE) console.error(`loadgen: ${JSON.stringify({ status_codes: summary.status_codes, errors: summary.errors })}`);
            return summary;
        },
    };
}

export function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Prints figures last, one `name=value` a line; fractions below 1 (the ratios) with three
 * decimals, so that one just over its target does not print as the target.
 */
export function printFigures(figures: Record<string, string | number>): void {
    for (const [k, v] of Object.entries(figures)) {
        console.log(`${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(Math.abs(v) < 1 ? 3 : 2) : v}`);
    }
}

/** Fails with the command's output unless it exited 0. */
export function must(r: RunResult, what: string): RunResult {
    if (r.status !== 0) {
        throw new Error(`${what} failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    }
    return r;
}

/**
 * Creates stack `stack` (Pulumi.STACK.yaml, git-ignored as Pulumi.bench-*.yaml) shaped like the
 * local stack, with the given co-op list, in whatever backend `env` selects, on host `on` (the
 * local stack's host unless a test gives its own).
 */
export function initLocalStack(stack: string, coops: unknown[], env: NodeJS.ProcessEnv, on: TestHost = localHost()): void {
    const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
    const cf = ["--stack", stack];
    const img = images();
    const host = on.target;
    pulumi(["stack", "rm", "--stack", stack, "--yes", "--force"], { env });
    must(pulumi(["stack", "init", stack, "--secrets-provider", "passphrase"], { env }), "stack init");
    must(pulumi(["config", "set", ...cf, "--secret", "coop:sshPrivateKey"], { env, input: host.privateKey }), "set key");
    const yaml = readFileSync(file, "utf8");
    const salt = /^encryptionsalt: (.+)$/m.exec(yaml)![1];
    const secure = /secure: (.+)$/m.exec(yaml)![1];
    const config = {
        "coop:environment": "local",
        "coop:hosts": [{ name: on.name, address: host.host, port: host.port, hostKey: host.hostKey.split(" ").slice(0, 2).join(" ") }],
        "coop:proxy": { image: img["kamal-proxy"], bindAddress: on.bindAddress, httpPort: 8080, httpsPort: 8443 },
        "coop:agent": img["coop-agent"],
        "coop:sshPrivateKey": { secure },
        "coop:coops": coops,
    };
    // JSON is YAML: the whole stack file in one write.
    writeFileSync(file, JSON.stringify({ encryptionsalt: salt, config }, null, 2));
}
