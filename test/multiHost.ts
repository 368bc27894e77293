// Shared by the multi-host tests and bench:rolling: the `multi` stack on the hosts that
// scripts/netns-hosts.sh runs in namespaces of their own, behind haproxy.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { SshTarget, exec } from "../components/remote/ssh";
import { MachineHost, ROOT, RunResult, getVia, netnsTarget, pulumi, run, runOk } from "./support";

export const MULTI_STACK = "multi";
export const MULTI_STACK_FILE = path.join(ROOT, "Pulumi.multi.yaml");
const NETNS = path.join(ROOT, "scripts", "netns-hosts.sh");

/** Why the multi-host scenarios cannot run here, or undefined when they can. */
export function multiHostSkipReason(): string | undefined {
    if (process.getuid?.() !== 0) return "needs root (network namespaces, sshd and dockerd per host)";
    if (run("ip", ["netns", "list"]).status !== 0) return "`ip netns` is not available here (iproute2 with network namespace support)";
    const ns = run("unshare", ["--net", "--mount", "true"]);
    if (ns.status !== 0) return `this machine cannot make network and mount namespaces (unshare --net --mount: ${ns.stderr.trim()})`;
    if (!existsSync(path.join(ROOT, ".local", "images.json"))) return "no .local/images.json: run scripts/local-hosts.sh up";
    return undefined;
}

/** Starts the namespaced hosts and haproxy (idempotent). */
export function multiHostsUp(): void {
    runOk(NETNS, ["up"]);
}

/** Runs netns-hosts.sh with `args` (e.g. `exec 2 docker ps`). */
export function netns(args: string[]): RunResult {
    return run(NETNS, args);
}

/** .local/machine.multi.json: the hosts and the load balancer as the program reads them. */
export function multiMachine(): { hosts: MachineHost[]; loadBalancer: { address: string; adminSocket: string } } {
    return JSON.parse(readFileSync(path.join(ROOT, ".local", "machine.multi.json"), "utf8"));
}

/** Host `name` as the deploy user reaches it over SSH, its host key pinned. */
export function multiTarget(name: string): SshTarget {
    const h = multiMachine().hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in .local/machine.multi.json`);
    return netnsTarget(h);
}

/** A command on host `name` over SSH; rejects unless it exits 0. */
export async function onMultiHost(name: string, command: string): Promise<string> {
    const r = await exec(multiTarget(name), command);
    if (r.code !== 0) throw new Error(`${name}: ${command}: ${r.stderr}`);
    return r.stdout.trim();
}

/** `pulumi ARGS --stack multi` (the local passphrase comes from scripts/pulumi.sh). */
export function multiPulumi(args: string[], opts: Parameters<typeof run>[2] = {}): RunResult {
    return pulumi([...args, "--stack", MULTI_STACK], opts);
}

/** `pulumi up` on the multi stack; its result, whatever the exit status. */
export function multiUp(...extra: string[]): RunResult {
    return multiPulumi(["up", "--yes", "--skip-preview", ...extra]);
}

/** Sets co-op `index`'s image in Pulumi.multi.yaml (the caller restores the file). */
export function setCoopImage(index: number, image: string): void {
    runOk(path.join(ROOT, "scripts", "pulumi.sh"), ["config", "set", "--stack", MULTI_STACK, "--path", `coop:coops[${index}].image`, image, "--non-interactive"]);
}

/** Keeps Pulumi.multi.yaml as committed: returns the function that puts it back. */
export function keepStackFile(): () => void {
    const text = readFileSync(MULTI_STACK_FILE, "utf8");
    return () => writeFileSync(MULTI_STACK_FILE, text);
}

/** The version a host's own proxy serves for `domain` (its address, port 8080), or undefined. */
export async function versionOn(address: string, domain: string): Promise<string | undefined> {
    const r = await getVia(`${address}:8080`, "/state", domain);
    return r.status === 200 ? (JSON.parse(r.body) as { version: string }).version : undefined;
}

/** haproxy's view of each host: UP, DOWN, MAINT (from `show stat` on its admin socket). */
export function balancerStates(): Record<string, string> {
    const sock = multiMachine().loadBalancer.adminSocket;
    const out = runOk("socat", ["-", `UNIX-CONNECT:${path.resolve(ROOT, ".local", sock)}`], { input: "show stat\n" }).stdout;
    const rows = out.split("\n").filter((l) => l.startsWith("coop,") && !/^coop,(FRONTEND|BACKEND),/.test(l));
    return Object.fromEntries(rows.map((l) => l.split(",")).map((f) => [f[1], f[17]]));
}

/** A `pulumi up` running in the background: `done` resolves with its result; `result` is it once ended; `printed` is what it printed so far. */
export interface BackgroundUp {
    done: Promise<RunResult>;
    result: () => RunResult | undefined;
    printed: () => string;
}

/** `pulumi up` on the multi stack in the background. */
export function multiUpAsync(...extra: string[]): BackgroundUp {
    const { spawn } = require("node:child_process") as typeof import("node:child_process");
    const p = spawn(path.join(ROOT, "scripts", "pulumi.sh"), ["up", "--yes", "--skip-preview", "--stack", MULTI_STACK, "--non-interactive", ...extra], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    let ended: RunResult | undefined;
    p.stdout.on("data", (c) => (stdout += c));
    p.stderr.on("data", (c) => (stderr += c));
    const done = new Promise<RunResult>((resolve) => p.on("close", (status) => resolve((ended = { status, stdout, stderr }))));
    return { done, result: () => ended, printed: () => stdout + stderr };
}
