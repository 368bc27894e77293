// Shared by the integration and end-to-end tests: the real local hosts and the real CLI.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { request } from "node:http";
import * as path from "node:path";
import { SshTarget } from "../components/remote/ssh";

/** The repository root (tests run from build/test/...). */
export const ROOT = path.resolve(__dirname, "..", "..");

export interface RunResult {
    status: number | null;
    stdout: string;
    stderr: string;
}

/** Runs a program to completion and returns what it printed; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): RunResult {
    const r = spawnSync(cmd, args, {
        cwd: opts.cwd ?? ROOT,
        input: opts.input,
        env: { ...process.env, ...opts.env },
        encoding: "utf8",
        timeout: opts.timeoutMs ?? 10 * 60 * 1000,
        maxBuffer: 64 * 1024 * 1024,
    });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Like {@link run}, but fails with the output when the exit status is not 0. */
export function runOk(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): RunResult {
    const r = run(cmd, args, opts);
    if (r.status !== 0) {
        throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    }
    return r;
}

/** Waits until `ok` holds, looking every 250 ms; fails naming `what` once `seconds` have passed. Resolves with the ms it took. */
export async function within(seconds: number, what: string, ok: () => Promise<boolean> | boolean): Promise<number> {
    const started = Date.now();
    while (!(await ok())) {
        if (Date.now() - started > seconds * 1000) assert.fail(`${what} not within ${seconds} s`);
        await new Promise((r) => setTimeout(r, 250));
    }
    return Date.now() - started;
}

/** Starts the local hosts (idempotent): the host the `local` stack and the benchmarks use, and the registry. */
export function localHostsUp(): void {
    runOk(path.join(ROOT, "scripts", "local-hosts.sh"), ["up"]);
}

/**
 * The test suite's own stack: a copy of the local stack's file (Pulumi.suite.yaml, written by
 * scripts/netns-hosts.sh) on a host of its own, so that the suite never touches the `local` stack
 * a user deployed with scripts/up.sh, nor that stack's host.
 */
export const SUITE_STACK = "suite";
export const SUITE_STACK_FILE = path.join(ROOT, "Pulumi.suite.yaml");

/** Starts the local hosts and the suite's own host (idempotent); Pulumi.suite.yaml is written afresh from Pulumi.local.yaml. */
export function suiteHostUp(): void {
    localHostsUp();
    runOk(path.join(ROOT, "scripts", "netns-hosts.sh"), ["up"], { env: { COOP_NETNS_SET: "suite" } });
}

/** A host the tests deploy to: its name in the stack, how to reach it, and where its proxy answers. */
export interface TestHost {
    name: string;
    target: SshTarget;
    /** The proxy's HTTP address from this machine, HOST:PORT. */
    proxy: string;
    /** What the stack's coop:proxy.bindAddress must be for {@link proxy} to reach it. */
    bindAddress: string;
}

/** The `local` stack's host (127.0.0.1:2222): a user's, which only the benchmarks use. */
export function localHost(): TestHost {
    return { name: "local-1", target: localTarget(), proxy: "127.0.0.1:8080", bindAddress: "127.0.0.1" };
}

/** The suite's own host (scripts/netns-hosts.sh, COOP_NETNS_SET=suite): a network and mount namespace with its own sshd, dockerd and /opt/coop. */
export function suiteHost(): TestHost {
    const file = path.join(ROOT, ".local", "machine.suite.json");
    const h = (JSON.parse(readFileSync(file, "utf8")) as { hosts: MachineHost[] }).hosts[0];
    return {
        name: h.name,
        target: netnsTarget(h),
        proxy: `${h.address}:8080`,
        bindAddress: "0.0.0.0",
    };
}

/** The pid of the suite host's Docker engine (its supervisor starts another when it ends, as systemd does on a droplet). */
export function suiteEnginePid(): number {
    return Number(readFileSync(path.join(ROOT, ".local", "netns", "suite-1", "dockerd.pid"), "utf8").trim());
}

/** A host of scripts/netns-hosts.sh as a machine file lists it. */
export interface MachineHost {
    name: string;
    address: string;
    port: number;
    hostKey: string;
}

/** A host of scripts/netns-hosts.sh (either set) as the deploy user reaches it over SSH, its host key pinned. */
export function netnsTarget(h: MachineHost): SshTarget {
    return {
        host: h.address,
        port: h.port,
        user: "deploy",
        privateKey: readFileSync(path.join(ROOT, ".local", "netns", "deploy_ed25519"), "utf8"),
        hostKey: h.hostKey,
        connectTimeoutMs: 10000,
    };
}

/** The suite's own host as the deploy user reaches it, its host key pinned. */
export function suiteTarget(): SshTarget {
    return suiteHost().target;
}

