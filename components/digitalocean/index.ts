/**
 * The infrastructure layer of a cloud stack, wired from its validated config: VPC, droplets,
 * firewall, managed Postgres and Valkey, load balancer (two or more hosts) or reserved IP (one),
 * DNS, and the project that groups them. It hands the application layer SSH endpoints with
 * pinned host keys and each co-op's secret environment.
 */
import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import type { CloudEnvironment, CoopSpec, DigitalOceanSpec } from "../config";
import { AppHosts, HostEndpoint, dropletIdNumber } from "./appHosts";
import { Cache, Database } from "./database";
import { DnsZones, LoadBalancer } from "./edge";
import { Monitoring } from "./monitoring";
import { HostFirewall, Network } from "./network";
import { behindLoadBalancer } from "./dns";

export interface InfrastructureArgs {
    /** Which cloud environment this is; resource names derive from it. */
    environment: CloudEnvironment;
    /** The validated `coop:digitalocean` block. */
    spec: DigitalOceanSpec;
    /** The co-ops: each gets a database, a user, a pool and DNS records. */
    coops: CoopSpec[];
    /** User the deploy logs in as (coop:sshUser). */
    deployUser: string;
    /** Directory cloud-init creates for the application layer (coop:hostRoot). */
    hostRoot: string;
    /** The Slack webhook URL alerts post to, when `spec.alerts.slack` names one (a secret). */
    slackWebhookUrl?: pulumi.Output<string>;
    /** Make the Spaces bucket the co-ops' database backups go to (coop:backups is set). */
    backups?: boolean;
}

export interface Infrastructure {
    /** SSH endpoints of the app hosts, in order. */
    hosts: HostEndpoint[];
    /** Secret environment the stack gives each co-op (database and cache URLs), by co-op id. */
    coopSecrets: Record<string, Record<string, pulumi.Output<string>>>;
    /** Each co-op's direct database URL (no pool), by co-op id (secrets): its backups use it. */
    directDatabaseUrls: Record<string, pulumi.Output<string>>;
    /** The Spaces bucket of the database backups (when asked for): its name, region and S3 endpoint. */
    backupBucket?: { name: pulumi.Output<string>; region: string; endpoint: string };
    /**
     * What faces the internet, made once the application layer is known: the load balancer (two
     * hosts or more), the firewall, the DNS records and the project. `ready` maps each host to the
     * resources that make it ready to serve (its co-op releases): a host joins the load balancer
     * only after them. Returns where the co-op domains point.
     */
    edge(ready: Record<string, pulumi.CustomResource[]>): pulumi.Output<string>;
}

const PROJECT_ENVIRONMENT = { dev: "Development", uat: "Staging", prod: "Production" } as const;

export function infrastructure(a: InfrastructureArgs): Infrastructure {
    const { environment: env, spec } = a;
    const loadBalanced = behindLoadBalancer(spec);
    const domains = a.coops.flatMap((c) => c.domains);

    const network = new Network(`${env}-network`, { environment: env, region: spec.region, ipRange: spec.vpcIpRange });
    const vpcId = network.vpc.id;
    const hosts = new AppHosts(`${env}-hosts`, {
        environment: env,
        region: spec.region,
        vpcId,
        droplets: spec.droplets,
        sshKeyFingerprints: spec.sshKeyFingerprints,
        deployUser: a.deployUser,
        deployPublicKey: spec.deployPublicKey,
        hostRoot: a.hostRoot,
        reservedIp: !loadBalanced,
        protect: spec.protect,
    });
    const hostTag = hosts.tag.name;
    const dns = new DnsZones(`${env}-dns`, { dnsZones: spec.dnsZones, protect: spec.protect });

    const database = new Database(`${env}-db`, { environment: env, spec: spec.database, vpcId, hostTag, coopIds: a.coops.map((c) => c.id), protect: spec.protect });
    const cache = new Cache(`${env}-cache`, { environment: env, spec: spec.cache, vpcId, hostTag, protect: spec.protect });

    new Monitoring(`${env}-monitoring`, {
        stack: env,
        domains: a.coops.flatMap((c) => c.domains.map((domain) => ({ domain, uptimePath: c.uptimePath }))),
        hostTag,
        clusterIds: [database.cluster.id, cache.cluster.id],
        alerts: spec.alerts,
        slackUrl: a.slackWebhookUrl,
    });

    const coopSecrets = Object.fromEntries(a.coops.map((c) => [c.id, { [c.databaseEnvName ?? spec.database.envName]: database.urls[c.id], [spec.cache.envName]: cache.url }]));

    function edge(ready: Record<string, pulumi.CustomResource[]>): pulumi.Output<string> {
        let publicIp: pulumi.Output<string>;
        let lb: LoadBalancer | undefined;
        if (loadBalanced) {
            const after = hosts.hosts.flatMap((h) => ready[h.name] ?? []);
            // Each droplet's id once its host is ready: the load balancer's update waits for it.
            const dropletIds = pulumi.all(
                hosts.droplets.map((d, i) => {
                    // An id resolves when its resource has been created (a URN is known before).
                    const waits: pulumi.Output<string>[] = (ready[hosts.hosts[i].name] ?? []).map((r) => r.id);
                    return pulumi.all([dropletIdNumber(d), pulumi.all(waits)]).apply(([id]) => id);
                }),
            );
            lb = new LoadBalancer(`${env}-edge`, {
                environment: env,
                region: spec.region,
                vpcId,
                dropletIds,
                after,
                domains,
                dnsZones: spec.dnsZones,
                sizeUnits: spec.loadBalancerSizeUnits,
                zonesReady: Object.values(dns.zones),
            });
            publicIp = lb.loadBalancer.ip;
        } else {
            publicIp = hosts.reservedIp!.ipAddress;
        }
        new HostFirewall(`${env}-firewall`, { environment: env, hostTag, sshAllowlist: spec.sshAllowlist, loadBalancerUid: lb?.loadBalancer.id });
        dns.records(domains, publicIp);
        new digitalocean.Project(`${env}-project`, {
            name: `coop-${env}`,
            environment: PROJECT_ENVIRONMENT[env],
            purpose: "Web Application",
            description: `Co-op apps, ${env}`,
            resources: [
                ...hosts.projectResources,
                database.cluster.clusterUrn,
                cache.cluster.clusterUrn,
                ...(lb ? [lb.loadBalancer.loadBalancerUrn] : []),
                ...Object.values(dns.zones).map((z) => z.domainUrn),
            ],
        });
        return publicIp;
    }

    // The co-ops' database backups (host/internal/backup): a private bucket in the droplets'
    // region, written by the agents through the S3 API. Not destroyed with objects in it.
    const backupBucket = a.backups
        ? {
              name: new digitalocean.SpacesBucket(
                  `${env}-backups`,
                  { name: `coop-${env}-backups`, region: spec.region, acl: "private", forceDestroy: false },
                  { protect: spec.protect },
              ).name,
              region: spec.region,
              endpoint: `https://${spec.region}.digitaloceanspaces.com`,
          }
        : undefined;

    return { hosts: hosts.hosts, coopSecrets, directDatabaseUrls: database.directUrls, ...(backupBucket ? { backupBucket } : {}), edge };
}
