// Shared by the releases and rollback commands: arguments, the stack through the Automation API.
// Types only at the top: the Automation API takes a second to load, and rollback's fast path
// (readStack, then the switch) does not need it.
import type { ConfigMap, Stack, UpdateSummary } from "@pulumi/pulumi/automation";
import * as path from "path";
import { HostSpec, StackConfig, decodeRawConfig, parseStackConfig } from "../components/config";
import { readLocalMachine, withLocalMachine } from "../components/config/localMachine";
import { SshTarget } from "../components/remote/ssh";
import { ROOT, startStackRead, useLocalPassphrase } from "./stackRead";

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

/** What rollback reads before it acts: the history, the config (secrets decrypted) and the outputs. */
export interface StackSnapshot {
    history: UpdateSummary[];
    config: ConfigMap;
    outputs: Record<string, { value: unknown }>;
}

/**
 * The three reads at once, straight from the CLI: the Automation API would first check the CLI's
 * version and select the stack, one process after the other, and at night every second counts.
 * The history is read without secrets (rollback needs only the digests from it).
 */
export async function readStack(name: string): Promise<StackSnapshot> {
    try {
        const { history, config, outputs } = await startStackRead(name);
        const out = JSON.parse(outputs) as Record<string, unknown>;
        return {
            history: JSON.parse(history) as UpdateSummary[],
            config: withMachine(JSON.parse(config) as ConfigMap, name),
            outputs: Object.fromEntries(Object.entries(out).map(([k, value]) => [k, { value }])),
        };
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

/**
 * The stack's hosts: from its outputs (a cloud stack's droplets appear only there), else from
 * the config (the local stack lists them; a stack last deployed before the output existed).
 */
export function stackHosts(cfg: StackConfig, outputs: Record<string, { value: unknown }>): HostSpec[] {
    const fromOutputs = outputs.hosts?.value;
    return Array.isArray(fromOutputs) && fromOutputs.length > 0 ? (fromOutputs as HostSpec[]) : cfg.hosts;
}

/** How to reach one of the stack's hosts as its deploy user, with the pinned host key. */
export function sshTarget(cfg: StackConfig, all: ConfigMap, host: HostSpec): SshTarget {
    const privateKey = all["coop:sshPrivateKey"]?.value ?? fail("coop:sshPrivateKey is not set");
    return { host: host.address, port: host.port, user: cfg.sshUser, privateKey, hostKey: host.hostKey, connectTimeoutMs: 15000 };
}
