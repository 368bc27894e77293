import * as pulumi from "@pulumi/pulumi";
import { ProxySpec } from "./config";
import { bootWaitCommand, hostDownCommand, hostUpCommand, prepareCommand, toolPath, unprepareCommand } from "./hostCommands";
import { ConnectionArgs, RemoteCommand, RemoteFile } from "./remote/command";
import { render } from "./remote/shell";

export interface HostBootstrapArgs {
    /** How to reach the host over SSH, with its pinned host key. */
    connection: pulumi.Input<ConnectionArgs>;
    /** Directory on the host for the deploy tool and co-op files; must exist and be writable by the SSH user. */
    root: string;
    /** Docker network shared by the proxy and the co-ops. */
    network: string;
    /** The reverse proxy to run. */
    proxy: ProxySpec;
    /** Content of the host-side deploy tool (host/coopctl). */
    toolSource: string;
    /** Wait for the host's first boot (`cloud-init status --wait`) before anything else. Default false. */
    waitForBoot?: boolean;
}

/** What the host-up run reported (coopctl's JSON). */
export interface HostStatus {
    network: string;
    networkCreated: boolean;
    proxy: { container: string; image: string; changed: boolean };
}

/**
 * Everything a host needs before co-ops can be deployed to it: the deploy tool at a versioned
 * path, the Docker network and the reverse proxy with persistent state. Co-op instances take
 * {@link HostBootstrap.connection} and {@link HostBootstrap.tool} and depend on this component.
 */
export class HostBootstrap extends pulumi.ComponentResource {
    /** Connection co-op instances use to reach this host. */
    public readonly connection: pulumi.Output<ConnectionArgs>;
    /** Absolute path of the deploy tool version this host runs. */
    public readonly tool: pulumi.Output<string>;
    /** Name of the Docker network. */
    public readonly network: string;
    /** The host's name (children of co-op instances on it are named after it). */
    public readonly hostName: string;
    /** The host-up report. */
    public readonly status: pulumi.Output<HostStatus>;

    constructor(name: string, args: HostBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:app:HostBootstrap", name, {}, opts);

        const tool = toolPath(args.root, args.toolSource);
        const connection = pulumi.output(args.connection);

        const boot = args.waitForBoot
            ? [new RemoteCommand(`${name}-boot`, { connection, create: render(bootWaitCommand()) }, { parent: this })]
            : [];
        const dirs = new RemoteCommand(
            `${name}-dirs`,
            { connection, create: render(prepareCommand(args.root)), delete: render(unprepareCommand(args.root)) },
            { parent: this, dependsOn: boot },
        );

        const toolFile = new RemoteFile(
            `${name}-tool`,
            { connection, path: tool, content: args.toolSource, mode: 0o755 },
            { parent: this, dependsOn: [dirs] },
        );

        const up = new RemoteCommand(
            `${name}-up`,
            {
                connection,
                create: render(hostUpCommand(tool, args.network, args.proxy)),
                delete: render(hostDownCommand(tool, args.network)),
            },
            { parent: this, dependsOn: [toolFile] },
        );

        this.connection = connection;
        this.tool = toolFile.path;
        this.network = args.network;
        this.hostName = name;
        this.status = up.stdout.apply((s) => JSON.parse(s) as HostStatus);
        this.registerOutputs({ tool: this.tool, status: this.status });
    }
}
