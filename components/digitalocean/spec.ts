/**
 * The `coop:digitalocean` block of a cloud stack (dev, uat, prod): the typed shape and its
 * parser. Pure: errors are collected by path into the caller's {@link Reader}, so one preview
 * lists every mistake before any resource is registered.
 */
import type { Environment, Reader } from "../config";

/** Droplets that run the application layer. */
export interface DropletsSpec {
    /** How many droplets; more than one puts a load balancer in front. At least 1. */
    count: number;
    /** Droplet size slug, e.g. `s-1vcpu-2gb`. */
    size: string;
    /** Base image slug. Default `ubuntu-24-04-x64`. */
    image: string;
    /** Weekly backups with DigitalOcean's policy below. Default: on in prod only. */
    backups: boolean;
    /** Backup window: `daily` or `weekly`, and the hour (UTC) it starts. Default weekly, Sunday, 3h. */
    backupPolicy: { plan: "daily" | "weekly"; weekday: string; hour: number };
}

/** The managed Postgres cluster: one database, user and connection pool per co-op. */
export interface DatabaseSpec {
    /** Postgres major version. Default "16". */
    version: string;
    /** Node size slug, e.g. `db-s-1vcpu-1gb`. */
    size: string;
    /** Nodes: 1, or 2-3 for standbys. Default 1. */
    nodes: number;
    /** Region of the cluster; must be the VPC's. Default: the stack's region. */
    region: string;
    /** Server connections each co-op's pool holds. Default 3. */
    poolSize: number;
    /** Variable the pool's connection string reaches each co-op as. Default `DATABASE_URL`. */
    envName: string;
}

/** The managed Valkey cluster the co-ops share. */
export interface CacheSpec {
    /** Valkey major version. Default "8". */
    version: string;
    /** Node size slug. */
    size: string;
    /** Nodes: 1, or 2 for a standby. Default 1. */
    nodes: number;
    /** Region; must be the VPC's. Default: the stack's region. */
    region: string;
    /** Valkey maxmemory policy, e.g. `allkeys_lru`. Default `allkeys_lru`. */
    evictionPolicy: string;
    /** Variable the cache URL reaches each co-op as. Default `REDIS_URL` (Valkey speaks the Redis protocol). */
    envName: string;
}

/** Everything the infrastructure layer needs; IDs and fingerprints come from here, never from API look-ups. */
export interface DigitalOceanSpec {
    /** Region slug of every resource, e.g. `ams3`. */
    region: string;
    /** The VPC's private range (CIDR), e.g. `10.110.0.0/20`. */
    vpcIpRange: string;
    /** CIDRs allowed to reach SSH; never 0.0.0.0/0 or ::/0 in uat or prod. */
    sshAllowlist: string[];
    /** Fingerprints of account SSH keys put on the droplets for root (break-glass; root cannot log in over SSH). */
    sshKeyFingerprints: string[];
    /** The deploy user's OpenSSH public key (the pair of `coop:sshPrivateKey`). */
    deployPublicKey: string;
    droplets: DropletsSpec;
    database: DatabaseSpec;
    cache: CacheSpec;
    /** DNS zones managed here; every co-op domain must fall in one of them. */
    dnsZones: string[];
    /** Load balancer size unit count when there is one (droplets.count > 1). Default 1. */
    loadBalancerSizeUnits: number;
    /** Protect stateful resources (clusters, droplets, zones) from deletion. Default: on in prod. */
    protect: boolean;
}

const KEYS = ["region", "vpcIpRange", "sshAllowlist", "sshKeyFingerprints", "deployPublicKey", "droplets", "database", "cache", "dnsZones", "loadBalancerSizeUnits", "protect"];
const REGION = /^[a-z]{3}[0-9]$/;
const SLUG = /^[a-z0-9][a-z0-9-]*$/;
const FINGERPRINT = /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/;
const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const IPV6_CIDR = /^[0-9a-f:]+\/\d{1,3}$/;
const SSH_PUBLIC_KEY = /^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/]+={0,3}( .*)?$/;
const ZONE = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const EVICTION = ["noeviction", "allkeys_lru", "allkeys_random", "volatile_lru", "volatile_random", "volatile_ttl"];

