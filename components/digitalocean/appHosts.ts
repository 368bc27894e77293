import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import { SshHostKey } from "../remote/hostKey";
import { cloudInit } from "./cloudInit";
import type { DropletsSpec } from "../config";

export interface AppHostsArgs {
    /** Environment name (dev, uat, prod); resource names derive from it. */
    environment: string;
    /** Region slug, e.g. ams3. */
    region: string;
    /** The VPC the droplets join. */
    vpcId: pulumi.Input<string>;
    /** How many droplets, their size, image and backups. */
    droplets: DropletsSpec;
    /** Account SSH key fingerprints for root (root cannot log in over SSH; kept for the recovery console). */
    sshKeyFingerprints: string[];
    /** Deploy user and its public key. */
    deployUser: string;
    /** The deploy user's OpenSSH public key. */
    deployPublicKey: string;
    /** Directory cloud-init creates for the application layer. */
    hostRoot: string;
    /** Give a single host a reserved IP (the DNS records point at it). */
    reservedIp: boolean;
    /** Protect the droplets from deletion and replacement. */
    protect: boolean;
}

/** What the application layer needs of a host: where it is and the key it must present. */
export interface HostEndpoint {
    name: string;
    address: pulumi.Output<string>;
    port: number;
    hostKey: pulumi.Output<string>;
}

/** The droplet's backup window: a weekday only for a weekly plan (a daily plan has none). */
export function backupPolicy(p: DropletsSpec["backupPolicy"]): { plan: string; hour: number; weekday?: string } {
    return p.plan === "weekly" ? p : { plan: p.plan, hour: p.hour };
}

/** Droplet IDs are strings in Pulumi and numbers in some inputs: convert in this one place. */
export function dropletIdNumber(droplet: digitalocean.Droplet): pulumi.Output<number> {
    return droplet.id.apply((id) => {
        const n = Number(id);
        if (!Number.isSafeInteger(n)) {
            throw new Error(`droplet id ${JSON.stringify(id)} is not a number`);
        }
        return n;
    });
}

/**
 * The droplets that run the application layer: each with a host key made by the program and
 * installed by cloud-init (so connections pin it from the first one), monitoring on, backups
 * as configured, and a tag the firewall, the load balancer and the database firewalls select.
 */
export class AppHosts extends pulumi.ComponentResource {
    public readonly tag: digitalocean.Tag;
    public readonly droplets: digitalocean.Droplet[];
    public readonly reservedIp?: digitalocean.ReservedIp;
    /** SSH endpoints for the application layer, in droplet order. */
    public readonly hosts: HostEndpoint[];
    /** URNs for the environment's project. */
    public readonly projectResources: pulumi.Output<string>[];

    constructor(name: string, args: AppHostsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:do:AppHosts", name, {}, opts);
        const d = args.droplets;
        this.tag = new digitalocean.Tag(`${name}-tag`, { name: `coop-${args.environment}-app` }, { parent: this });

        this.droplets = [];
        this.hosts = [];
        for (let i = 1; i <= d.count; i++) {
            const hostName = `${args.environment}-app-${i}`;
            const key = new SshHostKey(`${name}-${i}-hostkey`, { comment: hostName }, { parent: this, protect: args.protect });
            const userData = pulumi
                .all([key.publicKey, key.privateKey])
                .apply(([publicKey, privateKey]) =>
                    cloudInit({ deployUser: args.deployUser, deployPublicKey: args.deployPublicKey, hostRoot: args.hostRoot, hostKey: { publicKey, privateKey } }),
                );
            const droplet = new digitalocean.Droplet(
                `${name}-${i}`,
                {
                    name: `coop-${hostName}`,
                    region: args.region,
                    size: d.size,
                    image: d.image,
                    vpcUuid: args.vpcId,
                    tags: [this.tag.name],
                    sshKeys: args.sshKeyFingerprints,
                    monitoring: true,
                    ipv6: true,
                    backups: d.backups,
                    ...(d.backups ? { backupPolicy: backupPolicy(d.backupPolicy) } : {}),
                    userData: pulumi.secret(userData),
                    gracefulShutdown: true,
                },
                { parent: this, protect: args.protect },
            );
            this.droplets.push(droplet);
            this.hosts.push({ name: hostName, address: droplet.ipv4Address, port: 22, hostKey: key.publicKey });
        }

        if (args.reservedIp) {
            this.reservedIp = new digitalocean.ReservedIp(`${name}-ip`, { region: args.region }, { parent: this, protect: args.protect });
            new digitalocean.ReservedIpAssignment(
                `${name}-ip-assignment`,
                { ipAddress: this.reservedIp.ipAddress, dropletId: dropletIdNumber(this.droplets[0]) },
                { parent: this },
            );
        }
        this.projectResources = [...this.droplets.map((x) => x.dropletUrn), ...(this.reservedIp ? [this.reservedIp.reservedIpUrn] : [])];
        this.registerOutputs({ addresses: this.droplets.map((x) => x.ipv4Address) });
    }
}
