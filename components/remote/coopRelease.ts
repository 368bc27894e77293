/**
 * {@link CoopRelease}: one co-op's release on one host, over one SSH connection: its env file
 * (0600) and config files by SFTP into ROOT/coops/ID (0700), then the host agent's `deploy` with
 * the release document on stdin; what the agent prints is the `stdout` output (its report, which
 * the Coop component checks against the report's schema). Deleting it runs the agent's `remove`.
 *
 * `pulumi refresh` reads what the host runs (the agent's `state`) into `live`; when that is not
 * the release of the last deploy (someone deployed by hand, the co-op was removed), refresh shows
 * `live` changed and the next `up` deploys the stack's release again. A deploy whose connection
 * is cut asks the host, once it answers again, what became of it (each deploy has an id the host
 * records) and says so.
 *
 * The provider's code is serialized into the state, so this module imports nothing but the SSH
 * client and the command builders (no schema library).
 *
 * A Pulumi dynamic resource (the command provider cannot be had here). With
 * `@pulumi/command` it would be a `remote.CopyToRemote` per file and a `remote.Command` with
 * `create: "<agent> deploy"`, `stdin: JSON.stringify(release)`, `triggers: [release, env, files]`.
 */
import * as pulumi from "@pulumi/pulumi";
import { randomUUID } from "crypto";
import { agentCommand, removeCommand } from "../coopCommands";
import type { BackupSection, ReleaseDocument } from "../release";
import type { ConnectionArgs } from "./command";
import { render } from "./shell";
import * as ssh from "./ssh";

export interface CoopReleaseArgs {
    /** How to reach the host, with its pinned host key. */
    connection: pulumi.Input<ConnectionArgs>;
    /** The host agent's path on the host. */
    agent: pulumi.Input<string>;
    /** The host's root directory (coop:hostRoot): files go to ROOT/coops/ID. */
    root: string;
    /** The release: what the agent deploys. Visible in the preview and to the policy pack. */
    release: pulumi.Input<ReleaseDocument>;
    /** The env file's text: pass a secret (it stays encrypted in state). */
    env: pulumi.Input<string>;
    /** Files mounted read-only under /config: name -> content. */
    configFiles: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /** Delete the co-op's data volume when this resource is deleted. */
    deleteData: pulumi.Input<boolean>;
    /** Give up on the deploy after this many ms. */
    timeoutMs: pulumi.Input<number>;
    /** The database backup before migrations: pass a secret (it holds the database URL and the store's keys); sent with the release on stdin. */
    backup?: pulumi.Input<BackupSection>;
}

/** What a co-op runs on the host, as the agent's `state` reports it (host/internal/deploy: Live). */
export interface LiveRelease {
    slot: string;
    image: string;
    releaseKey: string;
    running: boolean;
}

/** The agent's `state` report (host/internal/deploy: CoopState), the parts read here. */
export interface AgentState {
    live: LiveRelease | null;
    deploying: boolean;
    last: { deployId?: string; image: string; slot: string } | null;
}

export interface State {
    connection: ssh.SshTarget;
    agent: string;
    root: string;
    release: ReleaseDocument;
    env: string;
    configFiles: Record<string, string>;
    deleteData: boolean;
    timeoutMs: number;
    backup?: BackupSection;
    stdout?: string;
    /** What the host ran at the last deploy or refresh; null: nothing routed. */
    live?: LiveRelease | null;
}

const TAIL_LINES = 40;
const tail = (text: string): string => text.trimEnd().split("\n").slice(-TAIL_LINES).join("\n");
const INPUTS = ["connection", "agent", "root", "release", "env", "configFiles", "deleteData", "timeoutMs", "backup"] as const;
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** How long a deploy whose connection was cut waits for the host to answer and the deploy to end. */
const CUT_WAIT_MS = 10 * 60 * 1000;

/**
 * Reads the agent's `state` report. Checked by hand: this module's code is serialized into the
 * state, so it takes no schema library; the Coop component checks the deploy report with zod.
 */