/** Variables the managed database's and cache's URLs reach the co-ops as, unless configured. */
export const DEFAULT_ENV_NAMES = { database: "DATABASE_URL", cache: "REDIS_URL" } as const;

/** Whether the stack puts a load balancer in front of its hosts: more than one droplet. */
export function behindLoadBalancer(spec: { droplets: { count: number } } | undefined): boolean {
    return (spec?.droplets.count ?? 1) > 1;
}

/** True when the CIDR admits every address (the internet). */
export function isAnywhere(cidr: string): boolean {
    return cidr === "0.0.0.0/0" || cidr === "::/0" || cidr === "::0/0";
}

function validCidr(value: string): boolean {
    const m = IPV4_CIDR.exec(value);
    if (m) {
        return m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) <= 32;
    }
    return IPV6_CIDR.test(value) && Number(value.split("/")[1]) <= 128;
}

/** Reads `coop:digitalocean`. Returns undefined (with errors in `r`) when it cannot. */
export function parseDigitalOcean(r: Reader, value: unknown, environment: Environment): DigitalOceanSpec | undefined {
    const path = "coop:digitalocean";
    const o = r.object(path, value, KEYS);
    if (!o) {
        return undefined;
    }
    const strict = environment === "uat" || environment === "prod";
    const prod = environment === "prod";
    const region = r.string(`${path}.region`, o.region, { pattern: REGION, hint: "must be a DigitalOcean region slug such as ams3 or nyc3" });
    const vpcIpRange = r.string(`${path}.vpcIpRange`, o.vpcIpRange, { pattern: IPV4_CIDR, hint: "must be a private IPv4 range in CIDR form such as 10.110.0.0/20" });
    if (vpcIpRange !== undefined && !validCidr(vpcIpRange)) {
        r.fail(`${path}.vpcIpRange`, `"${vpcIpRange}" is not a valid CIDR`);
    }

    const sshAllowlist = r.strings(`${path}.sshAllowlist`, o.sshAllowlist, /^[0-9a-f.:]+\/\d{1,3}$/, "must be a CIDR such as 203.0.113.4/32");
    if (o.sshAllowlist === undefined || sshAllowlist.length === 0) {
        r.fail(`${path}.sshAllowlist`, "must list at least one CIDR that may reach SSH (the operators' or the CI runners' addresses)");
    }
    sshAllowlist.forEach((cidr, i) => {
        if (!validCidr(cidr)) {
            r.fail(`${path}.sshAllowlist[${i}]`, `"${cidr}" is not a valid CIDR`);
        } else if (strict && isAnywhere(cidr)) {
            r.fail(`${path}.sshAllowlist[${i}]`, `"${cidr}" opens SSH to the whole internet, which ${environment} refuses; list the operators' addresses`);
        }
    });
    const sshKeyFingerprints = r.strings(`${path}.sshKeyFingerprints`, o.sshKeyFingerprints, FINGERPRINT, "must be an MD5 key fingerprint such as 3b:16:bf:...:8c (doctl compute ssh-key list)");
    const deployPublicKey = r.string(`${path}.deployPublicKey`, o.deployPublicKey, { pattern: SSH_PUBLIC_KEY, hint: 'must be an OpenSSH public key such as "ssh-ed25519 AAAA..." (the pair of coop:sshPrivateKey)' });

    const droplets = parseDroplets(r, `${path}.droplets`, o.droplets, prod);
    const database = parseDatabase(r, `${path}.database`, o.database, region);
    const cache = parseCache(r, `${path}.cache`, o.cache, region);
    if (database && cache && database.envName === cache.envName) {
        r.fail(`${path}.cache.envName`, `"${cache.envName}" is already the database's variable`);
    }

    const dnsZones = r.strings(`${path}.dnsZones`, o.dnsZones, ZONE, "must be a DNS zone such as example.org");
    if (o.dnsZones === undefined || dnsZones.length === 0) {
        r.fail(`${path}.dnsZones`, "must list at least one DNS zone (the co-ops' domains are records in these zones)");
    }
    dnsZones.forEach((z, i) => dnsZones.indexOf(z) !== i && r.fail(`${path}.dnsZones[${i}]`, `"${z}" is listed twice`));
    const loadBalancerSizeUnits = r.integer(`${path}.loadBalancerSizeUnits`, o.loadBalancerSizeUnits, { default: 1, min: 1, max: 100 });
    const protect = r.boolean(`${path}.protect`, o.protect, prod);
    if (prod && protect === false) {
        r.fail(`${path}.protect`, "must stay true in prod: it is what stops a destroy from deleting the databases");
    }

    if (!region || !vpcIpRange || !deployPublicKey || !droplets || !database || !cache || loadBalancerSizeUnits === undefined || protect === undefined) {
        return undefined;
    }
    return { region, vpcIpRange, sshAllowlist, sshKeyFingerprints, deployPublicKey, droplets, database, cache, dnsZones, loadBalancerSizeUnits, protect };
}

