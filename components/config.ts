/**
 * Stack configuration: the typed shape of every `coop:*` key, and one pure function that
 * turns the raw config map into that shape or into a list of errors, each naming its path
 * (`coop:hosts[0].hostKey: ...`). Nothing is registered with Pulumi until this passes.
 */

import { DEFAULT_ENV_NAMES, DigitalOceanSpec, MAX_CERTIFICATE_NAMES, behindLoadBalancer, certificateNames, parseDigitalOcean, zoneOf } from "./digitalocean/spec";

/** The environments a stack can be. `local` deploys to hosts on this machine. */
export const ENVIRONMENTS = ["local", "dev", "uat", "prod"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** An SSH endpoint the application layer deploys to. */
export interface HostSpec {
    /** Short DNS-safe name; children of the host are named after it. */
    name: string;
    /** Address the deploy connects to (an IP or a DNS name). */
    address: string;
    /** SSH port. Default 22. */
    port: number;
    /** The host's public key in OpenSSH form (`ssh-ed25519 AAAA...`); connections to any other key fail. */
    hostKey: string;
}

/** The reverse proxy every host runs in front of its co-ops. */
export interface ProxySpec {
    /** Proxy image pinned by digest (`repo@sha256:...`). */
    image: string;
    /** Host address the proxy's ports bind to. Default `0.0.0.0`. */
    bindAddress: string;
    /** Host port for HTTP. Default 80. */
    httpPort: number;
    /** Host port for HTTPS. Default 443. */
    httpsPort: number;
    /** Obtain certificates automatically (the host faces the internet). Default: true except on `local`. */
    tls: boolean;
}

/** One co-op: its own container instance, domains, config files, data volume and secrets. */
export interface CoopSpec {
    /** DNS-safe id, unique in the stack; names its containers, volume and proxy service. */
    id: string;
    /** Domains the proxy routes to this co-op; no two co-ops share one. */
    domains: string[];
    /** Image to run, pinned by digest (`repo@sha256:...`); `repo:tag` only on local and dev. */
    image: string;
    /** Port the app listens on inside the container. Default 8080. */
    port: number;
    /** Path that answers 2xx when the app is healthy. Default `/health`. */
    healthPath: string;
    /** Seconds a new release gets to answer its health path before the deploy fails. Default 60. */
    healthTimeout: number;
    /** Arguments a one-off container of the new image runs before the cutover (migrations); none by default. */
    migrate: string[];
    /** Plain environment variables. */
    env: Record<string, string>;
    /** Secret environment: variable name → name of a `coop:` config key set with `--secret`. */
    secretEnv: Record<string, string>;
    /** Variables whose values are random, generated once and kept (SECRET_KEY, JWT secrets). */
    generatedSecrets: string[];
    /** Files mounted read-only under /config: file name → content. */
    configFiles: Record<string, string>;
    /** Memory limit (`512m`, `1g`); none by default. */
    memory?: string;
    /** CPU limit (`0.5`, `2`); none by default. */
    cpus?: string;
    /** Previous releases whose images stay on the host for rollback. Default 2. */
    retain: number;
    /** Delete the data volume when the co-op is removed. Default false: data outlives the co-op. */
    deleteDataOnRemove: boolean;
}

/** The validated stack configuration. Secret values are kept out of it: see {@link SECRET_KEYS}. */
export interface StackConfig {
    environment: Environment;
    /** SSH user the deploy logs in as; must be allowed to use Docker. Default `deploy`. */
    sshUser: string;
    /** Hosts to deploy to (the local stack lists them; cloud stacks get them from droplets). */
    hosts: HostSpec[];
    /** Directory on each host that holds the deploy tool and co-op files. Default `/opt/coop`. */
    hostRoot: string;
    /** Name of the Docker network the proxy and co-ops share. Default `coop`. */
    network: string;
    proxy: ProxySpec;
    coops: CoopSpec[];
    /** The DigitalOcean infrastructure (dev, uat, prod); absent on the local stack. */
    digitalocean?: DigitalOceanSpec;
}

/** Keys that must be set as Pulumi secrets; they are read with `requireSecret`, never parsed here. */
export const SECRET_KEYS = ["sshPrivateKey"] as const;

/** Stands in for a secret value in the decoded config: the key is set, its value is not read here. */
export const SECRET_PRESENT = Symbol("secret");

/** Every key this program reads under the `coop:` namespace. */
export const KNOWN_KEYS = ["environment", "sshUser", "hosts", "hostRoot", "network", "proxy", "coops", "digitalocean", ...SECRET_KEYS] as const;

export class ConfigError extends Error {
    constructor(public readonly errors: string[]) {
        super(`invalid stack configuration:\n  ${errors.join("\n  ")}`);
        this.name = "ConfigError";
    }
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DIGEST_REF = /^[a-z0-9]+([._\-/:][a-z0-9]+)*@sha256:[a-f0-9]{64}$/;
const OPENSSH_PUBLIC_KEY = /^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) [A-Za-z0-9+/]+={0,3}( .*)?$/;
const ABSOLUTE_PATH = /^\/[A-Za-z0-9._\-/]*$/;
const TAG_REF = /^[a-z0-9]+([._\-/:][a-z0-9]+)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CONFIG_KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Values that were never filled in. Refused in uat and prod. */
const PLACEHOLDER = /CHANGE_?ME|REPLACE_?ME|<[A-Z_ ]+>|\bTODO\b/i;
const COOP_KEYS = ["id", "domains", "image", "port", "healthPath", "healthTimeout", "migrate", "env", "secretEnv", "generatedSecrets", "configFiles", "memory", "cpus", "retain", "deleteDataOnRemove"];

/** Collects errors by path while reading an untyped value. */
export class Reader {
    readonly errors: string[] = [];

    fail(path: string, message: string): undefined {
        this.errors.push(`${path}: ${message}`);
        return undefined;
    }

    string(path: string, value: unknown, opts: { default?: string; pattern?: RegExp; hint?: string } = {}): string | undefined {
        if (value === undefined) {
            return opts.default ?? this.fail(path, "is required");
        }
        if (typeof value !== "string" || value === "") {
            return this.fail(path, "must be a non-empty string");
        }
        if (opts.pattern && !opts.pattern.test(value)) {
            return this.fail(path, opts.hint ?? `must match ${opts.pattern}`);
        }
        return value;
    }

    integer(path: string, value: unknown, opts: { default?: number; min: number; max: number }): number | undefined {
        if (value === undefined && opts.default !== undefined) {
            return opts.default;
        }
        if (typeof value !== "number" || !Number.isInteger(value) || value < opts.min || value > opts.max) {
            return this.fail(path, `must be an integer from ${opts.min} to ${opts.max}`);
        }
        return value;
    }

    boolean(path: string, value: unknown, fallback: boolean): boolean | undefined {
        if (value === undefined) {
            return fallback;
        }
        return typeof value === "boolean" ? value : this.fail(path, "must be true or false");
    }

    object(path: string, value: unknown, known: readonly string[]): Record<string, unknown> | undefined {
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
            return this.fail(path, "must be an object");
        }
        for (const key of Object.keys(value)) {
            if (!known.includes(key)) {
                this.fail(`${path}.${key}`, `unknown key (known: ${known.join(", ")})`);
            }
        }
        return value as Record<string, unknown>;
    }

    array(path: string, value: unknown): unknown[] | undefined {
        return Array.isArray(value) ? value : this.fail(path, "must be a list");
    }

    /** A list of strings, each checked by `pattern`; undefined means `[]`. */
    strings(path: string, value: unknown, pattern: RegExp, hint: string): string[] {
        if (value === undefined) {
            return [];
        }
        const list = this.array(path, value) ?? [];
        return list.flatMap((v, i) => this.string(`${path}[${i}]`, v, { pattern, hint }) ?? []);
    }

    /** A map of string values whose keys match `keyPattern`; undefined means `{}`. */
    record(path: string, value: unknown, keyPattern: RegExp, keyHint: string, valuePattern?: RegExp, valueHint?: string): Record<string, string> {
        if (value === undefined) {
            return {};
        }
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
            this.fail(path, "must be a map of names to strings");
            return {};
        }
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(value)) {
            if (!keyPattern.test(k)) {
                this.fail(`${path}.${k}`, keyHint);
                continue;
            }
            if (typeof v !== "string") {
                this.fail(`${path}.${k}`, "must be a string");
                continue;
            }
            if (valuePattern && !valuePattern.test(v)) {
                this.fail(`${path}.${k}`, valueHint ?? `must match ${valuePattern}`);
                continue;
            }
            out[k] = v;
        }
        return out;
    }
}

