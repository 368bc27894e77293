import * as pulumi from "@pulumi/pulumi";
import type { ProxySpec } from "./config";
import { agentCommand } from "./coopCommands";
import { bootWaitCommand, holderId, installAgentCommand, removeLoginsCommand, uninstallAgentCommand, writeLoginsCommand } from "./hostCommands";
import { HostUpReport, agentPath, hostDocument, parseReport } from "./release";
import { ConnectionArgs, RemoteCommand } from "./remote/command";
import { render } from "./remote/shell";

export interface HostBootstrapArgs {
    /** How to reach the host over SSH, with its pinned host key. */
    connection: pulumi.Input<ConnectionArgs>;
    /** Directory on the host for the agent and co-op files; writable by the SSH user. */
    root: string;
    /** Docker network shared by the proxy and the co-ops. */
    network: string;
    /** The reverse proxy to run. */
    proxy: ProxySpec;
    /** The host agent's image, pinned by digest. */
    agentImage: string;
    /** Wait for the host's first boot (`cloud-init status --wait`) before anything else. Default false. */
    waitForBoot?: boolean;
    /**
     * The registry logins every pull on the host uses, as a docker CLI config (hostCommands.ts:
     * dockerConfig); pass a secret. Absent: anonymous pulls (and the deploy user's own docker login).
     */
    registryLogins?: pulumi.Input<string>;
}

/**
 * Everything a host needs before co-ops can be released to it: the host agent of the stack's
 * version, the Docker network and the reverse proxy with persistent state. Children are named
 * `<host>/boot`, `<host>/agent`, `<host>/up`. Co-op releases take {@link connection} and
 * {@link agent} and depend on this component.
 */
export class HostBootstrap extends pulumi.ComponentResource {
    /** Connection co-op releases use to reach this host. */
    public readonly connection: pulumi.Output<ConnectionArgs>;
    /** Absolute path of the agent this host runs. */
    public readonly agent: string;
    /** Name of the Docker network. */
    public readonly network: string;
    /** The host's name (co-op releases on it are named after it). */
    public readonly hostName: string;
    /** The agent's host-up report. */
    public readonly status: pulumi.Output<HostUpReport>;

    constructor(name: string, args: HostBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:app:HostBootstrap", name, {}, opts);
        const connection = pulumi.output(args.connection);

        const boot = args.waitForBoot ? [new RemoteCommand(`${name}/boot`, { connection, create: render(bootWaitCommand()) }, { parent: this })] : [];
        // The stack's host holds the agent it installs: another stack's on the same host, or
        // this one's replacement, never removes what this one runs.
        const holder = holderId(pulumi.getProject(), pulumi.getStack(), name);
        // The logins first: the agent's own image may be private too. Through stdin, into a
        // file only the deploy user reads; a changed token rewrites it.
        const logins =
            args.registryLogins === undefined
                ? []
                : [
                      new RemoteCommand(
                          `${name}/registries`,
                          { connection, create: render(writeLoginsCommand(args.root, holder)), delete: render(removeLoginsCommand(args.root, holder)), stdin: args.registryLogins },
                          { parent: this, dependsOn: boot },
                      ),
                  ];
        const agent = new RemoteCommand(
            `${name}/agent`,
            {
                connection,
                create: render(installAgentCommand(args.root, args.agentImage, holder, logins.length > 0)),
                delete: render(uninstallAgentCommand(args.root, args.agentImage, holder)),
            },
            { parent: this, dependsOn: [...boot, ...logins] },
        );
        this.agent = agentPath(args.root, args.agentImage);
        const doc = JSON.stringify(hostDocument(args.network, args.proxy));
        // By the agent installed, or the host's current one when that file is gone.
        const up = new RemoteCommand(
            `${name}/up`,
            { connection, create: render(agentCommand(this.agent, ["host-up"])), delete: render(agentCommand(this.agent, ["host-down"])), stdin: doc },
            { parent: this, dependsOn: [agent] },
        );

        this.connection = connection;
        this.network = args.network;
        this.hostName = name;
        this.status = up.stdout.apply((s) => parseReport(HostUpReport, `host-up on ${name}`, s));
        this.registerOutputs({ agent: this.agent, status: this.status });
    }
}