function parseDroplets(r: Reader, path: string, value: unknown, prod: boolean): DropletsSpec | undefined {
    const o = r.object(path, value, ["count", "size", "image", "backups", "backupPolicy"]);
    if (!o) {
        return undefined;
    }
    const count = r.integer(`${path}.count`, o.count, { min: 1, max: 20 });
    const size = r.string(`${path}.size`, o.size, { pattern: SLUG, hint: "must be a droplet size slug such as s-1vcpu-2gb" });
    const image = r.string(`${path}.image`, o.image, { default: "ubuntu-24-04-x64", pattern: SLUG, hint: "must be an image slug such as ubuntu-24-04-x64" });
    const backups = r.boolean(`${path}.backups`, o.backups, prod);
    if (prod && backups === false) {
        r.fail(`${path}.backups`, "must be true in prod");
    }
    let backupPolicy: DropletsSpec["backupPolicy"] | undefined = { plan: "weekly", weekday: "SUN", hour: 4 };
    if (o.backupPolicy !== undefined) {
        const b = r.object(`${path}.backupPolicy`, o.backupPolicy, ["plan", "weekday", "hour"]);
        const plan = b && r.string(`${path}.backupPolicy.plan`, b.plan, { default: "weekly", pattern: /^(daily|weekly)$/, hint: "must be daily or weekly" });
        const weekday = b && r.string(`${path}.backupPolicy.weekday`, b.weekday, { default: "SUN", pattern: new RegExp(`^(${WEEKDAYS.join("|")})$`), hint: `must be one of ${WEEKDAYS.join(", ")}` });
        const hour = b && r.integer(`${path}.backupPolicy.hour`, b.hour, { default: 4, min: 0, max: 20 });
        backupPolicy = plan && weekday && hour !== undefined ? { plan: plan as "daily" | "weekly", weekday, hour } : undefined;
        if (hour !== undefined && hour % 4 !== 0) {
            r.fail(`${path}.backupPolicy.hour`, "must be 0, 4, 8, 12, 16 or 20 (DigitalOcean's backup windows)");
        }
    }
    return count !== undefined && size && image && backups !== undefined && backupPolicy ? { count, size, image, backups, backupPolicy } : undefined;
}

function parseDatabase(r: Reader, path: string, value: unknown, region: string | undefined): DatabaseSpec | undefined {
    const o = r.object(path, value, ["version", "size", "nodes", "region", "poolSize", "envName"]);
    if (!o) {
        return undefined;
    }
    const version = r.string(`${path}.version`, o.version === undefined ? undefined : String(o.version), { default: "16", pattern: /^1[3-8]$/, hint: "must be a Postgres major version from 13 to 18" });
    const size = r.string(`${path}.size`, o.size, { pattern: /^db-[a-z0-9-]+$/, hint: "must be a database size slug such as db-s-1vcpu-1gb" });
    const nodes = r.integer(`${path}.nodes`, o.nodes, { default: 1, min: 1, max: 3 });
    const cregion = clusterRegion(r, path, o.region, region);
    const poolSize = r.integer(`${path}.poolSize`, o.poolSize, { default: 3, min: 1, max: 100 });
    const envName = r.string(`${path}.envName`, o.envName, { default: DEFAULT_ENV_NAMES.database, pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, hint: "must be an environment variable name" });
    return version && size && nodes !== undefined && cregion && poolSize !== undefined && envName ? { version, size, nodes, region: cregion, poolSize, envName } : undefined;
}

