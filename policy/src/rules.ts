/**
 * The rules, as pure functions: a resource's properties (plain data, see values.ts) in, the list of
 * violation messages out, each naming the field (`inboundRules[0].sourceAddresses: ...`). An
 * empty list means compliant. pack.ts wires them into the policy pack; test/rules.test.ts feeds
 * each a violating and a compliant input.
 *
 * What the program, its config parser and the host agent also decide (an image pinned by digest, a
 * range that admits every address) is not restated here: it comes from the program's
 * components/rules.ts, which tsconfig.json compiles into the pack (build/components/rules.js).
 *
 * A value unknown during preview ({@link UNKNOWN}) is never a violation by itself: it is checked
 * again at `pulumi up`, where it is known.
 */
import { admitsEveryAddress, Cidr, IMAGE_DIGEST_HINT, isImageDigest, parseCidr, rangesAdmitEverything, sshRangeTooWide } from "../../components/rules";
import { joinIndex, joinKey, Props, UNKNOWN, Value } from "./values";

export const TYPES = {
    firewall: "digitalocean:index/firewall:Firewall",
    databaseCluster: "digitalocean:index/databaseCluster:DatabaseCluster",
    databaseFirewall: "digitalocean:index/databaseFirewall:DatabaseFirewall",
    droplet: "digitalocean:index/droplet:Droplet",
    loadBalancer: "digitalocean:index/loadBalancer:LoadBalancer",
    /** A co-op's release on a host (components/remote/coopRelease.ts), a Pulumi dynamic resource. */
    coopRelease: "pulumi-nodejs:dynamic/coop:CoopRelease",
} as const;

function isObject(v: Value): v is { [key: string]: Value } {
    return v !== null && typeof v === "object" && !Array.isArray(v);
}

function show(v: Value): string {
    if (v === UNKNOWN) {
        return "[unknown]";
    }
    return v === undefined ? "unset" : JSON.stringify(v);
}

// ---------------------------------------------------------------------------------------------
// no-ssh-from-anywhere

/** Whether a DigitalOcean firewall port range (`22`, `20-30`, `1-65535`, `all`, `0`) includes 22. */
export function portRangeIncludes(range: Value, port: number): boolean {
    if (range === undefined || range === null || range === "" || range === "all" || range === "0") {
        return true; // DigitalOcean reads these as every port
    }
    if (typeof range !== "string") {
        return false;
    }
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(range);
    if (!m) {
        return false;
    }
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    return lo <= port && port <= hi;
}

/**
 * A firewall's inbound TCP rules must not open port 22 to every address, nor to most of it: a
 * source range admits every address when its prefix length is 0, whatever address precedes the
 * `/0` (`1.2.3.4/0` is the whole IPv4 internet); a range wider than SSH_MIN_PREFIX (an IPv4 /8,
 * an IPv6 /16) is wider than any one network; and the sources of every rule that opens 22, taken
 * together, must not cover all of IPv4, all of IPv6 or all of global unicast IPv6 (2000::/3):
 * `0.0.0.0/1` and `128.0.0.0/1` are the whole IPv4 internet. The rules the config parser refuses
 * `sshAllowlist` by in uat and prod (components/rules.ts).
 */
