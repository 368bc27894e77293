/**
 * The local stack's machine facts. What `scripts/local-hosts.sh up` makes on a machine (its hosts
 * with their host keys, the deploy key, the images it built) differs on every machine, so it stays
 * out of the tracked Pulumi.local.yaml: the program reads it from .local/, as a cloud stack reads
 * its hosts from DigitalOcean. A value the stack file does set wins.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { SECRET_PRESENT, type ParseContext, secretFacts } from "./index";

/** Written by scripts/local-hosts.sh, relative to the repository. */
export const LOCAL_MACHINE_FILE = path.join(".local", "machine.json");

/** What this machine's local hosts are. */
export interface LocalMachine {
    /** The hosts, as coop:hosts would list them. */
    hosts: unknown[];
    /** The deploy user's private key (OpenSSH). */
    deployKey: string;
    /** Images built here, by name (`kamal-proxy`, `coop-agent`, `demo:v1`, ...), pinned by digest. */
    images: Record<string, string>;
}

/** Reads .local/machine.json and what it points at; undefined when the local hosts were never set up here. */
export function readLocalMachine(root: string): LocalMachine | undefined {
    let doc: { hosts?: unknown; deployKeyFile?: unknown; imagesFile?: unknown };
    try {
        doc = JSON.parse(readFileSync(path.join(root, LOCAL_MACHINE_FILE), "utf8"));
    } catch {
        return undefined;
    }
    const file = (p: unknown) => (typeof p === "string" ? readFileSync(path.resolve(root, ".local", p), "utf8") : "");
    const images = (JSON.parse(file(doc.imagesFile) || "{}") as { images?: Record<string, string> }).images ?? {};
    return { hosts: Array.isArray(doc.hosts) ? doc.hosts : [], deployKey: file(doc.deployKeyFile), images };
}

/**
 * The local stack's raw config with the machine's facts where the stack file leaves them out: the
 * hosts, the deploy key (a secret: its facts for the parser, its text for the program), the proxy's
 * and the agent's images, and the demo app's v1 for a co-op without an image. Pure.
 */
export function withLocalMachine(
    raw: Record<string, unknown>,
    secretKeys: string[],
    ctx: ParseContext,
    machine: LocalMachine | undefined,
): { raw: Record<string, unknown>; secretKeys: string[]; ctx: ParseContext; deployKey?: string } {
    if (raw.environment !== "local" || machine === undefined) {
        return { raw, secretKeys, ctx };
    }
    const out: Record<string, unknown> = { ...raw };
    out.hosts ??= machine.hosts;
    out.agent ??= machine.images["coop-agent"];
    const proxy = raw.proxy;
    if (proxy !== null && typeof proxy === "object" && !Array.isArray(proxy) && !("image" in proxy) && machine.images["kamal-proxy"]) {
        out.proxy = { ...proxy, image: machine.images["kamal-proxy"] };
    }
    if (Array.isArray(raw.coops) && machine.images["demo:v1"]) {
        out.coops = raw.coops.map((c) => (c !== null && typeof c === "object" && !Array.isArray(c) && !("image" in c) ? { ...c, image: machine.images["demo:v1"] } : c));
    }
    if (raw.sshPrivateKey !== undefined || machine.deployKey === "") {
        return { raw: out, secretKeys, ctx };
    }
    out.sshPrivateKey = SECRET_PRESENT;
    return {
        raw: out,
        secretKeys: [...secretKeys, "sshPrivateKey"],
        ctx: { ...ctx, secretFacts: { ...ctx.secretFacts, ...secretFacts({ sshPrivateKey: machine.deployKey }) } },
        deployKey: machine.deployKey,
    };
}