function parseCache(r: Reader, path: string, value: unknown, region: string | undefined): CacheSpec | undefined {
    const o = r.object(path, value, ["version", "size", "nodes", "region", "evictionPolicy", "envName"]);
    if (!o) {
        return undefined;
    }
    const version = r.string(`${path}.version`, o.version === undefined ? undefined : String(o.version), { default: "8", pattern: /^[7-9]$/, hint: "must be a Valkey major version such as 8" });
    const size = r.string(`${path}.size`, o.size, { pattern: /^db-[a-z0-9-]+$/, hint: "must be a database size slug such as db-s-1vcpu-1gb" });
    const nodes = r.integer(`${path}.nodes`, o.nodes, { default: 1, min: 1, max: 2 });
    const cregion = clusterRegion(r, path, o.region, region);
    const evictionPolicy = r.string(`${path}.evictionPolicy`, o.evictionPolicy, { default: "allkeys_lru", pattern: new RegExp(`^(${EVICTION.join("|")})$`), hint: `must be one of ${EVICTION.join(", ")}` });
    const envName = r.string(`${path}.envName`, o.envName, { default: DEFAULT_ENV_NAMES.cache, pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, hint: "must be an environment variable name" });
    return version && size && nodes !== undefined && cregion && evictionPolicy && envName ? { version, size, nodes, region: cregion, evictionPolicy, envName } : undefined;
}

/** A cluster joins a VPC only in the VPC's own region: refuse a mismatch up front. */
function clusterRegion(r: Reader, path: string, value: unknown, vpcRegion: string | undefined): string | undefined {
    if (value === undefined) {
        return vpcRegion;
    }
    const region = r.string(`${path}.region`, value, { pattern: REGION, hint: "must be a DigitalOcean region slug such as ams3" });
    if (region !== undefined && vpcRegion !== undefined && region !== vpcRegion) {
        return r.fail(`${path}.region`, `"${region}" differs from the VPC's region "${vpcRegion}"; a cluster joins a VPC only in its own region`);
    }
    return region;
}

/** The zone a domain is a record of: the longest listed zone it ends with. */
export function zoneOf(domain: string, zones: readonly string[]): string | undefined {
    return zones.filter((z) => domain === z || domain.endsWith(`.${z}`)).sort((a, b) => b.length - a.length)[0];
}

/** Let's Encrypt names on one DigitalOcean certificate, at most. */
export const MAX_CERTIFICATE_NAMES = 100;

/**
 * The names the load balancer's certificate covers: for each zone in use, the zone and its
 * wildcard (every co-op one label below it), plus any domain deeper than that. Throws when a
 * domain is in no zone (the config parser refuses that earlier, by path).
 */
export function certificateNames(domains: string[], zones: string[]): string[] {
    const names = new Set<string>();
    for (const d of domains) {
        const zone = zoneOf(d, zones);
        if (!zone) {
            throw new Error(`certificateNames: ${d} is in none of ${zones.join(", ")}`);
        }
        const relative = d === zone ? "" : d.slice(0, -(zone.length + 1));
        if (relative.includes(".")) {
            names.add(d);
        } else {
            names.add(zone).add(`*.${zone}`);
        }
    }
    return [...names].sort();
}

/** An A record of a co-op domain in its zone (`@` for the zone's apex). */
export interface RecordSpec {
    zone: string;
    name: string;
    domain: string;
}

/** The A records for the co-op domains. Pure. */
export function dnsRecords(domains: string[], zones: string[]): RecordSpec[] {
    return domains.map((domain) => {
        const zone = zoneOf(domain, zones);
        if (!zone) {
            throw new Error(`dnsRecords: ${domain} is in none of ${zones.join(", ")}`);
        }
        return { zone, domain, name: domain === zone ? "@" : domain.slice(0, -(zone.length + 1)) };
    });
}
