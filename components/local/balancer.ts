/**
 * LocalBalancer: what the DigitalOcean load balancer (../digitalocean/edge.ts) is to a cloud
 * stack, for a local stack whose hosts have a load balancer in front (haproxy, started by
 * scripts/netns-hosts.sh with one server per host, each in maintenance until the stack says).
 * Its input is the list of the stack's hosts; it is created and updated after every co-op's
 * release on every host, so a new host gets traffic only once it serves every co-op, and a host
 * the stack drops is taken out in this update, before the deletes (its co-ops' and its own) that
 * Pulumi runs after every other step. A dynamic resource: its code is serialized into the state,
 * so it imports nothing and requires Node's modules where it runs.
 */
import * as pulumi from "@pulumi/pulumi";

export interface LocalBalancerArgs {
    /** haproxy's admin socket (absolute). */
    adminSocket: string;
    /** The backend whose servers are the hosts, named after them. */
    backend: string;
    /** Where the hosts it sends traffic to are kept for a restarted haproxy, one name a line. */
    serversFile: string;
    /** The stack's hosts, by name: these get traffic, every other server of the backend none. */
    servers: pulumi.Input<string[]>;
}

interface BalancerState {
    adminSocket: string;
    backend: string;
    serversFile: string;
    servers: string[];
}

/** How long a host set ready may take to pass its health checks. */
const HEALTHY_WITHIN_MS = 30000;

/** One admin command (or several, `;`-separated) over the socket; resolves with the answer. */
function admin(socket: string, command: string): Promise<string> {
    const net = require("node:net") as typeof import("node:net");
    return new Promise((resolve, reject) => {
        let out = "";
        const c = net.connect({ path: socket }, () => c.end(`${command}\n`));
        c.setEncoding("utf8");
        c.on("data", (d: string) => (out += d));
        c.on("end", () => resolve(out));
        c.on("error", (e: Error) => reject(new Error(`haproxy's admin socket ${socket}: ${e.message} (is it running? scripts/netns-hosts.sh status)`)));
    });
}

/** The backend's servers with their status as `show stat` gives it (UP, DOWN, MAINT, "UP 1/2", ...). */
async function serverStates(s: BalancerState): Promise<{ name: string; up: boolean }[]> {
    const out = await admin(s.adminSocket, "show stat");
    const [header, ...lines] = out.split("\n").filter((l) => l.trim() !== "");
    const cols = header.replace(/^# /, "").split(",");
    const [px, sv, st] = ["pxname", "svname", "status"].map((c) => cols.indexOf(c));
    const rows = lines.map((l) => l.split(",")).filter((f) => f[px] === s.backend && f[sv] !== "FRONTEND" && f[sv] !== "BACKEND");
    if (rows.length === 0) throw new Error(`haproxy has no backend ${s.backend} with servers`);
    return rows.map((f) => ({ name: f[sv], up: f[st] === "UP" }));
}

/**
 * Sends traffic to `s.servers` and to no other server of the backend, remembers them in the
 * servers file, and waits until each passes its health check. An error names the host.
 */
async function apply(s: BalancerState): Promise<void> {
    const fs = require("node:fs") as typeof import("node:fs");
    const known = await serverStates(s);
    const names = known.map((k) => k.name);
    for (const host of s.servers) {
        if (!names.includes(host)) {
            throw new Error(`host ${host}: haproxy's backend ${s.backend} has no server for it (it has ${names.join(", ")}; scripts/netns-hosts.sh up makes one per host)`);
        }
    }
    fs.writeFileSync(`${s.serversFile}.tmp`, s.servers.map((n) => `${n}\n`).join(""));
    fs.renameSync(`${s.serversFile}.tmp`, s.serversFile);
    const commands = names.map((n) => `set server ${s.backend}/${n} state ${s.servers.includes(n) ? "ready" : "maint"}`);
    const answer = (await admin(s.adminSocket, commands.join(";"))).trim();
    if (answer !== "") throw new Error(`haproxy refused: ${commands.join("; ")}: ${answer}`);
    const deadline = Date.now() + HEALTHY_WITHIN_MS;
    for (;;) {
        const down = (await serverStates(s)).filter((k) => s.servers.includes(k.name) && !k.up).map((k) => k.name);
        if (down.length === 0) return;
        if (Date.now() > deadline) {
            throw new Error(`host ${down.join(", host ")}: fails haproxy's health check (its proxy's HTTP port) ${HEALTHY_WITHIN_MS / 1000} s after being set ready`);
        }
        await new Promise((r) => setTimeout(r, 250));
    }
}

/** The provider, exported so a test can run it as the engine does. */
export const provider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: BalancerState) {
        await apply(inputs);
        return { id: inputs.backend, outs: inputs };
    },
    async diff(_id: string, olds: BalancerState, news: BalancerState) {
        const changes =
            JSON.stringify([olds.adminSocket, olds.backend, olds.serversFile, olds.servers]) !== JSON.stringify([news.adminSocket, news.backend, news.serversFile, news.servers]);
        return { changes, replaces: [], deleteBeforeReplace: false };
    },
    async update(_id: string, _olds: BalancerState, news: BalancerState) {
        await apply(news);
        return { outs: news };
    },
    async delete(_id: string, olds: BalancerState) {
        // Gone with the stack: no server gets traffic. A balancer that no longer runs has none to send.
        await apply({ ...olds, servers: [] }).catch((e: Error) => {
            if (!/admin socket/.test(e.message)) throw e;
        });
    },
};

export class LocalBalancer extends pulumi.dynamic.Resource {
    /** The hosts it sends traffic to. */
    declare public readonly servers: pulumi.Output<string[]>;

    constructor(name: string, args: LocalBalancerArgs, opts?: pulumi.CustomResourceOptions) {
        super(provider, name, { ...args }, opts, "coop", "LocalBalancer");
    }
}
