import * as digitalocean from "@pulumi/digitalocean";
import { createHash } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { certificateNames, dnsRecords } from "./dns";

export interface LoadBalancerArgs {
    /** Environment name (dev, uat, prod); resource names derive from it. */
    environment: string;
    /** Region slug, e.g. ams3. */
    region: string;
    /** The VPC it joins. */
    vpcId: pulumi.Input<string>;
    /**
     * The droplets it forwards to, each once it is ready (every co-op released on it): a new host
     * joins only when it serves every co-op, and a host that goes leaves before its co-ops stop.
     */
    dropletIds: pulumi.Input<number[]>;
    /** What the droplets' readiness waits for (the co-op releases), as explicit dependencies. */
    after: pulumi.Resource[];
    /** Every co-op domain; the certificate covers them. */
    domains: string[];
    /** DNS zones managed here. */
    dnsZones: string[];
    /** Load balancer size units. */
    sizeUnits: number;
    /** The zones must exist before Let's Encrypt can validate them. */
    zonesReady: pulumi.Resource[];
}

/**
 * The load balancer in front of two or more hosts: a Let's Encrypt certificate for the co-op
 * domains, HTTPS forwarded as plain HTTP to each host's proxy, HTTP redirected to HTTPS, and a
 * health check on the proxy's port.
 */
export class LoadBalancer extends pulumi.ComponentResource {
    public readonly loadBalancer: digitalocean.LoadBalancer;

    constructor(name: string, args: LoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:do:LoadBalancer", name, {}, opts);
        const names = certificateNames(args.domains, args.dnsZones);
        // A certificate in use cannot be deleted, and names are unique: a new set of names gets a
        // new certificate under a new name, the load balancer moves to it, then the old one goes.
        const suffix = createHash("sha256").update(names.join(",")).digest("hex").slice(0, 8);
        const cert = new digitalocean.Certificate(
            `${name}-cert`,
            { name: `coop-${args.environment}-${suffix}`, type: "lets_encrypt", domains: names },
            { parent: this, dependsOn: args.zonesReady, deleteBeforeReplace: false },
        );
        this.loadBalancer = new digitalocean.LoadBalancer(
            `${name}-lb`,
            {
                name: `coop-${args.environment}-lb`,
                region: args.region,
                vpcUuid: args.vpcId,
                dropletIds: args.dropletIds,
                sizeUnit: args.sizeUnits,
                forwardingRules: [
                    { entryPort: 443, entryProtocol: "https", targetPort: 80, targetProtocol: "http", certificateName: cert.name },
                    { entryPort: 80, entryProtocol: "http", targetPort: 80, targetProtocol: "http" },
                ],
                redirectHttpToHttps: true,
                healthcheck: { port: 80, protocol: "tcp", checkIntervalSeconds: 5, responseTimeoutSeconds: 3, healthyThreshold: 2, unhealthyThreshold: 3 },
                enableBackendKeepalive: true,
                httpIdleTimeoutSeconds: 60,
            },
            { parent: this, dependsOn: args.after },
        );
        this.registerOutputs({ ip: this.loadBalancer.ip });
    }
}

export interface DnsArgs {
    /** DNS zones managed here. */
    dnsZones: string[];
    /** Protect the stateful resources from deletion (prod). */
    protect: boolean;
}

/** The DNS zones, managed by DigitalOcean (the load balancer's Let's Encrypt certificate needs that). */
export class DnsZones extends pulumi.ComponentResource {
    public readonly zones: Record<string, digitalocean.Domain>;
    private readonly baseName: string;

    constructor(name: string, args: DnsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:do:DnsZones", name, {}, opts);
        this.baseName = name;
        this.zones = Object.fromEntries(args.dnsZones.map((z) => [z, new digitalocean.Domain(`${name}/${z}`, { name: z }, { parent: this, protect: args.protect })]));
        this.registerOutputs({});
    }

    /** A records for the co-op domains, pointing at `ip`; children of this component. */
    records(domains: string[], ip: pulumi.Input<string>): digitalocean.DnsRecord[] {
        return dnsRecords(domains, Object.keys(this.zones)).map(
            (r) => new digitalocean.DnsRecord(`${this.baseName}/${r.domain}`, { domain: this.zones[r.zone].name, type: "A", name: r.name, value: ip, ttl: 300 }, { parent: this }),
        );
    }
}
