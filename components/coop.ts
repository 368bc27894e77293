import * as pulumi from "@pulumi/pulumi";
import type { CoopSpec } from "./config";
import { renderEnvFile } from "./coopCommands";
import { HostBootstrap } from "./host";
import { BackupSection, DeployReport, deployTimeoutMs, parseReport, releaseDocument } from "./release";
import { CoopRelease } from "./remote/coopRelease";
import { RandomSecret } from "./remote/random";

export interface CoopArgs {
    /** The co-op to run. */
    coop: CoopSpec;
    /** Hosts to run it on (every host of the stack), in order. */
    hosts: HostBootstrap[];
    /** Values of the co-op's secretEnv (and the stack's database and cache URLs), by variable name (Pulumi secrets). */
    secrets: Record<string, pulumi.Output<string>>;
    /** Directory on the hosts that holds co-op files (coop:hostRoot). */
    root: string;
    /** Obtain certificates for the co-op's domains on the hosts (no load balancer in front). */
    tls: boolean;
    /**
     * The database backup before migrations (a secret); absent: none is taken. Only the first
     * host takes it: its migrations run first against the shared database, so a dump taken on a
     * later host would already hold them.
     */
    backup?: pulumi.Output<BackupSection>;
}

/**
 * A co-op across the stack's hosts: its generated secrets (made once, shared by every host,
 * `<id>/secret/<NAME>`) and a {@link CoopRelease} per host (`<id>/<host>`). The '/' appears in no
 * id, host name or variable name, so no two co-ops' resources can share a name.
 */
export class Coop extends pulumi.ComponentResource {
    /** The release on each host, by host name. */
    public readonly releases: Record<string, CoopRelease>;
    /** The agent's report of the last deploy on each host, checked against its schema. */
    public readonly reports: Record<string, pulumi.Output<DeployReport>>;

    constructor(name: string, args: CoopArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:app:Coop", name, {}, opts);
        const c = args.coop;
        const generated = Object.fromEntries(c.generatedSecrets.map((v) => [v, new RandomSecret(`${name}/secret/${v}`, {}, { parent: this }).value]));
        const env = pulumi.secret(pulumi.all({ ...args.secrets, ...generated }).apply((secretVars) => renderEnvFile({ COOP_ID: c.id, ...c.env, ...secretVars })));

        // One host after the other: a release that fails on the first host never reaches the
        // next, the load balancer always has hosts on a tested release, and the migrations (run by
        // each host's deploy against the shared database) never run twice at once.
        this.releases = {};
        this.reports = {};
        let previous: pulumi.Resource | undefined;
        const backup = args.backup && pulumi.secret(args.backup);
        for (const host of args.hosts) {
            const doc = releaseDocument(c, { network: host.network, tls: args.tls });
            const release = new CoopRelease(
                `${name}/${host.hostName}`,
                {
                    connection: host.connection,
                    agent: host.agent,
                    root: args.root,
                    release: doc,
                    env,
                    configFiles: c.configFiles,
                    deleteData: c.deleteDataOnRemove,
                    timeoutMs: deployTimeoutMs(doc),
                    ...(backup && host === args.hosts[0] ? { backup } : {}),
                },
                { parent: this, dependsOn: [host, ...(previous ? [previous] : [])] },
            );
            this.releases[host.hostName] = release;
            this.reports[host.hostName] = release.stdout.apply((out) => parseReport(DeployReport, `deploy of ${c.id} on ${host.hostName}`, out));
            previous = release;
        }
        this.registerOutputs({});
    }
}
