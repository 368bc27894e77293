import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";

const ANYWHERE = ["0.0.0.0/0", "::/0"];

export interface NetworkArgs {
    /** Environment name; resource names derive from it (`coop-<env>-vpc`). */
    environment: string;
    /** Region slug. */
    region: string;
    /** The VPC's private range, CIDR. */
    ipRange: string;
}

/** The environment's VPC: droplets, clusters and the load balancer talk over it. */
export class Network extends pulumi.ComponentResource {
    public readonly vpc: digitalocean.Vpc;

    constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:do:Network", name, {}, opts);
        this.vpc = new digitalocean.Vpc(
            `${name}-vpc`,
            { name: `coop-${args.environment}-vpc`, region: args.region, ipRange: args.ipRange, description: `co-op hosts, databases and load balancer (${args.environment})` },
            { parent: this },
        );
        this.registerOutputs({ vpcId: this.vpc.id });
    }
}

type Rule<T> = { protocol: string; portRange?: string; sourceAddresses?: string[]; sourceLoadBalancerUids?: T[] };
type OutRule = { protocol: string; portRange?: string; destinationAddresses: string[] };

/**
 * The hosts' cloud firewall rules. Web ports take traffic only from the load balancer when
 * there is one, else from anywhere; SSH only from the allowlist. Outbound rules are explicit:
 * a DigitalOcean firewall without them blocks all outbound traffic (image pulls, apt, ACME).
 */
export function firewallRules<T>(a: { sshAllowlist: string[]; loadBalancerUid?: T }): { inbound: Rule<T>[]; outbound: OutRule[] } {
    const web = (port: string): Rule<T> =>
        a.loadBalancerUid === undefined
            ? { protocol: "tcp", portRange: port, sourceAddresses: ANYWHERE }
            : { protocol: "tcp", portRange: port, sourceLoadBalancerUids: [a.loadBalancerUid] };
    return {
        inbound: [{ protocol: "tcp", portRange: "22", sourceAddresses: [...a.sshAllowlist] }, web("80"), web("443"), { protocol: "icmp", sourceAddresses: ANYWHERE }],
        outbound: [
            { protocol: "tcp", portRange: "1-65535", destinationAddresses: ANYWHERE },
            { protocol: "udp", portRange: "1-65535", destinationAddresses: ANYWHERE },
            { protocol: "icmp", destinationAddresses: ANYWHERE },
        ],
    };
}

export interface HostFirewallArgs {
    /** Environment name (dev, uat, prod); resource names derive from it. */
    environment: string;
    /** Tag the app droplets carry; the firewall applies to every droplet with it. */
    hostTag: pulumi.Input<string>;
    /** CIDRs allowed to reach SSH. */
    sshAllowlist: string[];
    /** The load balancer's id, when web traffic must come only through it. */
    loadBalancerUid?: pulumi.Input<string>;
}

/** The app hosts' cloud firewall, attached by tag so a new droplet is covered the moment it exists. */
export class HostFirewall extends pulumi.ComponentResource {
    public readonly firewall: digitalocean.Firewall;

    constructor(name: string, args: HostFirewallArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:do:HostFirewall", name, {}, opts);
        const rules = firewallRules({ sshAllowlist: args.sshAllowlist, loadBalancerUid: args.loadBalancerUid });
        this.firewall = new digitalocean.Firewall(
            `${name}-firewall`,
            { name: `coop-${args.environment}-hosts`, tags: [args.hostTag], inboundRules: rules.inbound, outboundRules: rules.outbound },
            { parent: this },
        );
        this.registerOutputs({ firewallId: this.firewall.id });
    }
}
