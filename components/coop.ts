import * as pulumi from "@pulumi/pulumi";
import { CoopSpec } from "./config";
import { coopDir, deployCommand, prepareCoopCommand, removeCommand, renderEnvFile } from "./coopCommands";
import { HostBootstrap } from "./host";
import { RemoteCommand, RemoteFile } from "./remote/command";
import { RandomSecret } from "./remote/random";
import { render } from "./remote/shell";

/** What `coopctl deploy` reports (its JSON on stdout). */
export interface DeployReport {
    coop: string;
    changed: boolean;
    slot: "blue" | "green";
    previousSlot?: string;
    image: string;
    releaseKey: string;
    timings?: { pullMs: number; migrateMs: number; startMs: number; switchMs: number; totalMs: number };
}

export interface CoopInstanceArgs {
    /** The co-op to run. */
    coop: CoopSpec;
    /** The bootstrapped host it runs on. */
    host: HostBootstrap;
    /** The rendered env file (a secret when any variable is). */
    envFile: pulumi.Input<string>;
    /** Directory on the host that holds co-op files (coopctl derives the same from its own path). */
    root: string;
    /** Obtain certificates for the co-op's domains. */
    tls: boolean;
}

/**
 * One co-op on one host: its env file (SFTP, 0600) and config files, then a release through
 * `coopctl deploy` that cuts over blue/green behind the proxy. Removing it runs `coopctl remove`.
 */
export class CoopInstance extends pulumi.ComponentResource {
    /** The slot serving after the last deploy. */
    public readonly slot: pulumi.Output<string>;
    /** The image the live slot runs. */
    public readonly image: pulumi.Output<string>;
    /** The last deploy's report. */
    public readonly report: pulumi.Output<DeployReport>;

    constructor(name: string, args: CoopInstanceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:app:CoopInstance", name, {}, opts);
        const { coop, host } = args;
        const connection = host.connection;
        const dir = coopDir(args.root, coop.id);

        const prepare = new RemoteCommand(
            `${name}-prepare`,
            { connection, create: host.tool.apply((t) => render(prepareCoopCommand(t, coop.id))) },
            { parent: this, dependsOn: [host] },
        );
        const envFile = new RemoteFile(
            `${name}-env`,
            { connection, path: `${dir}/env`, content: args.envFile, mode: 0o600 },
            { parent: this, dependsOn: [prepare] },
        );
        const configFiles = Object.entries(coop.configFiles).map(
            ([file, content]) =>
                new RemoteFile(`${name}-config-${file}`, { connection, path: `${dir}/config/${file}`, content, mode: 0o644 }, { parent: this, dependsOn: [prepare] }),
        );

        const deploy = new RemoteCommand(
            `${name}-deploy`,
            {
                connection,
                create: host.tool.apply((t) =>
                    render(
                        deployCommand(t, coop, {
                            network: host.network,
                            tls: args.tls,
                        }),
                    ),
                ),
                delete: host.tool.apply((t) => render(removeCommand(t, coop))),
                // A changed env or config file re-runs the deploy; coopctl sees the new content
                // on the host and starts a new slot with it.
                triggers: [args.envFile, ...configFiles.map((f) => f.content)],
            },
            { parent: this, dependsOn: [envFile, ...configFiles] },
        );

        this.report = deploy.stdout.apply((s) => JSON.parse(s) as DeployReport);
        this.slot = this.report.slot;
        this.image = this.report.image;
        this.registerOutputs({ slot: this.slot, image: this.image });
    }
}

export interface CoopArgs {
    /** The co-op to run. */
    coop: CoopSpec;
    /** Hosts to run it on (every host of the stack). */
    hosts: HostBootstrap[];
    /** Values of the co-op's secretEnv, by variable name (Pulumi secrets). */
    secrets: Record<string, pulumi.Output<string>>;
    /** Directory on the hosts that holds co-op files (coop:hostRoot). */
    root: string;
    /** Obtain certificates for the co-op's domains on the hosts (no load balancer in front). */
    tls: boolean;
}

/**
 * A co-op across the stack's hosts: its generated secrets (made once, shared by every host) and a
 * {@link CoopInstance} per host.
 */
export class Coop extends pulumi.ComponentResource {
    /** Instances by host name. */
    public readonly instances: Record<string, CoopInstance>;

    constructor(name: string, args: CoopArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:app:Coop", name, {}, opts);
        const generated = Object.fromEntries(
            args.coop.generatedSecrets.map((v) => [v, new RandomSecret(`${name}-${v.toLowerCase().replace(/_/g, "-")}`, {}, { parent: this }).value]),
        );
        const envFile = pulumi
            .all({ ...args.secrets, ...generated })
            .apply((secretVars) => renderEnvFile({ COOP_ID: args.coop.id, ...args.coop.env, ...secretVars }));

        // One host after the other: a release that fails on the first host never reaches the
        // next, the load balancer always has hosts on a tested release, and the migrations (run by
        // each host's deploy against the shared database) never run twice at once.
        this.instances = {};
        let previous: CoopInstance | undefined;
        for (const host of args.hosts) {
            previous = new CoopInstance(
                `${name}-${host.hostName}`,
                { coop: args.coop, host, envFile, root: args.root, tls: args.tls },
                { parent: this, dependsOn: previous ? [previous] : [] },
            );
            this.instances[host.hostName] = previous;
        }
        this.registerOutputs({});
    }
}