export function parseAgentState(stdout: string): AgentState {
    const v: unknown = JSON.parse(stdout);
    const obj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
    const str = (x: unknown, what: string): string => {
        if (typeof x !== "string") throw new Error(`the agent's state report: ${what} is not a string`);
        return x;
    };
    if (!obj(v) || typeof v.deploying !== "boolean") throw new Error(`the agent's state report is not one: ${stdout.slice(0, 200)}`);
    let live: LiveRelease | null = null;
    if (v.live !== null) {
        if (!obj(v.live) || typeof v.live.running !== "boolean") throw new Error("the agent's state report: live is not a release");
        live = { slot: str(v.live.slot, "live.slot"), image: str(v.live.image, "live.image"), releaseKey: str(v.live.releaseKey, "live.releaseKey"), running: v.live.running };
    }
    let last: AgentState["last"] = null;
    if (v.last !== null) {
        if (!obj(v.last)) throw new Error("the agent's state report: last is not a record");
        last = {
            image: str(v.last.image, "last.image"),
            slot: str(v.last.slot, "last.slot"),
            ...(v.last.deployId !== undefined ? { deployId: str(v.last.deployId, "last.deployId") } : {}),
        };
    }
    return { live, deploying: v.deploying, last };
}

/** The agent's `state` of the co-op, over a connection of its own. */
async function agentState(s: State): Promise<AgentState> {
    const res = await ssh.exec(s.connection, render(agentCommand(s.agent, ["state", s.release.coop])));
    if (res.code !== 0) {
        throw new Error(`state of ${s.release.coop} on ${s.connection.host}:${s.connection.port} exited ${res.code}:\n${tail(res.stderr)}`);
    }
    return parseAgentState(res.stdout);
}

/** What the host runs when the deploy that printed `stdout` is what it runs (its report's slot, image, key). */
function liveOf(stdout: string | undefined): LiveRelease | undefined {
    try {
        const r: unknown = JSON.parse(stdout ?? "");
        if (typeof r === "object" && r !== null) {
            const { slot, image, releaseKey } = r as Record<string, unknown>;
            if (typeof slot === "string" && typeof image === "string" && typeof releaseKey === "string") return { slot, image, releaseKey, running: true };
        }
    } catch {
        // No report (an old state): nothing to compare with.
    }
    return undefined;
}

/** The host runs something other than the last deploy's release (a refresh read `live`). */
export function drifted(s: Pick<State, "live" | "stdout">): boolean {
    if (s.live === undefined) return false;
    const expected = liveOf(s.stdout);
    if (expected === undefined) return false;
    // Field by field: the state hands objects back with their keys in another order.
    return s.live === null || (["slot", "image", "releaseKey", "running"] as const).some((k) => s.live![k] !== expected[k]);
}

/** What became of deploy `deployId`, in words, as `state` says once the host is free of it. */
export function outcome(coop: string, st: AgentState, deployId: string): string {
    if (st.last?.deployId === deployId) {
        return `the host finished the release: ${coop} runs ${st.live?.image ?? st.last.image} (slot ${st.live?.slot ?? st.last.slot})`;
    }
    if (st.live) return `the host rolled back: still serving ${st.live.image} (slot ${st.live.slot})`;
    return `the host rolled back: nothing serves ${coop} there`;
}

/**
 * After a cut connection: reconnects (retrying while the host does not answer) and asks the
 * agent, until the deploy has let go of the co-op, whether it switched.
 */
export async function afterCut(s: State, deployId: string, waitMs = CUT_WAIT_MS): Promise<string> {
    const deadline = Date.now() + waitMs;
    for (;;) {
        let last: string;
        try {
            const st = await agentState({ ...s, connection: { ...s.connection, connectTimeoutMs: Math.max(1000, deadline - Date.now()) } });
            if (!st.deploying) return outcome(s.release.coop, st, deployId);
            last = "the deploy was still under way";
        } catch (err) {
            last = (err as Error).message;
        }
        if (Date.now() > deadline) return `the host did not tell what became of the release within ${Math.round(waitMs / 1000)} s (${last}); \`pulumi refresh\` reads what it runs`;
        await new Promise((r) => setTimeout(r, 1000));
    }
}

