/**
 * {@link CoopRelease}: one co-op's release on one host, over one SSH connection: its env file
 * (0600) and config files by SFTP into ROOT/coops/ID (0700), then the host agent's `deploy` with
 * the release document on stdin; what the agent prints is the `stdout` output (its report, which
 * the Coop component checks against the report's schema). Deleting it runs the agent's `remove`.
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
import { removeCommand } from "../coopCommands";
import type { ReleaseDocument } from "../release";
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
}

interface State {
    connection: ssh.SshTarget;
    agent: string;
    root: string;
    release: ReleaseDocument;
    env: string;
    configFiles: Record<string, string>;
    deleteData: boolean;
    timeoutMs: number;
    stdout?: string;
}

const TAIL_LINES = 40;
const tail = (text: string): string => text.trimEnd().split("\n").slice(-TAIL_LINES).join("\n");
const INPUTS = ["connection", "agent", "root", "release", "env", "configFiles", "deleteData", "timeoutMs"] as const;
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Places the files and runs the deploy, on one connection; resolves with what the agent printed. */
async function deploy(s: State): Promise<string> {
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
        const res = await ssh.execOn(client, s.connection, render([s.agent, "deploy"]), { stdin: JSON.stringify(s.release), timeoutMs: s.timeoutMs });
        if (res.code !== 0) {
            const status = res.code === null ? `was cut off${res.signal ? ` by ${res.signal}` : ""}` : `exited ${res.code}`;
            throw new Error(`deploy of ${s.release.coop} on ${where} ${status}:\n${[tail(res.stderr), tail(res.stdout)].filter((x) => x !== "").join("\n")}`);
        }
        return res.stdout;
    });
}

const provider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: State) {
        return { id: randomUUID(), outs: { ...inputs, stdout: await deploy(inputs) } };
    },

    async diff(_id: string, olds: State, news: State) {
        return { changes: INPUTS.some((k) => !same(olds[k], news[k])), replaces: [], deleteBeforeReplace: false };
    },

    async update(_id: string, _olds: State, news: State) {
        return { outs: { ...news, stdout: await deploy(news) } };
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
        super(provider, name, { ...args, stdout: undefined }, pulumi.mergeOptions(opts, { additionalSecretOutputs: ["connection", "env"] }), "coop", "CoopRelease");
    }
}