/** The local host as the deploy user reaches it, with the host key that sshd really has. */
export function localTarget(): SshTarget {
    const ssh = path.join(ROOT, ".local", "ssh");
    return {
        host: "127.0.0.1",
        port: Number(process.env.COOP_SSH_PORT ?? 2222),
        user: "deploy",
        privateKey: readFileSync(path.join(ssh, "deploy_ed25519"), "utf8"),
        hostKey: readFileSync(path.join(ssh, "host_ed25519.pub"), "utf8").trim(),
        connectTimeoutMs: 10000,
    };
}

/** The project's pinned CLI with the project's environment (scripts/pulumi.sh). */
export function pulumi(args: string[], opts: Parameters<typeof run>[2] = {}): RunResult {
    return run(path.join(ROOT, "scripts", "pulumi.sh"), [...args, "--non-interactive"], opts);
}

/** The local images by name (.local/images.json, written by scripts/build-images.sh). */
export function localImages(): Record<string, string> {
    return JSON.parse(readFileSync(path.join(ROOT, ".local", "images.json"), "utf8")).images;
}

/** The registry of scripts/local-hosts.sh that serves the same images to a login only, and its login. */
export function privateRegistry(): { server: string; username: string; password: string } {
    const dir = path.join(ROOT, ".local", "registry-private");
    const login = JSON.parse(readFileSync(path.join(dir, "login.json"), "utf8")) as { server: string; username: string; passwordFile: string };
    return { server: login.server, username: login.username, password: readFileSync(path.join(dir, login.passwordFile), "utf8").trim() };
}

/** `image` (one of the open registry's, 127.0.0.1:5001) as the registry that needs a login serves it. */
export function behindLogin(image: string): string {
    return `${privateRegistry().server}${image.slice(image.indexOf("/"))}`;
}

/**
 * Installs the host agent on the local host the way every host gets it, from its image (built
 * from the working copy by scripts/build-images.sh): `docker run --rm -v ROOT/bin:/out IMAGE
 * install /out/NAME`, run over SSH as the deploy user. Then runs `host-up` with the host
 * document on stdin, and returns the agent's path.
 */
export async function installTool(name: string, host: TestHost = localHost()): Promise<string> {
    const { exec } = await import("../components/remote/ssh");
    const tool = `/opt/coop/bin/${name}`;
    const t = host.target;
    const images = localImages();
    const installed = await exec(t, `mkdir -p /opt/coop/bin /opt/coop/coops && docker run --rm -v /opt/coop/bin:/out ${images["coop-agent"]} install /out/${name}`);
    if (installed.code !== 0) {
        throw new Error(`installing the agent failed: ${installed.stderr}`);
    }
    const doc = { network: "coop", proxy: { image: images["kamal-proxy"], bindAddress: host.bindAddress, httpPort: 8080, httpsPort: 8443 } };
    const r = await exec(t, `${tool} host-up`, { stdin: JSON.stringify(doc) });
    if (r.code !== 0) {
        throw new Error(`host-up failed: ${r.stderr}`);
    }
    return tool;
}

/**
 * GET through the local host's proxy (127.0.0.1:8080) for the site `host`. A connection that
 * fails resolves with status 0, so callers assert on the status either way.
 */
export function proxyGet(pathname: string, host: string, timeoutMs = 10000): Promise<{ status: number; body: string }> {
    return getVia("127.0.0.1:8080", pathname, host, timeoutMs);
}

/** GET through the suite host's proxy for the site `host`; status 0 when the connection failed. */
export function suiteGet(pathname: string, host: string, timeoutMs = 10000): Promise<{ status: number; body: string }> {
    return getVia(suiteHost().proxy, pathname, host, timeoutMs);
}

/** GET through the proxy at `address` (HOST:PORT) for the site `host`; status 0 when the connection failed. */
export function getVia(address: string, pathname: string, host: string, timeoutMs = 10000): Promise<{ status: number; body: string }> {
    const [h, p] = address.split(":");
    return new Promise((resolve) => {
        const req = request({ host: h, port: Number(p), path: pathname, headers: { host }, timeout: timeoutMs, agent: false }, (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
            res.on("error", () => resolve({ status: 0, body }));
        });
        req.on("error", () => resolve({ status: 0, body: "" }));
        req.on("timeout", () => req.destroy());
        req.end();
    });
}

/** Where the local S3 server keeps `coop`'s database dumps of `stack` (bucket/prefix/coop), and the dumps there now. */
export function storedBackups(stack: string, coop: string): { dir: string; dumps: () => string[] } {
    const dir = path.join(ROOT, ".local", "s3", "root", "coop-local-backups", stack, coop);
    return { dir, dumps: () => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".dump")) : []) };
}

/** A process of this machine, as /proc tells it. */
export interface Proc {
    pid: number;
    comm: string;
    cmdline: string;
}

