/**
 * The local stack's machine facts. What `scripts/local-hosts.sh up` makes on a machine (its hosts
 * with their host keys, the deploy key, the images it built) differs on every machine, so it stays
 * out of the tracked Pulumi.local.yaml: the program reads it from .local/, as a cloud stack reads
 * its hosts from DigitalOcean. A value the stack file does set wins.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { SECRET_PRESENT, type ParseContext, secretFacts } from "./index";
import { machineFile } from "./machineFile";

export { LOCAL_MACHINE_FILE, machineFile } from "./machineFile";

/** The load balancer in front of the hosts (haproxy, started by scripts/netns-hosts.sh), as the program drives it. */
export interface LocalBalancerSpec {
    /** Where it listens, host:port. */
    address: string;
    /** Its admin socket (absolute). */
    adminSocket: string;
    /** The backend whose servers are the hosts, one server named after each host. */
    backend: string;
    /** Where the hosts it sends traffic to are remembered (absolute), one name a line. */
    serversFile: string;
}

/** What this machine's local hosts are. */
export interface LocalMachine {
    /** The hosts, as coop:hosts would list them. */
    hosts: unknown[];
    /** The deploy user's private key (OpenSSH). */
    deployKey: string;
    /** Images built here, by name (`kamal-proxy`, `coop-agent`, `demo:v1`, ...), pinned by digest. */
    images: Record<string, string>;
    /** The load balancer in front of the hosts, when there is one. */
    balancer?: LocalBalancerSpec;
}

/** The machine file's loadBalancer block with its paths made absolute; an error names the field. */
function balancerSpec(doc: unknown, file: string, dotLocal: string): LocalBalancerSpec | undefined {
    if (doc === undefined) return undefined;
    const o = (doc ?? {}) as Record<string, unknown>;
    for (const k of ["address", "adminSocket", "backend", "serversFile"]) {
        if (typeof o[k] !== "string" || o[k] === "") throw new Error(`${file}: loadBalancer.${k} must be a non-empty string`);
    }
    const abs = (p: unknown) => path.resolve(dotLocal, p as string);
    return { address: o.address as string, adminSocket: abs(o.adminSocket), backend: o.backend as string, serversFile: abs(o.serversFile) };
}

/** Reads the stack's machine file and what it points at; undefined when its hosts were never set up here. */
export function readLocalMachine(root: string, stack = "local"): LocalMachine | undefined {
    const name = machineFile(stack);
    let doc: { hosts?: unknown; deployKeyFile?: unknown; imagesFile?: unknown; loadBalancer?: unknown };
    try {
        doc = JSON.parse(readFileSync(path.join(root, name), "utf8"));
    } catch {
        return undefined;
    }
    const dotLocal = path.join(root, ".local");
    const file = (p: unknown) => (typeof p === "string" ? readFileSync(path.resolve(dotLocal, p), "utf8") : "");
    const images = (JSON.parse(file(doc.imagesFile) || "{}") as { images?: Record<string, string> }).images ?? {};
    return {
        hosts: Array.isArray(doc.hosts) ? doc.hosts : [],
        deployKey: file(doc.deployKeyFile),
        images,
        balancer: balancerSpec(doc.loadBalancer, name, dotLocal),
    };
}

/**
 * The local stack's raw config with the machine's facts where the stack file leaves them out: the
 * hosts, the deploy key (a secret: its facts for the parser, its text for the program), the proxy's,
 * the agent's and the backup tools' images, and the demo app's v1 for a co-op without an image. Pure.
 */
export function withLocalMachine(
    raw: Record<string, unknown>,
    secretKeys: string[],
    ctx: ParseContext,
    machine: LocalMachine | undefined,
): { raw: Record<string, unknown>; secretKeys: string[]; ctx: ParseContext; deployKey?: string; balancer?: LocalBalancerSpec } {
    if (raw.environment !== "local" || machine === undefined) {
        return { raw, secretKeys, ctx };
    }
    const balancer = machine.balancer;
    const out: Record<string, unknown> = { ...raw };
    out.hosts ??= machine.hosts;
    out.agent ??= machine.images["coop-agent"];
    const proxy = raw.proxy;
    if (proxy !== null && typeof proxy === "object" && !Array.isArray(proxy) && !("image" in proxy) && machine.images["kamal-proxy"]) {
        out.proxy = { ...proxy, image: machine.images["kamal-proxy"] };
    }
    // coop:backups: {} takes this machine's backup tools image (scripts/build-images.sh built it).
    const backups = raw.backups;
    if (backups !== null && typeof backups === "object" && !Array.isArray(backups) && !("image" in backups) && machine.images["coop-pgtools"]) {
        out.backups = { ...backups, image: machine.images["coop-pgtools"] };
    }
    if (Array.isArray(raw.coops) && machine.images["demo:v1"]) {
        out.coops = raw.coops.map((c) => (c !== null && typeof c === "object" && !Array.isArray(c) && !("image" in c) ? { ...c, image: machine.images["demo:v1"] } : c));
    }
    if (raw.sshPrivateKey !== undefined || machine.deployKey === "") {
        return { raw: out, secretKeys, ctx, balancer };
    }
    out.sshPrivateKey = SECRET_PRESENT;
    return {
        raw: out,
        secretKeys: [...secretKeys, "sshPrivateKey"],
        ctx: { ...ctx, secretFacts: { ...ctx.secretFacts, ...secretFacts({ sshPrivateKey: machine.deployKey }) } },
        deployKey: machine.deployKey,
        balancer,
    };
}