/**
 * Reads the raw `coop:*` values (keys without the namespace, values already JSON-decoded)
 * into a {@link StackConfig}. Throws a {@link ConfigError} listing every problem found.
 */
export function parseStackConfig(raw: Record<string, unknown>, secretKeys: readonly string[] = []): StackConfig {
    const r = new Reader();
    const referenced = secretReferences(raw.coops);
    for (const key of Object.keys(raw)) {
        if (!(KNOWN_KEYS as readonly string[]).includes(key) && !referenced.has(key)) {
            r.fail(`coop:${key}`, `unknown key (known: ${KNOWN_KEYS.join(", ")}, and the keys coops[].secretEnv names)`);
        }
    }

    const environment = r.string("coop:environment", raw.environment, {
        pattern: new RegExp(`^(${ENVIRONMENTS.join("|")})$`),
        hint: `must be one of ${ENVIRONMENTS.join(", ")}`,
    }) as Environment | undefined;
    const sshUser = r.string("coop:sshUser", raw.sshUser, { default: "deploy", pattern: /^[a-z_][a-z0-9_-]{0,31}$/, hint: "must be a Unix user name" });
    const hostRoot = r.string("coop:hostRoot", raw.hostRoot, { default: "/opt/coop", pattern: ABSOLUTE_PATH, hint: "must be an absolute path of letters, digits, '.', '_', '-' and '/'" });
    const network = r.string("coop:network", raw.network, { default: "coop", pattern: DNS_LABEL, hint: "must be a DNS label (lower-case letters, digits, '-')" });

    const hosts: HostSpec[] = [];
    const rawHosts = raw.hosts === undefined ? [] : r.array("coop:hosts", raw.hosts) ?? [];
    const names = new Set<string>();
    rawHosts.forEach((h, i) => {
        const path = `coop:hosts[${i}]`;
        const o = r.object(path, h, ["name", "address", "port", "hostKey"]);
        if (!o) {
            return;
        }
        const name = r.string(`${path}.name`, o.name, { pattern: DNS_LABEL, hint: "must be a DNS label (lower-case letters, digits, '-')" });
        if (name !== undefined) {
            if (names.has(name)) {
                r.fail(`${path}.name`, `duplicates the name of an earlier host ("${name}")`);
            }
            names.add(name);
        }
        const address = r.string(`${path}.address`, o.address, { pattern: /^[A-Za-z0-9.:-]+$/, hint: "must be an IP address or a host name" });
        const port = r.integer(`${path}.port`, o.port, { default: 22, min: 1, max: 65535 });
        const hostKey = r.string(`${path}.hostKey`, o.hostKey, {
            pattern: OPENSSH_PUBLIC_KEY,
            hint: 'must be the host\'s OpenSSH public key, such as "ssh-ed25519 AAAA..." (remote commands never trust an unknown host key)',
        });
        if (name !== undefined && address !== undefined && port !== undefined && hostKey !== undefined) {
            hosts.push({ name, address, port, hostKey });
        }
    });
    if (environment === "local" && raw.hosts !== undefined && rawHosts.length === 0) {
        r.fail("coop:hosts", "must list at least one host");
    }
    if (environment === "local" && raw.hosts === undefined) {
        r.fail("coop:hosts", "is required on the local stack (scripts/local-hosts.sh up writes it)");
    }
    const cloud = environment !== undefined && environment !== "local";
    if (cloud && raw.hosts !== undefined) {
        r.fail("coop:hosts", `must not be set on ${environment}: its hosts are the droplets coop:digitalocean declares`);
    }
    let digitalocean: DigitalOceanSpec | undefined;
    if (cloud) {
        digitalocean = raw.digitalocean === undefined ? r.fail("coop:digitalocean", `is required on ${environment} (region, VPC, droplets, database, cache, DNS zones)`) : parseDigitalOcean(r, raw.digitalocean, environment);
    } else if (raw.digitalocean !== undefined) {
        r.fail("coop:digitalocean", "is only read on dev, uat and prod; the local stack deploys to coop:hosts");
    }
    const loadBalanced = behindLoadBalancer(digitalocean);

    let proxy: ProxySpec | undefined;
    const p = raw.proxy === undefined ? r.fail("coop:proxy", "is required") : r.object("coop:proxy", raw.proxy, ["image", "bindAddress", "httpPort", "httpsPort", "tls"]);
    if (p) {
        const image = r.string("coop:proxy.image", p.image, { pattern: DIGEST_REF, hint: "must be pinned by digest: REPOSITORY@sha256:<64 hex digits>" });
        const bindAddress = r.string("coop:proxy.bindAddress", p.bindAddress, { default: "0.0.0.0", pattern: /^[0-9.]+$|^[0-9a-f:]+$/, hint: "must be an IP address" });
        const httpPort = r.integer("coop:proxy.httpPort", p.httpPort, { default: 80, min: 1, max: 65535 });
        const httpsPort = r.integer("coop:proxy.httpsPort", p.httpsPort, { default: 443, min: 1, max: 65535 });
        const tls = r.boolean("coop:proxy.tls", p.tls, environment !== "local" && !loadBalanced);
        if (tls && loadBalanced) {
            r.fail("coop:proxy.tls", "must be false when droplets.count > 1: the load balancer terminates TLS and forwards plain HTTP");
        }
        if (httpPort !== undefined && httpPort === httpsPort) {
            r.fail("coop:proxy.httpsPort", "must differ from coop:proxy.httpPort");
        }
        if (image && bindAddress && httpPort !== undefined && httpsPort !== undefined && tls !== undefined) {
            proxy = { image, bindAddress, httpPort, httpsPort, tls };
        }
    }

    const coops = environment ? parseCoops(r, raw.coops, environment, new Set(secretKeys)) : [];
    if (cloud && raw.digitalocean !== undefined) {
        checkCoopsAgainstInfrastructure(r, raw.coops, coops, infraFacts(digitalocean, raw.digitalocean));
    }

    if (r.errors.length > 0 || !environment || !sshUser || !hostRoot || !network || !proxy) {
        throw new ConfigError(r.errors);
    }
    return { environment, sshUser, hosts, hostRoot, network, proxy, coops, ...(digitalocean ? { digitalocean } : {}) };
}

