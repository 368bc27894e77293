/**
 * The rules, as pure functions: a resource's properties (plain data, see values.ts) in, the list of
 * violation messages out, each naming the field (`inboundRules[0].sourceAddresses: ...`). An
 * empty list means compliant. index.ts wires them into the policy pack; test/rules.test.ts feeds
 * each a violating and a compliant input.
 *
 * A value unknown during preview ({@link UNKNOWN}) is never a violation by itself: it is checked
 * again at `pulumi up`, where it is known.
 */
import { DeployCommand, parseDeployCommand } from "./coopctl";
import { joinIndex, joinKey, Props, UNKNOWN, Value } from "./values";

export const TYPES = {
    firewall: "digitalocean:index/firewall:Firewall",
    databaseCluster: "digitalocean:index/databaseCluster:DatabaseCluster",
    databaseFirewall: "digitalocean:index/databaseFirewall:DatabaseFirewall",
    droplet: "digitalocean:index/droplet:Droplet",
    loadBalancer: "digitalocean:index/loadBalancer:LoadBalancer",
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

const ANYWHERE = new Set(["0.0.0.0/0", "::/0", "::0/0"]);

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

/** A firewall's inbound TCP rules must not open port 22 to 0.0.0.0/0 or ::/0. */
export function sshFromAnywhere(props: Props): string[] {
    const rules = props.inboundRules;
    if (!Array.isArray(rules)) {
        return [];
    }
    const out: string[] = [];
    rules.forEach((rule, i) => {
        if (!isObject(rule)) {
            return;
        }
        const protocol = rule.protocol;
        const range = rule.portRange;
        if (protocol !== "tcp" || range === UNKNOWN || !portRangeIncludes(range, 22)) {
            return;
        }
        const sources = Array.isArray(rule.sourceAddresses) ? rule.sourceAddresses : [];
        const open = sources.filter((a): a is string => typeof a === "string" && ANYWHERE.has(a.trim()));
        if (open.length > 0) {
            const ports = typeof range === "string" && range.trim() === "22" ? "22" : `port range ${show(range)} includes 22`;
            out.push(`${joinKey(joinIndex("inboundRules", i), "sourceAddresses")}: SSH (${ports}) open to ${open.join(", ")}`);
        }
    });
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

/** Inputs that can hold the co-op deploy command (RemoteCommand's `create` and `update`). */
const COMMAND_FIELDS = ["create", "update"] as const;

/** The coopctl deploy commands in a resource's command inputs, with the field each is in. */
export function coopDeploys(props: Props): { field: string; deploy: DeployCommand }[] {
    const out: { field: string; deploy: DeployCommand }[] = [];
    for (const field of COMMAND_FIELDS) {
        const v = props[field];
        if (typeof v === "string") {
            const deploy = parseDeployCommand(v);
            if (deploy) {
                out.push({ field, deploy });
            }
        }
    }
    return out;
}

/** The value coopctl uses for an option given more than once: the last. */
function last(d: DeployCommand, name: string): string | undefined {
    const values = d.options[name];
    return values && values.length > 0 ? values[values.length - 1] : undefined;
}

/** `REPOSITORY@sha256:<64 hex>` (a tag before the digest is allowed; the digest decides). */
export const DIGEST_REF = /^[^\s@]+@sha256:[0-9a-f]{64}$/;

export function coopImagePinned(props: Props): string[] {
    return coopDeploys(props).flatMap(({ field, deploy }) => {
        const image = last(deploy, "image");
        if (image === undefined) {
            return [`${field}: coopctl deploy ${deploy.id} has no --image`];
        }
        return DIGEST_REF.test(image) ? [] : [`${field}: coopctl deploy ${deploy.id} --image ${image} is not pinned by digest (REPOSITORY@sha256:<64 hex>)`];
    });
}

export function coopHealthCheck(props: Props): string[] {
    return coopDeploys(props).flatMap(({ field, deploy }) => {
        const path = last(deploy, "health-path");
        if (path === undefined || path === "") {
            return [`${field}: coopctl deploy ${deploy.id} has no --health-path (the proxy must check the new release before switching)`];
        }
        return path.startsWith("/") ? [] : [`${field}: coopctl deploy ${deploy.id} --health-path ${path} is not an absolute path (starts with /)`];
    });
}

export function coopReleaseRetention(props: Props): string[] {
    return coopDeploys(props).flatMap(({ field, deploy }) => {
        const retain = last(deploy, "retain");
        if (retain === undefined) {
            return [`${field}: coopctl deploy ${deploy.id} has no --retain (keep at least 1 previous release for rollback)`];
        }
        if (!/^\d+$/.test(retain)) {
            return [`${field}: coopctl deploy ${deploy.id} --retain ${retain} is not a whole number`];
        }
        return Number(retain) >= 1 ? [] : [`${field}: coopctl deploy ${deploy.id} --retain ${retain} keeps no previous release (needs >= 1 for rollback)`];
    });
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