export function sshFromAnywhere(props: Props): string[] {
    const rules = props.inboundRules;
    if (!Array.isArray(rules)) {
        return [];
    }
    const out: string[] = [];
    const ranges: Cidr[] = [];
    const written: string[] = [];
    rules.forEach((rule, i) => {
        if (!isObject(rule)) {
            return;
        }
        const protocol = rule.protocol;
        const range = rule.portRange;
        if (protocol !== "tcp" || range === UNKNOWN || !portRangeIncludes(range, 22)) {
            return;
        }
        const ports = typeof range === "string" && range.trim() === "22" ? "22" : `port range ${show(range)} includes 22`;
        const sources = (Array.isArray(rule.sourceAddresses) ? rule.sourceAddresses : []).filter((a): a is string => typeof a === "string");
        const open = sources.filter((a) => admitsEveryAddress(a));
        if (open.length > 0) {
            out.push(`${joinKey(joinIndex("inboundRules", i), "sourceAddresses")}: SSH (${ports}) open to ${open.join(", ")}`);
        }
        sources.forEach((a, j) => {
            const c = parseCidr(a.trim());
            if (c === undefined) return;
            ranges.push(c);
            written.push(a.trim());
            const wide = c.prefix > 0 ? sshRangeTooWide(c) : undefined;
            if (wide) out.push(`${joinIndex(joinKey(joinIndex("inboundRules", i), "sourceAddresses"), j)}: SSH (${ports}) open to ${a.trim()}, which ${wide}`);
        });
    });
    const all = out.length === 0 ? rangesAdmitEverything(ranges) : undefined;
    if (all) {
        out.push(`inboundRules: SSH open to ${all} by ${written.join(", ")} together`);
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// database-in-vpc, database-behind-firewall

function engineOf(props: Props): string {
    return typeof props.engine === "string" ? props.engine : "unknown engine";
}

/** A managed database or cache cluster must be placed in a VPC (`privateNetworkUuid`). */
export function databaseInVpc(props: Props): string[] {
    const vpc = props.privateNetworkUuid;
    if (vpc === UNKNOWN || (typeof vpc === "string" && vpc.trim() !== "")) {
        return [];
    }
    return [`privateNetworkUuid: the managed ${engineOf(props)} cluster is not inside a VPC (set privateNetworkUuid to a VPC's id)`];
}

/** A resource of a stack as {@link databaseBehindFirewall} sees it: URNs instead of objects. */
export interface StackResource {
    urn: string;
    name: string;
    type: string;
    props: Props;
    /** URNs this resource depends on. */
    dependencies: readonly string[];
    /** URNs each input property depends on. */
    propertyDependencies: Readonly<Record<string, readonly string[]>>;
}

export interface StackViolation {
    urn: string;
    message: string;
}

/**
 * Every managed database or cache cluster must have a DatabaseFirewall whose `clusterId` is that
 * cluster's id. IDs are unknown at preview, so the link is read from the firewall's property
 * dependencies (`clusterId` depends on the cluster); a known `clusterId` equal to the cluster's
 * known `id` counts too (resources read from state).
 */
export function databaseBehindFirewall(resources: readonly StackResource[]): StackViolation[] {
    const firewalls = resources.filter((r) => r.type === TYPES.databaseFirewall);
    return resources
        .filter((r) => r.type === TYPES.databaseCluster)
        .filter((cluster) => {
            const id = cluster.props.id;
            return !firewalls.some((fw) => {
                const deps = fw.propertyDependencies.clusterId ?? [];
                const clusterId = fw.props.clusterId;
                return deps.includes(cluster.urn) || (typeof id === "string" && id !== "" && clusterId === id);
            });
        })
        .map((cluster) => ({
            urn: cluster.urn,
            message:
                `clusterId: no ${TYPES.databaseFirewall} has the managed ${engineOf(cluster.props)} cluster "${cluster.name}" ` +
                "as its clusterId (add a DatabaseFirewall with clusterId: <cluster>.id and rules for the app droplets)",
        }));
}

// ---------------------------------------------------------------------------------------------
// droplet-monitoring, droplet-backups-in-prod

/** Droplets run the DigitalOcean monitoring agent. */
export function dropletMonitoring(props: Props): string[] {
    const v = props.monitoring;
    return v === true || v === UNKNOWN ? [] : [`monitoring: droplet monitoring is ${show(v)} (set monitoring: true)`];
}

/** Droplets of the environment `prod` have backups on; other environments are not checked. */
export function dropletBackups(props: Props, environment: string): string[] {
    if (environment !== "prod") {
        return [];
    }
    const v = props.backups;
    return v === true || v === UNKNOWN ? [] : [`backups: droplet backups are ${show(v)} in prod (set backups: true)`];
}

// ---------------------------------------------------------------------------------------------
// load-balancer-https-redirect

export function loadBalancerHttpsRedirect(props: Props): string[] {
    const v = props.redirectHttpToHttps;
    return v === true || v === UNKNOWN ? [] : [`redirectHttpToHttps: HTTP is not redirected to HTTPS: ${show(v)} (set redirectHttpToHttps: true)`];
}

// ---------------------------------------------------------------------------------------------
// coop-image-pinned-by-digest, coop-health-check, coop-release-retention
//
// They read the `release` input of a CoopRelease: the typed document the host agent deploys
// (components/release.ts ReleaseDocument), data the program sends as it is, not a command line.

/**
 * The field `name` of a CoopRelease's release document, with its path for messages; or the
 * violation when there is no document to read. An unknown document (or field) is returned as
 * {@link UNKNOWN}, which no rule reports.
 */
function releaseField(props: Props, name: string): { path: string; value: Value } | { problem: string } {
    const release = props.release;
    const path = joinKey("release", name);
    if (release === UNKNOWN) {
        return { path, value: UNKNOWN };
    }
    if (!isObject(release)) {
        return { problem: `release: ${show(release)}, not a release document: ${path} cannot be checked (a CoopRelease deploys its release input)` };
    }
    return { path, value: release[name] };
}

/** `release.image` is pinned by digest (components/rules.ts isImageDigest, the config parser's and the agent's rule). */
export function coopImagePinned(props: Props): string[] {
    const f = releaseField(props, "image");
    if ("problem" in f) {
        return [f.problem];
    }
    if (f.value === UNKNOWN || (typeof f.value === "string" && isImageDigest(f.value))) {
        return [];
    }
    return [`${f.path}: ${show(f.value)} is not pinned by digest (${IMAGE_DIGEST_HINT})`];
}

/** `release.healthPath` is an absolute path: the proxy checks the new slot there before it switches. */
export function coopHealthCheck(props: Props): string[] {
    const f = releaseField(props, "healthPath");
    if ("problem" in f) {
        return [f.problem];
    }
    const v = f.value;
    if (v === UNKNOWN || (typeof v === "string" && v.startsWith("/"))) {
        return [];
    }
    if (v === undefined || v === null || v === "") {
        return [`${f.path}: no health path (${show(v)}); the proxy must check the new release before switching (set an absolute path such as /health)`];
    }
    return [`${f.path}: ${show(v)} is not an absolute path (starts with /)`];
}

/** `release.retain` >= 1: the previous release stays on the host for an instant rollback. */
export function coopReleaseRetention(props: Props): string[] {
    const f = releaseField(props, "retain");
    if ("problem" in f) {
        return [f.problem];
    }
    const v = f.value;
    if (v === UNKNOWN) {
        return [];
    }
    if (typeof v !== "number" || !Number.isInteger(v)) {
        return [`${f.path}: ${show(v)} is not a whole number of previous releases (keep at least 1 for rollback)`];
    }
    return v >= 1 ? [] : [`${f.path}: ${v} keeps no previous release (needs >= 1 for rollback)`];
}

// ---------------------------------------------------------------------------------------------
// no-plaintext-secrets

const CONTENT_PATTERNS: { test: RegExp; what: string }[] = [
    { test: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/, what: "a private key block" },
    { test: /\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]+:[^\s@/]+@/i, what: "a password in a URL (scheme://user:password@)" },
    { test: /\bdo[opr]_v1_[A-Za-z0-9]{16,}/, what: "a DigitalOcean token (do?_v1_...)" },
];

/** Words of a key: `dbPassword` -> db, password; `api_token` -> api, token. */
function keyWords(key: string): string[] {
    return key
        .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
        .split(/[^A-Za-z0-9]+/)
        .filter((w) => w !== "")
        .map((w) => w.toLowerCase());
}

/** A key whose value is a secret by its name: ...password, ...secret, ...token, privateKey, apiKey, secretAccessKey. */
export function isSecretKeyName(key: string): boolean {
    const words = keyWords(key);
    const lastWord = words[words.length - 1];
    if (lastWord === undefined) {
        return false;
    }
    if (["password", "passwd", "passphrase", "secret", "token"].includes(lastWord)) {
        return true;
    }
    if (lastWord === "key" && words.length >= 2) {
        const before = words[words.length - 2];
        return ["private", "api", "secret"].includes(before) || words.includes("secret");
    }
    return false;
}

function isUnder(path: string, secret: string): boolean {
    return path === secret || secret === "" || path.startsWith(`${secret}.`) || path.startsWith(`${secret}[`);
}

/**
 * No plaintext secret-looking value in a resource's inputs: a private key block, a URL with a
 * password, a DigitalOcean token, or a non-empty string under a key named like a secret. A value at
 * (or under) one of `secretPaths` is a Pulumi secret and is fine. Messages never show the value.
 */
export function plaintextSecrets(props: Props, secretPaths: readonly string[]): string[] {
    const out: string[] = [];
    const visit = (v: Value, path: string, key: string | undefined): void => {
        if (secretPaths.some((s) => isUnder(path, s))) {
            return;
        }
        if (typeof v === "string") {
            const hit = CONTENT_PATTERNS.find((p) => p.test.test(v));
            if (hit) {
                out.push(`${path}: ${hit.what} in plaintext; pass it as a Pulumi secret`);
            } else if (key !== undefined && v.trim() !== "" && isSecretKeyName(key)) {
                out.push(`${path}: ${key} holds a plaintext string; pass it as a Pulumi secret`);
            }
        } else if (Array.isArray(v)) {
            v.forEach((e, i) => visit(e, joinIndex(path, i), key));
        } else if (isObject(v)) {
            for (const k of Object.keys(v)) {
                visit(v[k], joinKey(path, k), k);
            }
        }
    };
    for (const k of Object.keys(props)) {
        visit(props[k], joinKey("", k), k);
    }
    return out;
}