/** What the co-ops are checked against; read from a partly valid block too, so every error shows at once. */
interface InfraFacts {
    zones: string[];
    envNames: string[];
    loadBalanced: boolean;
}

function infraFacts(parsed: DigitalOceanSpec | undefined, raw: unknown): InfraFacts {
    if (parsed) {
        return { zones: parsed.dnsZones, envNames: [parsed.database.envName, parsed.cache.envName], loadBalanced: behindLoadBalancer(parsed) };
    }
    const o = (typeof raw === "object" && raw !== null ? raw : {}) as { dnsZones?: unknown; droplets?: { count?: unknown } };
    const zones = Array.isArray(o.dnsZones) ? o.dnsZones.filter((z): z is string => typeof z === "string") : [];
    const count = typeof o.droplets?.count === "number" ? o.droplets.count : 1;
    return { zones, envNames: [DEFAULT_ENV_NAMES.database, DEFAULT_ENV_NAMES.cache], loadBalanced: behindLoadBalancer({ droplets: { count } }) };
}

/** Each co-op domain needs a managed zone, and the variables the infrastructure sets are its own. */
function checkCoopsAgainstInfrastructure(r: Reader, rawCoops: unknown, coops: CoopSpec[], d: InfraFacts): void {
    const index = (id: string): number => (Array.isArray(rawCoops) ? rawCoops.findIndex((c) => (c as { id?: unknown } | null)?.id === id) : -1);
    for (const c of coops) {
        const path = `coop:coops[${index(c.id)}]`;
        c.domains.forEach((domain, j) => {
            if (d.zones.length > 0 && !zoneOf(domain, d.zones)) {
                r.fail(`${path}.domains[${j}]`, `"${domain}" is in none of coop:digitalocean.dnsZones (${d.zones.join(", ")})`);
            }
        });
        const own = [...Object.keys(c.env), ...Object.keys(c.secretEnv), ...c.generatedSecrets];
        for (const name of d.envNames) {
            if (own.includes(name)) {
                r.fail(path, `sets ${name}, which the stack sets from its managed database or cache`);
            }
        }
    }
    const domains = coops.flatMap((c) => c.domains).filter((x) => zoneOf(x, d.zones));
    const names = d.loadBalanced ? certificateNames(domains, d.zones).length : 0;
    if (names > MAX_CERTIFICATE_NAMES) {
        r.fail("coop:coops", `the co-op domains need ${names} names on the load balancer's certificate; Let's Encrypt allows ${MAX_CERTIFICATE_NAMES} (put co-ops one label below a zone: one wildcard covers them all)`);
    }
}

