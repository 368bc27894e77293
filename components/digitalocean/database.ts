import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import type { CacheSpec, DatabaseSpec } from "../config";

/** Postgres names for a co-op: its id with '-' as '_' (ids are DNS-safe, so the result is a plain identifier). */
export function databaseName(coopId: string): string {
    return `coop_${coopId.replace(/-/g, "_")}`;
}

/** What {@link privateCluster} needs beyond the engine's own settings. */
interface PrivateClusterArgs {
    /** Cluster name (explicit, so the provider adds no suffix). */
    clusterName: string;
    engine: "pg" | "valkey";
    spec: { version: string; size: string; nodes: number; region: string };
    environment: string;
    vpcId: pulumi.Input<string>;
    hostTag: pulumi.Input<string>;
    protect: boolean;
}

/**
 * A managed cluster inside the VPC and behind a database firewall that admits only the app
 * hosts' tag: the two always come together, so no cluster can be made without its firewall.
 * Children are named `<name>-cluster` and `<name>-firewall` under `parent`.
 */
function privateCluster(parent: pulumi.ComponentResource, name: string, a: PrivateClusterArgs): digitalocean.DatabaseCluster {
    const s = a.spec;
    const cluster = new digitalocean.DatabaseCluster(
        `${name}-cluster`,
        {
            name: a.clusterName,
            engine: a.engine,
            version: s.version,
            size: s.size,
            nodeCount: s.nodes,
            region: s.region,
            privateNetworkUuid: a.vpcId,
            tags: [`coop-${a.environment}`],
        },
        { parent, protect: a.protect },
    );
    new digitalocean.DatabaseFirewall(`${name}-firewall`, { clusterId: cluster.id, rules: [{ type: "tag", value: a.hostTag }] }, { parent });
    return cluster;
}

export interface DatabaseArgs {
    /** Environment name (dev, uat, prod); resource names derive from it. */
    environment: string;
    /** Version, size, nodes, region and pool size of the cluster. */
    spec: DatabaseSpec;
    /** The VPC it joins. */
    vpcId: pulumi.Input<string>;
    /** Tag of the app droplets: the only clients the cluster admits. */
    hostTag: pulumi.Input<string>;
    /** Co-op ids: each gets a database, a user and a connection pool. */
    coopIds: string[];
    /** Protect the stateful resources from deletion (prod). */
    protect: boolean;
}

/**
 * The managed Postgres cluster in the VPC, behind a database firewall that admits only the app
 * hosts' tag; per co-op a database, a user and a transaction pool whose private connection
 * string reaches the co-op as a secret.
 */
export class Database extends pulumi.ComponentResource {
    public readonly cluster: digitalocean.DatabaseCluster;
    /** Connection string of each co-op's pool over the VPC, by co-op id (secrets). */
    public readonly urls: Record<string, pulumi.Output<string>>;
    /**
     * Each co-op's direct connection over the VPC (its user on its database, no pool), by co-op
     * id (secrets): what its backups use, since pg_dump's session does not fit a transaction pool.
     */
    public readonly directUrls: Record<string, pulumi.Output<string>>;

    constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:do:Database", name, {}, opts);
        const s = args.spec;
        this.cluster = privateCluster(this, name, { ...args, clusterName: `coop-${args.environment}-pg`, engine: "pg" });

        this.urls = {};
        this.directUrls = {};
        for (const id of args.coopIds) {
            const dbName = databaseName(id);
            const opt = { parent: this, protect: args.protect };
            const db = new digitalocean.DatabaseDb(`${name}/${id}/db`, { clusterId: this.cluster.id, name: dbName }, opt);
            const user = new digitalocean.DatabaseUser(`${name}/${id}/user`, { clusterId: this.cluster.id, name: dbName }, opt);
            const pool = new digitalocean.DatabaseConnectionPool(
                `${name}/${id}/pool`,
                { clusterId: this.cluster.id, name: dbName, dbName: db.name, user: user.name, mode: "transaction", size: s.poolSize },
                { parent: this },
            );
            this.urls[id] = pulumi.secret(pool.privateUri);
            this.directUrls[id] = pulumi.secret(
                pulumi.interpolate`postgresql://${user.name}:${user.password}@${this.cluster.privateHost}:${this.cluster.port}/${db.name}?sslmode=require`,
            );
        }
        this.registerOutputs({ clusterId: this.cluster.id });
    }
}

export interface CacheArgs {
    /** Environment name (dev, uat, prod); resource names derive from it. */
    environment: string;
    /** Version, size, nodes, region and eviction policy of the cluster. */
    spec: CacheSpec;
    /** The VPC it joins. */
    vpcId: pulumi.Input<string>;
    /** Tag of the app droplets: the only clients the cluster admits. */
    hostTag: pulumi.Input<string>;
    /** Protect the stateful resources from deletion (prod). */
    protect: boolean;
}

/** Managed Valkey (DigitalOcean's successor to its managed Redis) in the VPC, behind its own firewall. */
export class Cache extends pulumi.ComponentResource {
    public readonly cluster: digitalocean.DatabaseCluster;
    /** The cache URL over the VPC (a secret). */
    public readonly url: pulumi.Output<string>;

    constructor(name: string, args: CacheArgs, opts?: pulumi.ComponentResourceOptions) {
        super("coop:do:Cache", name, {}, opts);
        this.cluster = privateCluster(this, name, { ...args, clusterName: `coop-${args.environment}-valkey`, engine: "valkey" });
        new digitalocean.DatabaseValkeyConfig(`${name}-config`, { clusterId: this.cluster.id, valkeyMaxmemoryPolicy: args.spec.evictionPolicy }, { parent: this });
        this.url = pulumi.secret(this.cluster.privateUri);
        this.registerOutputs({ clusterId: this.cluster.id });
    }
}