/** The processes (zombies left out: they run no more) whose environment holds `entry` (NAME=VALUE). */
export function processesWith(entry: string): Proc[] {
    const out: Proc[] = [];
    for (const d of readdirSync("/proc")) {
        if (!/^\d+$/.test(d)) continue;
        try {
            if (!readFileSync(`/proc/${d}/environ`, "latin1").split("\0").includes(entry)) continue;
            const stat = readFileSync(`/proc/${d}/stat`, "utf8");
            if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
            out.push({ pid: Number(d), comm: readFileSync(`/proc/${d}/comm`, "utf8").trim(), cmdline: readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ").trim() });
        } catch {
            // gone, or not ours to read
        }
    }
    return out;
}

/**
 * A scratch Pulumi project `name` in a temporary directory: `program` as its index.js (plain
 * JavaScript, the project's node_modules), a file backend beside it, and its stack `dev` made
 * through scripts/pulumi.sh. `env` is the environment its commands run with.
 */
export function scratchProject(name: string, program: string, passphrase: string): { work: string; project: string; env: (extra?: NodeJS.ProcessEnv) => NodeJS.ProcessEnv } {
    const work = mkdtempSync(path.join(tmpdir(), `coop-${name}-`));
    const project = path.join(work, "project");
    mkdirSync(project);
    mkdirSync(path.join(work, "state"));
    writeFileSync(path.join(project, "Pulumi.yaml"), `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n`);
    writeFileSync(path.join(project, "package.json"), `{"name":"${name}","private":true}\n`);
    writeFileSync(path.join(project, "index.js"), program);
    symlinkSync(path.join(ROOT, "node_modules"), path.join(project, "node_modules"));
    const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
        ...process.env,
        PULUMI_BACKEND_URL: `file://${path.join(work, "state")}`,
        PULUMI_CONFIG_PASSPHRASE: passphrase,
        ...extra,
    });
    runOk(path.join(ROOT, "scripts", "pulumi.sh"), ["--cwd", project, "stack", "init", "dev", "--non-interactive"], { env: env() });
    return { work, project, env };
}

/**
 * Everywhere a secret of the suite's stack must never appear in plaintext, by name: the CLI's
 * output (`logs`), the stack's state, history and file, the host's logs and process arguments,
 * and every JSON and log file of the file backend and of .local. Two places are the secret's own
 * and are left out: a namespaced host's engine data (a container's env, as /var/lib/docker on a
 * droplet) and its registry logins (ROOT/registries, 0600).
 */
export async function secretPlaces(logs: string[], onHost: (command: string) => Promise<string>): Promise<Record<string, string>> {
    const places: Record<string, string> = {
        "pulumi output": logs.join("\n"),
        "stack state": pulumi(["stack", "export", "--stack", SUITE_STACK]).stdout,
        "stack history": pulumi(["stack", "history", "--stack", SUITE_STACK, "--json"]).stdout,
        "stack file": readFileSync(SUITE_STACK_FILE, "utf8"),
        "host logs": await onHost("cat /opt/coop/coops/*/releases.log; docker logs coop-proxy 2>&1; for c in $(docker ps -aq); do docker logs $c 2>&1; done"),
        "process arguments": await onHost("ps -eo args"),
    };
    for (const dir of [path.join(ROOT, ".pulumi-state"), path.join(ROOT, ".local")]) {
        for (const f of readdirSync(dir, { recursive: true }) as string[]) {
            if (/^netns\/[^/]+\/(docker|run|root\/registries)\//.test(f)) continue;
            if (f.endsWith(".json") || f.endsWith(".log")) places[path.join(dir, f)] = readFileSync(path.join(dir, f), "utf8");
        }
    }
    return places;
}

/**
 * A TCP relay on 127.0.0.1 to `address` (HOST:PORT), one upstream connection per client
 * connection, so that keep-alive connections stay what they are: bench/loadgen sends only to
 * loopback, and the suite's host answers on its own address. It runs as a process of its own
 * (socat), so that a test blocked in a synchronous CLI run does not stall the traffic.
 */
export async function loopbackRelay(address: string): Promise<{ port: number; stop: () => Promise<void> }> {
    const { createServer } = await import("node:net");
    const { spawn } = await import("node:child_process");
    const port = await new Promise<number>((resolve, reject) => {
        const s = createServer();
        s.on("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const p = (s.address() as { port: number }).port;
            s.close(() => resolve(p));
        });
    });
    const child = spawn("socat", [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, `TCP:${address}`], { stdio: ["ignore", "ignore", "inherit"] });
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    await within(10, `the relay on 127.0.0.1:${port} to ${address}`, async () => (await getVia(`127.0.0.1:${port}`, "/", "relay.invalid", 2000)).status !== 0);
    return {
        port,
        stop: async () => {
            child.kill("SIGTERM");
            await exited;
        },
    };
}