/** The config keys that co-ops' secretEnv entries name (they are allowed beside KNOWN_KEYS). */
function secretReferences(coops: unknown): Set<string> {
    const out = new Set<string>();
    if (Array.isArray(coops)) {
        for (const c of coops) {
            const se = (c as { secretEnv?: unknown } | null)?.secretEnv;
            if (se && typeof se === "object") {
                Object.values(se).forEach((v) => typeof v === "string" && out.add(v));
            }
        }
    }
    return out;
}

function parseCoops(r: Reader, value: unknown, environment: Environment, secretKeys: Set<string>): CoopSpec[] {
    if (value === undefined) {
        return [];
    }
    const list = r.array("coop:coops", value) ?? [];
    const strict = environment === "uat" || environment === "prod";
    const ids = new Map<string, number>();
    const domains = new Map<string, string>();
    const out: CoopSpec[] = [];
    list.forEach((c, i) => {
        const path = `coop:coops[${i}]`;
        const o = r.object(path, c, COOP_KEYS);
        if (!o) {
            return;
        }
        const id = r.string(`${path}.id`, o.id, { pattern: /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/, hint: "must be DNS-safe: lower-case letters, digits and '-', at most 32 characters" });
        if (id !== undefined) {
            if (ids.has(id)) {
                r.fail(`${path}.id`, `duplicates coop:coops[${ids.get(id)}].id ("${id}")`);
            } else {
                ids.set(id, i);
            }
        }
        const doms = r.strings(`${path}.domains`, o.domains, DOMAIN, "must be a lower-case domain name such as coop.example.org");
        if (o.domains === undefined || (Array.isArray(o.domains) && o.domains.length === 0)) {
            r.fail(`${path}.domains`, "must list at least one domain");
        }
        doms.forEach((d, j) => {
            const owner = domains.get(d);
            if (owner !== undefined) {
                r.fail(`${path}.domains[${j}]`, `"${d}" is already served by ${owner}`);
            } else {
                domains.set(d, id ? `coop "${id}"` : path);
            }
        });
        const image = r.string(`${path}.image`, o.image, {
            pattern: strict ? DIGEST_REF : new RegExp(`${DIGEST_REF.source}|${TAG_REF.source}`),
            hint: strict
                ? "must be pinned by digest (REPOSITORY@sha256:<64 hex digits>); a tag alone is refused in uat and prod"
                : "must be REPOSITORY@sha256:<64 hex digits> (or REPOSITORY:TAG on local and dev)",
        });
        const port = r.integer(`${path}.port`, o.port, { default: 8080, min: 1, max: 65535 });
        const healthPath = r.string(`${path}.healthPath`, o.healthPath, { default: "/health", pattern: /^\/[A-Za-z0-9._~\-/?=&%]*$/, hint: "must be an absolute URL path such as /health" });
        const healthTimeout = r.integer(`${path}.healthTimeout`, o.healthTimeout, { default: 60, min: 1, max: 3600 });
        const migrate = r.strings(`${path}.migrate`, o.migrate, /^[^\n]+$/, "must be a single-line argument");
        const env = r.record(`${path}.env`, o.env, ENV_NAME, "is not a valid environment variable name", /^[^\n]*$/, "must be a single line (env files hold one variable a line)");
        const secretEnv = r.record(`${path}.secretEnv`, o.secretEnv, ENV_NAME, "is not a valid environment variable name", CONFIG_KEY, "must name a coop: config key (letters, digits, '_', '-')");
        for (const [name, key] of Object.entries(secretEnv)) {
            if (!secretKeys.has(key)) {
                r.fail(`${path}.secretEnv.${name}`, `coop:${key} must be set as a secret (pulumi config set --secret coop:${key} ...)`);
            }
        }
        const generatedSecrets = r.strings(`${path}.generatedSecrets`, o.generatedSecrets, ENV_NAME, "is not a valid environment variable name");
        const configFiles = r.record(`${path}.configFiles`, o.configFiles, FILE_NAME, "must be a plain file name (letters, digits, '.', '_', '-')");
        const memory = o.memory === undefined ? undefined : r.string(`${path}.memory`, o.memory, { pattern: /^[0-9]+[bkmg]$/, hint: "must be a size such as 512m or 1g" });
        const cpus = o.cpus === undefined ? undefined : r.string(`${path}.cpus`, String(o.cpus), { pattern: /^[0-9]+(\.[0-9]+)?$/, hint: "must be a number of CPUs such as 0.5 or 2" });
        const retain = r.integer(`${path}.retain`, o.retain, { default: 2, min: 1, max: 20 });
        const deleteDataOnRemove = r.boolean(`${path}.deleteDataOnRemove`, o.deleteDataOnRemove, false);

        const names = [...Object.keys(env), ...Object.keys(secretEnv), ...generatedSecrets];
        names.forEach((n, k) => {
            if (names.indexOf(n) !== k) {
                r.fail(`${path}`, `environment variable ${n} is set more than once (env, secretEnv, generatedSecrets)`);
            }
        });
        if (strict) {
            for (const [k, v] of Object.entries(env)) {
                if (PLACEHOLDER.test(v)) r.fail(`${path}.env.${k}`, `holds a placeholder value; set the real value before deploying to ${environment}`);
            }
            for (const [k, v] of Object.entries(configFiles)) {
                if (PLACEHOLDER.test(v)) r.fail(`${path}.configFiles.${k}`, `holds a placeholder value; set the real value before deploying to ${environment}`);
            }
        }
        if (id && image && port !== undefined && healthPath && healthTimeout !== undefined && retain !== undefined && deleteDataOnRemove !== undefined) {
            out.push({ id, domains: doms, image, port, healthPath, healthTimeout, migrate, env, secretEnv, generatedSecrets, configFiles, memory, cpus, retain, deleteDataOnRemove });
        }
    });
    return out;
}

/**
 * Decodes Pulumi's raw config map (`{"coop:hosts": "[...]"}`, values JSON or plain strings)
 * into the namespace-free form {@link parseStackConfig} takes. Secret keys are dropped so that
 * their values never reach a parser or an error message.
 */
export function decodeRawConfig(all: Record<string, string>, secretKeys: readonly string[] = [], namespace = "coop"): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [fullKey, value] of Object.entries(all)) {
        const [ns, key] = fullKey.split(":", 2);
        if (ns !== namespace || key === undefined) {
            continue;
        }
        // A secret's value never reaches the parser: its presence is all validation needs.
        if ((SECRET_KEYS as readonly string[]).includes(key) || secretKeys.includes(key)) {
            out[key] = SECRET_PRESENT;
            continue;
        }
        try {
            out[key] = JSON.parse(value);
        } catch {
            out[key] = value;
        }
    }
    return out;
}
