/**
 * {@link RemoteCommand}: a command run over SSH on create/update/delete. A Pulumi dynamic resource,
 * executed by the engine's Node.js dynamic-provider plugin, so it needs no provider binary
 * (README, "Why not @pulumi/command"). Its inputs mirror `command.remote.Command`.
 *
 * Secrets: the private key is a Pulumi secret in state, and so is `stdin` when a secret is passed
 * (Pulumi keeps an input's secrecy); commands are plain text by design (secrets go through stdin or
 * files, never the command line).
 */
import * as pulumi from "@pulumi/pulumi";
import { randomUUID } from "crypto";
import * as ssh from "./ssh";

/** How to reach a host. */
export interface ConnectionArgs {
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    user: pulumi.Input<string>;
    /** OpenSSH private key text; pass a secret. */
    privateKey: pulumi.Input<string>;
    /** The host's pinned public key (`ssh-ed25519 AAAA...`). */
    hostKey: pulumi.Input<string>;
}

export interface RemoteCommandArgs {
    connection: pulumi.Input<ConnectionArgs>;
    /** Rendered shell command run when the resource is created. */
    create: pulumi.Input<string>;
    /** Run instead of `create` when an input that matters changes. Default: `create`. */
    update?: pulumi.Input<string>;
    /** Run when the resource is deleted. Default: nothing. */
    delete?: pulumi.Input<string>;
    /** Written to the command's standard input (the way secrets reach a host). */
    stdin?: pulumi.Input<string>;
    /** Values whose change re-runs the command (like `create` changing). */
    triggers?: pulumi.Input<unknown[]>;
    /** Give up on a run after this many ms. Default 30 minutes. */
    timeoutMs?: pulumi.Input<number>;
}

interface CommandState {
    connection: ssh.SshTarget;
    create: string;
    update?: string;
    delete?: string;
    stdin?: string;
    triggers?: unknown[];
    timeoutMs?: number;
    stdout: string;
    stderr: string;
}

const TAIL_LINES = 40;

function tail(text: string): string {
    const lines = text.trimEnd().split("\n");
    return lines.slice(-TAIL_LINES).join("\n");
}

/** Runs one command and turns a failed run into an error that shows the output, not the command. */
async function run(s: Omit<CommandState, "stdout" | "stderr">, command: string, step: string): Promise<ssh.ExecResult> {
    const res = await ssh.exec(s.connection, command, { stdin: s.stdin, timeoutMs: s.timeoutMs });
    if (res.code !== 0) {
        const status = res.code === null ? `was cut off${res.signal ? ` by ${res.signal}` : ""}` : `exited ${res.code}`;
        const output = [tail(res.stderr), tail(res.stdout)].filter((x) => x !== "").join("\n");
        throw new Error(`${step} on ${s.connection.host}:${s.connection.port} ${status}${output ? `:\n${output}` : ""}`);
    }
    return res;
}

function same(a: unknown, b: unknown): boolean {
    return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

const RUN_KEYS = ["create", "update", "stdin", "triggers"] as const;
const ALL_KEYS = [...RUN_KEYS, "delete", "connection", "timeoutMs"] as const;

const commandProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: CommandState) {
        const res = await run(inputs, inputs.create, "create");
        return { id: randomUUID(), outs: { ...inputs, stdout: res.stdout, stderr: res.stderr } };
    },

    async diff(_id: string, olds: CommandState, news: CommandState) {
        const changed = ALL_KEYS.filter((k) => !same(olds[k], news[k]));
        return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false };
    },

    async update(_id: string, olds: CommandState, news: CommandState) {
        if (RUN_KEYS.every((k) => same(olds[k], news[k]))) {
            return { outs: { ...news, stdout: olds.stdout, stderr: olds.stderr } };
        }
        const res = await run(news, news.update ?? news.create, "update");
        return { outs: { ...news, stdout: res.stdout, stderr: res.stderr } };
    },

    async delete(_id: string, props: CommandState) {
        if (props.delete) {
            await run(props, props.delete, "delete");
        }
    },
};

/** A command run over SSH when the resource is created, updated or deleted. */
export class RemoteCommand extends pulumi.dynamic.Resource {
    /** What the last create/update run printed on standard output. */
    declare public readonly stdout: pulumi.Output<string>;
    /** What the last create/update run printed on standard error. */
    declare public readonly stderr: pulumi.Output<string>;

    constructor(name: string, args: RemoteCommandArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            commandProvider,
            name,
            { ...args, stdout: undefined, stderr: undefined },
            pulumi.mergeOptions(opts, { additionalSecretOutputs: ["connection"] }),
            "coop",
            "RemoteCommand",
        );
    }
}
