// Shared by the commands that read a stack (releases, rollback, status, logs): arguments, the
// stack as its live release left it, the stack through the Automation API. Types only at the top:
// the Automation API takes a second to load, and rollback's fast path (readStack, then the
// switch) does not need it.
import type { ConfigMap, Stack, UpdateSummary } from "@pulumi/pulumi/automation";
import { createHash } from "crypto";
import * as path from "path";
import type { Client } from "ssh2";
import { HostSpec, StackConfig, decodeRawConfig, parseStackConfig } from "../components/config";
import { sshUserField } from "../components/config/schema";
import { agentLink } from "../components/release";
import { liveUpdate } from "../components/releases";
import { readLocalMachine, withLocalMachine } from "../components/config/localMachine";
import { ExecResult, SshTarget, connect, execOn } from "../components/remote/ssh";
import { PAGE, ROOT, startStackRead, useLocalPassphrase } from "./stackRead";

export { ROOT, cli } from "./stackRead";

/** `--name value` and `--flag` arguments; anything else is an error that names it. */
export function parseArgs(argv: string[], spec: Record<string, "string" | "boolean">, usage: string): Record<string, string | boolean> {
    const out: Record<string, string | boolean> = {};
    for (let i = 0; i < argv.length; i++) {
        const name = argv[i].replace(/^--/, "");
        if (!argv[i].startsWith("--") || !(name in spec)) {
            fail(`unknown argument ${argv[i]}\n${usage}`);
        }
        if (spec[name] === "boolean") {
            out[name] = true;
        } else {
            if (i + 1 >= argv.length) fail(`--${name} needs a value\n${usage}`);
            out[name] = argv[++i];
        }
    }
    return out;
}

export function fail(message: string): never {
    console.error(`${path.basename(process.argv[1], ".js")}: ${message}`);
    process.exit(1);
}

/** Selects the stack in this project; the local stack gets its documented passphrase. */
export async function openStack(name: string): Promise<Stack> {
    useLocalPassphrase(name);
    const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
    try {
        return await LocalWorkspace.selectStack({ stackName: name, workDir: ROOT });
    } catch (e) {
        fail(`--stack ${name}: ${(e as Error).message.split("\n").find((l) => /error/i.test(l)) ?? "cannot be selected"}`);
    }
}

/**
 * A deployed stack as the commands that reach its hosts see it: what the live release ran with,
 * and how to reach each host and its agent.
 */
export interface DeployedStack {
    /** The update history, newest first, as the CLI prints it: the whole of it or its newest page. */
    history: UpdateSummary[];
    /** The history is whole: every update is in it, so that releases are numbered as `releases` numbers them. */
    whole: boolean;
    /**
     * The config of the live release (the last successful update), this machine's facts filled
     * in. A stack on this machine's hosts is read without secrets: its secret keys are present,
     * their values empty (the deploy key comes from the machine file).
     */
    config: ConfigMap;
    /** That config, validated by the program's parser. */
    cfg: StackConfig;
    /**
     * The live release's image per co-op, as the program deployed it: a local stack's co-op
     * without an image in its file runs the machine's demo image, which the history does not hold.
     */
    images: Record<string, string>;
    /** The hosts: a cloud stack's from its outputs (only there), any other's from the config. */
    hosts: HostSpec[];
    /** The agent to run on a host: its current one (every host has the same path). */
    agent: string;
    /** How to reach one of the hosts as its deploy user, with the pinned host key. */
    target(host: HostSpec): SshTarget;
    /**
     * Runs a command (rendered for a POSIX shell) on one of the hosts, over the one connection this
     * process keeps to it ({@link closeConnections} ends them).
     */
    run(host: HostSpec, command: string, opts?: { stdin?: string; timeoutMs?: number }): Promise<ExecResult>;
}

/** How long the commands keep trying a host that refuses or does not answer. */
const CONNECT_TIMEOUT_MS = 15000;

/** This process's SSH connections, one per target: a command's calls to a host share it. */
const connections = new Map<string, Promise<Client>>();

/** Connects to `t` unless a connection to it is open or opening; one that fails is forgotten. */
function connection(t: SshTarget): Promise<Client> {
    const key = createHash("sha256")
        .update(JSON.stringify([t.user, t.host, t.port, t.hostKey, t.privateKey]))
        .digest("hex");
    let client = connections.get(key);
    if (!client) {
        const opening = connect(t);
        // Closed or failed: forgotten, so that the next call connects again.
        opening.then(
            (c) => c.once("close", () => connections.get(key) === opening && connections.delete(key)),
            () => connections.get(key) === opening && connections.delete(key),
        );
        connections.set(key, opening);
        client = opening;
    }
    return client;
}

/** Ends this process's SSH connections (it cannot exit while one is open). */
export function closeConnections(): void {
    for (const client of connections.values())
        client.then(
            (c) => c.end(),
            () => undefined,
        );
    connections.clear();
}

/**
 * A stack on this machine's hosts names them and the deploy key in its machine file: connect to
 * them now, as the default deploy user, while the CLI reads the history. The commands' calls use
 * these connections when the live release's config agrees (the same user, host, key).
 */