/** Places the files and runs the deploy, on one connection; resolves with what the agent printed. */
export async function deploy(s: State): Promise<string> {
    const dir = `${s.root}/coops/${s.release.coop}`;
    const where = `${s.connection.host}:${s.connection.port}`;
    return ssh.withConnection(s.connection, async (client) => {
        const f = await ssh.files(client, s.connection);
        await f.mkdir(dir, 0o700);
        await f.mkdir(`${dir}/config`, 0o755);
        await f.write(`${dir}/env`, s.env, 0o600);
        const names = Object.keys(s.configFiles);
        for (const name of names) await f.write(`${dir}/config/${name}`, s.configFiles[name], 0o644);
        for (const old of await f.list(`${dir}/config`)) {
            if (!names.includes(old)) await f.remove(`${dir}/config/${old}`);
        }
        const deployId = randomUUID();
        const res = await ssh.execOn(client, s.connection, render(agentCommand(s.agent, ["deploy", "--deploy-id", deployId])), {
            stdin: JSON.stringify(s.backup ? { ...s.release, backup: s.backup } : s.release),
            timeoutMs: s.timeoutMs,
        });
        const output = [tail(res.stderr), tail(res.stdout)].filter((x) => x !== "").join("\n");
        if (res.code === null && !res.signal) {
            // The connection dropped: the agent finishes or rolls back on its own; ask it which.
            throw new Error(`deploy of ${s.release.coop} on ${where}: the connection dropped; ${await afterCut(s, deployId)}${output ? `\n${output}` : ""}`);
        }
        if (res.code !== 0) {
            const status = res.code === null ? `was cut off by ${res.signal}` : `exited ${res.code}`;
            throw new Error(`deploy of ${s.release.coop} on ${where} ${status}:\n${output}`);
        }
        return res.stdout;
    });
}

/** The resource's outputs after a deploy that printed `stdout`: `live` is what a refresh will read if nothing changes. */
function deployed(s: State, stdout: string): State {
    const live = liveOf(stdout);
    return { ...s, stdout, ...(live !== undefined ? { live } : {}) };
}

const provider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: State) {
        return { id: randomUUID(), outs: deployed(inputs, await deploy(inputs)) };
    },

    async read(id: string, props: State) {
        let st: AgentState;
        try {
            st = await agentState(props);
        } catch (err) {
            // An agent from before `state` cannot tell: nothing is read (the next up installs one that can).
            if (/unknown command "state"/.test((err as Error).message)) return { id, props };
            throw err;
        }
        return { id, props: { ...props, live: st.live } };
    },

    async diff(_id: string, olds: State, news: State) {
        return { changes: drifted(olds) || INPUTS.some((k) => !same(olds[k], news[k])), replaces: [], deleteBeforeReplace: false };
    },

    async update(_id: string, _olds: State, news: State) {
        return { outs: deployed(news, await deploy(news)) };
    },

    async delete(_id: string, s: State) {
        const res = await ssh.exec(s.connection, render(removeCommand(s.agent, s.release.coop, s.deleteData)));
        if (res.code !== 0) {
            throw new Error(`remove of ${s.release.coop} on ${s.connection.host}:${s.connection.port} exited ${res.code}:\n${tail(res.stderr)}`);
        }
    },
};

/** A co-op's release on a host (see the module comment). */
export class CoopRelease extends pulumi.dynamic.Resource {
    /** What the agent printed for the last deploy: its report, as JSON. */
    declare public readonly stdout: pulumi.Output<string>;
    declare public readonly release: pulumi.Output<ReleaseDocument>;

    constructor(name: string, args: CoopReleaseArgs, opts?: pulumi.CustomResourceOptions) {
        super(provider, name, { ...args, stdout: undefined }, pulumi.mergeOptions(opts, { additionalSecretOutputs: ["connection", "env", "backup"] }), "coop", "CoopRelease");
    }
}