function connectEarly(name: string): void {
    const machine = readLocalMachine(ROOT, name);
    if (!machine?.deployKey) return;
    const user = sshUserField.parse(undefined);
    for (const h of machine.hosts as HostSpec[]) {
        connection({ host: h.address, port: h.port, user, privateKey: machine.deployKey, hostKey: h.hostKey, connectTimeoutMs: CONNECT_TIMEOUT_MS }).catch(() => undefined);
    }
}

/**
 * The stack as its live release left it, in as few CLI runs as it takes (scripts/stackRead.ts):
 * the commands that reach the hosts act on what runs there, and a rollback at night should not
 * wait for more. The newest page of the history unless `whole` (or no update in the page
 * succeeded). Fails, naming the stack, when nothing was ever deployed.
 */
export async function readStack(name: string, { whole = false }: { whole?: boolean } = {}): Promise<DeployedStack> {
    const read = startStackRead(name, { whole });
    connectEarly(name);
    let raw;
    try {
        raw = await read;
    } catch (e) {
        fail(`--stack ${name}: ${(e as Error).message}`);
    }
    const history = JSON.parse(raw.history) as UpdateSummary[];
    const complete = whole || history.length < PAGE;
    const live = liveUpdate(history);
    if (!live && !complete) return readStack(name, { whole: true });
    if (!live) fail(`--stack ${name}: no successful update in its history: nothing is deployed (pulumi up deploys it)`);
    const fromHistory: ConfigMap = Object.fromEntries(Object.entries(live.config ?? {}).map(([k, v]) => [k, { value: v.value ?? "", secret: v.secret }]));
    const config = withMachine(fromHistory, name);
    const cfg = stackConfig(config);
    const outputs = raw.outputs ? (JSON.parse(raw.outputs) as Record<string, unknown>) : {};
    const fromOutputs = outputs.hosts;
    return {
        history,
        whole: complete,
        config,
        cfg,
        images: Object.fromEntries(cfg.coops.map((c) => [c.id, c.image])),
        hosts: Array.isArray(fromOutputs) && fromOutputs.length > 0 ? (fromOutputs as HostSpec[]) : cfg.hosts,
        agent: agentLink(cfg.hostRoot),
        target: (host) => sshTarget(cfg, config, host),
        run: async (host, command, opts) => {
            const t = sshTarget(cfg, config, host);
            return execOn(await connection(t), t, command, opts);
        },
    };
}

/**
 * The stack's whole update history, alone: without secrets, outputs or the live config's parse
 * (what numbering the updates needs, once the hosts were reached with readStack's page).
 */
export async function readHistory(name: string): Promise<UpdateSummary[]> {
    try {
        return JSON.parse((await startStackRead(name, { whole: true, reach: false })).history) as UpdateSummary[];
    } catch (e) {
        fail(`--stack ${name}: ${(e as Error).message}`);
    }
}

/**
 * A local stack's config with this machine's facts (.local/machine*.json: hosts, deploy key,
 * images) where the stack file leaves them out, as the program fills them (index.ts), so that the
 * scripts reach the hosts the stack deployed to. Other stacks' config is returned as it is.
 */
export function withMachine(all: ConfigMap, stack: string): ConfigMap {
    if (all["coop:environment"]?.value !== "local") return all;
    const machine = readLocalMachine(ROOT, stack);
    if (!machine) return all;
    const secrets = Object.keys(all).filter((k) => all[k].secret);
    const raw = decodeRawConfig(Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.value])), secrets);
    const local = withLocalMachine(raw, [], {}, machine);
    const out: ConfigMap = { ...all };
    for (const key of ["hosts", "agent", "proxy", "coops"]) {
        const v = local.raw[key];
        if (v !== undefined && v !== raw[key]) out[`coop:${key}`] = { value: typeof v === "string" ? v : JSON.stringify(v), secret: false };
    }
    if (local.deployKey !== undefined) out["coop:sshPrivateKey"] = { value: local.deployKey, secret: true };
    return out;
}

/** The co-ops in the stack's current config: id → {index in coop:coops, image}. */
export function currentCoops(all: ConfigMap): Record<string, { index: number; image: string }> {
    const raw = all["coop:coops"]?.value;
    const list: Array<{ id: string; image: string }> = raw ? JSON.parse(raw) : [];
    return Object.fromEntries(list.map((c, index) => [c.id, { index, image: c.image }]));
}

/** The stack's config, validated by the same parser the program uses (defaults included). */
export function stackConfig(all: ConfigMap): StackConfig {
    const values = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.value]));
    const secretKeys = Object.entries(all)
        .filter(([k, v]) => k.startsWith("coop:") && v.secret)
        .map(([k]) => k.slice("coop:".length));
    return parseStackConfig(decodeRawConfig(values, secretKeys), secretKeys);
}

/** How to reach one of the stack's hosts as its deploy user, with the pinned host key. */
function sshTarget(cfg: StackConfig, all: ConfigMap, host: HostSpec): SshTarget {
    const privateKey = all["coop:sshPrivateKey"]?.value || fail("coop:sshPrivateKey is not set");
    return { host: host.address, port: host.port, user: cfg.sshUser, privateKey, hostKey: host.hostKey, connectTimeoutMs: CONNECT_TIMEOUT_MS };
}
