/**
 * Stack configuration: the raw config map the CLI hands the program, turned into the typed
 * {@link StackConfig} or into a list of errors, each naming its path (`coop:hosts[0].hostKey: ...`).
 * Nothing is registered with Pulumi until this passes. Field rules live in the schema
 * (./schema.ts); the rules that relate fields to each other are below.
 */
import { utils as sshUtils } from "ssh2";
import { certificateNames, MAX_CERTIFICATE_NAMES, zoneOf } from "../digitalocean/dns";
import { cloudInit, USER_DATA_MAX_BYTES } from "../digitalocean/cloudInit";
import { IMAGE_DIGEST_HINT, hasLineBreakOrNul, printable } from "../rules";
import { formatPath, parseInto } from "./fields";
import {
    CloudEnvironment,
    CoopSpec,
    DEFAULT_ENV_NAMES,
    DigitalOceanSpec,
    Environment,
    ENVIRONMENTS,
    Host,
    HostSpec,
    IMAGE_ENV_NAMES,
    KNOWN_KEYS,
    ProxySpec,
    RESERVED_ENV_NAMES,
    StackConfig,
    agentField,
    backupsSchema,
    coopSchema,
    digitaloceanSchema,
    environmentField,
    hostRootField,
    isPlaceholder,
    memoryBytes,
    networkField,
    proxySchema,
    registriesSchema,
    RegistryLogin,
    sshUserField,
} from "./schema";

export * from "./schema";

/** Stands in for a secret value in the decoded config: the key is set, its value is not read here. */
export const SECRET_PRESENT = Symbol("secret");

/** Namespaces beside `coop:` that a stack may set (the provider's own settings, Pulumi's). */
export const OTHER_NAMESPACES = ["digitalocean", "pulumi"] as const;

/** What the parser may know about a secret without seeing it. */
export interface SecretFacts {
    /** No CR, LF or NUL: it can be a line of an env file. */
    singleLine: boolean;
    /** Its length in bytes (UTF-8). */
    bytes?: number;
    /** A placeholder never filled in (CHANGE-ME, ${VAR}, ...): refused where uat and prod read it. */
    placeholder?: boolean;
    /** A JSON list: a secret set with --path KEY[0] (the list is the value, not the secret inside it). */
    list?: boolean;
    /** For coop:sshPrivateKey: why ssh2 cannot use it, or its public half. */
    privateKey?: { problem: string } | { publicKey: string };
}

/** Everything the parser reads besides the `coop:` values. */
export interface ParseContext {
    /** The stack's name: one named after an environment must be that environment. */
    stack?: string;
    /** Facts about the secret values, by key without namespace. */
    secretFacts?: Record<string, SecretFacts>;
    /** Config keys (with namespace) outside `coop:` that the stack sets. */
    otherKeys?: string[];
    /** What the parser may know of each `digitalocean:` key the stack sets, by full key (see {@link providerFacts}). */
    providerFacts?: Record<string, ProviderFacts>;
}

/** What the parser may know about a `digitalocean:` setting without seeing a secret's value. */
export interface ProviderFacts {
    /** Set with --secret (kept encrypted in the stack file). */
    secret: boolean;
    /** Why its value cannot be this setting's (an endpoint that is not DigitalOcean's, over https). */
    problem?: string;
}

/**
 * The provider's settings (node_modules/@pulumi/digitalocean/config/vars.d.ts): any other
 * `digitalocean:` key is a misspelling the provider would ignore.
 */
export const PROVIDER_KEYS = [
    "apiEndpoint",
    "httpRetryMax",
    "httpRetryWaitMax",
    "httpRetryWaitMin",
    "requestsPerSecond",
    "spacesAccessId",
    "spacesEndpoint",
    "spacesSecretKey",
    "token",
] as const;
/** Provider settings that are credentials: the deploy workflow commits stack files, so they must be secrets. */
const PROVIDER_SECRETS = ["token", "spacesAccessId", "spacesSecretKey"];
/**
 * Where the provider may send the token and the Spaces keys: https, to a host of DigitalOcean's
 * API (api.digitalocean.com, its default, or another *.digitalocean.com) or of Spaces
 * (REGION.digitaloceanspaces.com, or the provider's default template {{.Region}}.digitaloceanspaces.com),
 * with no user, port, path or query.
 */
const PROVIDER_ENDPOINTS: Record<string, { host: RegExp; example: string }> = {
    apiEndpoint: { host: /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*digitalocean\.com$/, example: "https://api.digitalocean.com" },
    spacesEndpoint: { host: /^(?:\{\{\.region\}\}|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)\.digitaloceanspaces\.com$/, example: "https://{{.Region}}.digitaloceanspaces.com" },
};

/** Why `value` cannot be the provider setting `name`, or undefined; never shows the value. */
export function providerValueProblem(name: string, value: string): string | undefined {
    const endpoint = Object.prototype.hasOwnProperty.call(PROVIDER_ENDPOINTS, name) ? PROVIDER_ENDPOINTS[name] : undefined;
    if (!endpoint) return undefined;
    const m = /^https:\/\/([^/?#@:\s]+)\/?$/i.exec(value);
    if (!m || !endpoint.host.test(m[1].toLowerCase())) {
        return `must be https:// to a DigitalOcean host with no user, port or path, such as ${endpoint.example}: the provider sends the API token (and the Spaces keys) there`;
    }
    return undefined;
}

/** The stack's own keys that hold a secret; any other of its keys holding one was given a `secure:` inside. */
const SECRET_KEYS = ["sshPrivateKey", "spacesAccessKeyId", "spacesSecretAccessKey"];

/**
 * The kernel's limit on one string of a process's environment, `NAME=value` and its NUL
 * (MAX_ARG_STRLEN, 32 pages): a longer variable makes the container's exec fail (E2BIG).
 */
export const ENV_ENTRY_MAX_BYTES = 131072;

/** Config keys no object of the config may have: JavaScript gives them meanings (a prototype, a constructor). */
const FORBIDDEN_KEYS = ["__proto__", "constructor", "prototype"];

export class ConfigError extends Error {
    public readonly errors: string[];
    constructor(errors: string[]) {
        // Escaped: a control or invisible character in a value or key is shown, never acted on.
        const lines = errors.map(printable);
        super(`invalid stack configuration:\n  ${lines.join("\n  ")}`);
        this.errors = lines;
        this.name = "ConfigError";
    }
}

/**
 * Every `__proto__`, `constructor` or `prototype` key in a decoded value, at every level (the
 * top-level keys too): JSON holds them, a JavaScript object loses or misreads them (`__proto__`
 * sets its prototype, which no key check sees).
 */
function protoKeys(value: unknown, path: PropertyKey[], out: string[]): void {
    if (Array.isArray(value)) {
        value.forEach((v, i) => protoKeys(v, [...path, i], out));
    } else if (value !== null && typeof value === "object") {
        for (const k of Object.keys(value)) {
            if (FORBIDDEN_KEYS.includes(k)) out.push(`${formatPath([...path, k])}: "${k}" cannot be a name here (a JavaScript object cannot hold it as a plain key)`);
            protoKeys((value as Record<string, unknown>)[k], [...path, k], out);
        }
    }
}

/** The config keys that co-ops' secretEnv entries, the Slack webhook and the registry logins name (allowed beside KNOWN_KEYS). */
function secretReferences(coops: unknown, digitalocean?: unknown, registries?: unknown): Set<string> {
    const out = new Set<string>();
    if (Array.isArray(registries)) registries.forEach((r) => typeof dig(r, "passwordKey") === "string" && out.add(dig(r, "passwordKey") as string));
    const webhook = dig(digitalocean, "alerts", "slack", "webhookKey");
    if (typeof webhook === "string") out.add(webhook);
    if (Array.isArray(coops)) {
        for (const c of coops) {
            const se = (c as { secretEnv?: unknown } | null)?.secretEnv;
            if (se && typeof se === "object") Object.values(se).forEach((v) => typeof v === "string" && out.add(v));
        }
    }
    return out;
}

/** vCPUs and memory of a droplet size slug (`s-2vcpu-4gb`, `c-4`), when the slug says. */
export function dropletCapacity(size: string): { cpus: number; memoryBytes: number } | undefined {
    const m = /(?:^|-)([0-9]+)vcpu-([0-9]+)(gb|mb)(?:-|$)/.exec(size);
    if (m) return { cpus: Number(m[1]), memoryBytes: Number(m[2]) * 1024 ** (m[3] === "gb" ? 3 : 2) };
    const c = /^c2?-([0-9]+)$/.exec(size);
    return c ? { cpus: Number(c[1]), memoryBytes: Number(c[1]) * 2 * 1024 ** 3 } : undefined;
}

/** Connections a managed Postgres node of this size serves to pools: 25 per GB, less 3 kept back. */
export function postgresConnections(size: string): number | undefined {
    const m = /-([0-9]+)gb/.exec(size);
    return m ? Number(m[1]) * 25 - 3 : undefined;
}

/**
 * Reads the raw `coop:*` values (keys without the namespace, values JSON-decoded, secrets as
 * {@link SECRET_PRESENT}) into a {@link StackConfig}. Throws a {@link ConfigError} listing every
 * problem found.
 */
export function parseStackConfig(raw: Record<string, unknown>, secretKeys: readonly string[] = [], ctx: ParseContext = {}): StackConfig {
    const errors: string[] = [];
    const fail = (path: string, message: string) => errors.push(`${path}: ${message}`);
    const secrets = new Set(secretKeys);
    const facts = ctx.secretFacts ?? {};

    for (const key of ctx.otherKeys ?? []) {
        const [ns, name] = key.split(":", 2);
        if (!(OTHER_NAMESPACES as readonly string[]).includes(ns)) {
            const guess = (KNOWN_KEYS as readonly string[]).includes(name) ? ` (did you mean coop:${name}?)` : "";
            fail(key, `unknown namespace "${ns}": this program reads coop:, and the provider settings digitalocean:${guess}`);
        } else if (ns === "digitalocean") {
            checkProviderSetting(key, name, ctx.providerFacts?.[key], fail);
        }
    }
    const referenced = secretReferences(raw.coops, raw.digitalocean, raw.registries);
    for (const key of Object.keys(raw)) {
        if (!FORBIDDEN_KEYS.includes(key) && !(KNOWN_KEYS as readonly string[]).includes(key) && !referenced.has(key)) {
            fail(`coop:${key}`, `unknown key (known: ${KNOWN_KEYS.join(", ")}, and the keys coops[].secretEnv, the Slack webhook and registries[].passwordKey name)`);
        }
    }
    protoKeys(raw, [], errors);
    // A `secure:` inside a structured key (pulumi config set --secret --path coop:coops[0].env.X)
    // makes the whole key one secret: the program gets it as a secret, not as the list it is.
    const sealed = (KNOWN_KEYS as readonly string[]).filter((k) => !SECRET_KEYS.includes(k) && raw[k] === SECRET_PRESENT);
    for (const k of sealed) {
        fail(
            `coop:${k}`,
            `holds a secret value inside it (a secure: entry, as pulumi config set --secret --path writes), which makes all of coop:${k} one secret the program does not read as config; put the secret in a key of its own (pulumi config set --secret coop:NAME ...) and name it, as coops[].secretEnv and registries[].passwordKey do`,
        );
    }
    const sealedErrors = errors.length;

    const environment = parseInto(environmentField, raw.environment, ["environment"], errors) as Environment | undefined;
    if (environment && ctx.stack && (ENVIRONMENTS as readonly string[]).includes(ctx.stack) && ctx.stack !== environment) {
        fail(
            "coop:environment",
            `is "${environment}" on the stack named ${ctx.stack}: a stack named after an environment must be that environment (it takes its resource names and its guards)`,
        );
    }
    const cloud = environment !== undefined && environment !== "local";
    if (cloud && ctx.stack !== undefined && ctx.stack !== environment && !(ENVIRONMENTS as readonly string[]).includes(ctx.stack)) {
        fail(
            "coop:environment",
            `is "${environment}" on the stack named ${ctx.stack}: a cloud stack is named after its environment, whose resource names and tags it takes (coop-${environment}-...), which ${environment}'s firewalls and databases admit`,
        );
    }
    const sshUser = parseInto(sshUserField, raw.sshUser, ["sshUser"], errors);
    const hostRoot = parseInto(hostRootField, raw.hostRoot, ["hostRoot"], errors);
    const network = parseInto(networkField, raw.network, ["network"], errors);

    const hosts = parseHosts(raw.hosts, environment, errors);
    const strict = environment === "uat" || environment === "prod";
    let digitalocean: DigitalOceanSpec | undefined;
    if (cloud) {
        digitalocean =
            raw.digitalocean === undefined
                ? void fail("coop:digitalocean", `is required on ${environment} (region, VPC, droplets, database, cache, DNS zones)`)
                : parseDigitalOcean(raw.digitalocean, environment, errors);
    } else if (raw.digitalocean !== undefined) {
        fail("coop:digitalocean", "is only read on dev, uat and prod; the local stack deploys to coop:hosts");
    }
    const loadBalanced = cloud && numberOr(dig(raw.digitalocean, "droplets", "count"), 1) > 1;

    let proxy: ProxySpec | undefined;
    if (raw.proxy === undefined) {
        fail("coop:proxy", "is required");
    } else {
        proxy = parseInto(proxySchema(cloud && !loadBalanced), raw.proxy, ["proxy"], errors);
        const p = raw.proxy as Record<string, unknown>;
        if (cloud && proxy) {
            // The firewall admits 80 and 443, and the load balancer forwards to 80, on the droplet's public and private addresses.
            if (proxy.httpPort !== 80) fail("coop:proxy.httpPort", `must be 80 on ${environment}: the firewall and the load balancer send HTTP to port 80`);
            if (proxy.httpsPort !== 443) fail("coop:proxy.httpsPort", `must be 443 on ${environment}: the firewall admits HTTPS on port 443`);
            if (proxy.bindAddress !== "0.0.0.0" && proxy.bindAddress !== "::")
                fail("coop:proxy.bindAddress", `must be 0.0.0.0 (or ::) on ${environment}: the load balancer and the internet reach the droplet on its own addresses`);
        }
        if (p?.tls === true && loadBalanced) {
            fail("coop:proxy.tls", "must be false when droplets.count > 1: the load balancer terminates TLS and forwards plain HTTP");
        }
        if (strict && !loadBalanced && proxy?.tls === false) {
            fail("coop:proxy.tls", `must be true on ${environment} with one droplet: nothing else in front of it terminates TLS, and the co-ops would be served over plain HTTP`);
        }
        if (p !== null && typeof p === "object" && (p.httpPort ?? 80) === (p.httpsPort ?? 443)) {
            fail("coop:proxy.httpsPort", "must differ from coop:proxy.httpPort");
        }
    }

    const agent =
        raw.agent === undefined ? void fail("coop:agent", `is required: ${IMAGE_DIGEST_HINT} (the host agent's image)`) : parseInto(agentField, raw.agent, ["agent"], errors);
    const coops = environment ? parseCoops(raw.coops, environment, errors) : [];
    if (loadBalanced && Array.isArray(raw.coops) && raw.coops.length === 0) {
        fail("coop:coops", "must list at least one co-op when droplets.count > 1: the load balancer's certificate covers the co-op domains, and one with no name cannot be issued");
    } else if (loadBalanced && raw.coops === undefined) {
        fail("coop:coops", "is required when droplets.count > 1: the load balancer's certificate covers the co-op domains");
    }
    const registries = raw.registries === undefined ? [] : (parseInto(registriesSchema, raw.registries, ["registries"], errors) ?? []);
    // On the raw entries, so that a duplicate shows beside another entry's field errors.
    const servers = (Array.isArray(raw.registries) ? raw.registries : []).map((r) => dig(r, "server"));
    servers.forEach((server, i) => {
        const first = servers.findIndex((x) => typeof x === "string" && typeof server === "string" && x.toLowerCase() === server.toLowerCase());
        if (typeof server === "string" && first !== i) fail(`coop:registries[${i}].server`, `"${server}" is already coop:registries[${first}].server: one login per registry`);
    });
    checkSecretEnv(coops, secrets, facts, fail);
    checkRegistryLogins(registries, secrets, facts, fail);
    const uses = secretUses(coops, digitalocean?.alerts.slack?.webhookKey, registries);
    checkSecretPurposes(uses, fail);
    checkSecretValues(uses, facts, strict ? environment : undefined, fail);
    const hostCount = cloud ? numberOr(dig(raw.digitalocean, "droplets", "count"), 1) : hosts.length;
    checkDataVolumes(coops, hostCount, cloud ? "coop:digitalocean.droplets.count" : "coop:hosts", fail);
    const webhook = digitalocean?.alerts.slack?.webhookKey;
    if (webhook !== undefined && (KNOWN_KEYS as readonly string[]).includes(webhook)) {
        fail(
            "coop:digitalocean.alerts.slack.webhookKey",
            `coop:${webhook} is the stack's own setting${webhook === "sshPrivateKey" ? " (the deploy key)" : ""}, never the Slack webhook URL: it would be sent to DigitalOcean as one; name a key of its own`,
        );
    } else if (webhook !== undefined && !secrets.has(webhook)) {
        fail("coop:digitalocean.alerts.slack.webhookKey", `coop:${webhook} must be set as a secret (pulumi config set --secret coop:${webhook} https://hooks.slack.com/...)`);
    }
    if (cloud && raw.digitalocean !== undefined) {
        checkCoopsAgainstInfrastructure(coops, raw.digitalocean, digitalocean, loadBalanced, fail);
    }

    if (raw.sshPrivateKey === undefined) {
        fail("coop:sshPrivateKey", "is required: the deploy key (pulumi config set --secret coop:sshPrivateKey < deploy_key)");
    } else if (!secrets.has("sshPrivateKey")) {
        fail("coop:sshPrivateKey", "must be set as a secret (pulumi config set --secret coop:sshPrivateKey < deploy_key): a plain value would be committed with the stack file");
    } else {
        const pk = facts.sshPrivateKey?.privateKey;
        if (pk && "problem" in pk) {
            fail("coop:sshPrivateKey", pk.problem);
        } else if (pk && digitalocean && publicKeyBlob(digitalocean.deployPublicKey) !== publicKeyBlob(pk.publicKey)) {
            fail("coop:digitalocean.deployPublicKey", "is not the public half of coop:sshPrivateKey: the droplets would let in a key the deploy does not hold");
        }
    }
    if (digitalocean && environment && sshUser && hostRoot) {
        const bytes = userDataBytes(environment, digitalocean.droplets.count, sshUser, hostRoot, digitalocean.deployPublicKey);
        if (bytes > USER_DATA_MAX_BYTES) {
            fail(
                "coop:digitalocean.deployPublicKey",
                `makes the droplets' user data ${bytes} bytes, more than DigitalOcean's ${USER_DATA_MAX_BYTES} (64 KiB): its comment is ${digitalocean.deployPublicKey.split(" ").slice(2).join(" ").length} characters; shorten it`,
            );
        }
    }

    const backups = raw.backups === undefined ? undefined : parseInto(backupsSchema, raw.backups, ["backups"], errors);
    if (cloud && raw.backups !== undefined) {
        for (const key of ["spacesAccessKeyId", "spacesSecretAccessKey"] as const) {
            if (raw[key] === undefined) {
                fail(`coop:${key}`, `is required with coop:backups: the key of the Spaces bucket the backups go to (pulumi config set --secret coop:${key} ...)`);
            } else if (!secrets.has(key)) {
                fail(`coop:${key}`, `must be set as a secret (pulumi config set --secret coop:${key} ...): a plain value would be committed with the stack file`);
            }
        }
    } else {
        for (const key of ["spacesAccessKeyId", "spacesSecretAccessKey"] as const) {
            if (raw[key] !== undefined)
                fail(`coop:${key}`, cloud ? "is only read with coop:backups" : "is only read on dev, uat and prod (the local stack's S3 server has keys of its own)");
        }
    }

    if (errors.length > 0 || !environment || !sshUser || !hostRoot || !network || !proxy || !agent) {
        // What the parse says of a sealed key after its own line is about the secret it became.
        const under = (l: string) => sealed.some((k) => l.startsWith(`coop:${k}:`) || l.startsWith(`coop:${k}.`) || l.startsWith(`coop:${k}[`));
        throw new ConfigError([...errors.slice(0, sealedErrors), ...errors.slice(sealedErrors).filter((l) => !under(l))]);
    }
    return {
        environment,
        sshUser,
        hosts,
        hostRoot,
        network,
        proxy,
        agent,
        coops: coops.map(({ index: _, ...c }) => c),
        ...(digitalocean ? { digitalocean } : {}),
        ...(backups ? { backups } : {}),
        registries,
    };
}

function dig(v: unknown, ...keys: string[]): unknown {
    return keys.reduce<unknown>((o, k) => (o !== null && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), v);
}

function objectOr(v: unknown): Record<string, unknown> {
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function stringsOr(v: unknown): string[] {
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function numberOr(v: unknown, fallback: number): number {
    return typeof v === "number" ? v : fallback;
}

function publicKeyBlob(line: string): string {
    return line.trim().split(/\s+/)[1] ?? "";
}

function parseHosts(value: unknown, environment: Environment | undefined, errors: string[]): HostSpec[] {
    const fail = (path: string, message: string) => errors.push(`${path}: ${message}`);
    if (environment !== undefined && environment !== "local") {
        if (value !== undefined) fail("coop:hosts", `must not be set on ${environment}: its hosts are the droplets coop:digitalocean declares`);
        return [];
    }
    if (value === undefined) {
        if (environment === "local") fail("coop:hosts", "is required on the local stack (scripts/local-hosts.sh up writes this machine's hosts to .local/machine.json)");
        return [];
    }
    if (!Array.isArray(value)) {
        fail("coop:hosts", "must be a list");
        return [];
    }
    if (value.length === 0) fail("coop:hosts", "must list at least one host");
    const hosts: HostSpec[] = [];
    const seen = new Set<string>();
    const endpoints = new Map<string, number>();
    value.forEach((h, i) => {
        const name = dig(h, "name");
        if (typeof name === "string") {
            if (seen.has(name)) fail(`coop:hosts[${i}].name`, `duplicates the name of an earlier host ("${name}")`);
            seen.add(name);
        }
        const address = dig(h, "address");
        if (typeof address === "string") {
            const endpoint = `${address.toLowerCase()} port ${numberOr(dig(h, "port"), 22)}`;
            const first = endpoints.get(endpoint);
            if (first !== undefined) fail(`coop:hosts[${i}].address`, `${endpoint} is already coop:hosts[${first}]: two hosts at one address are one machine, deployed to twice`);
            else endpoints.set(endpoint, i);
        }
        const host = parseInto(Host, h, ["hosts", i], errors);
        if (host) hosts.push(host);
    });
    return hosts;
}

function parseDigitalOcean(value: unknown, environment: CloudEnvironment, errors: string[]): DigitalOceanSpec | undefined {
    const d = parseInto(digitaloceanSchema(environment), value, ["digitalocean"], errors);
    const region = dig(value, "region");
    for (const block of ["database", "cache"] as const) {
        const r = dig(value, block, "region");
        if (typeof r === "string" && typeof region === "string" && r !== region) {
            errors.push(`coop:digitalocean.${block}.region: "${r}" differs from the VPC's region "${region}"; a cluster joins a VPC only in its own region`);
            return undefined;
        }
    }
    if (!d) return undefined;
    const spec: DigitalOceanSpec = { ...d, database: { ...d.database, region: d.database.region ?? d.region }, cache: { ...d.cache, region: d.cache.region ?? d.region } };
    if (spec.database.envName === spec.cache.envName) {
        errors.push(`coop:digitalocean.cache.envName: "${spec.cache.envName}" is already the database's variable`);
    }
    for (const block of ["database", "cache"] as const) {
        if ((RESERVED_ENV_NAMES as readonly string[]).includes(spec[block].envName)) {
            errors.push(`coop:digitalocean.${block}.envName: ${spec[block].envName} is set by the stack itself (the co-op's id); choose another name`);
        } else if ((IMAGE_ENV_NAMES as readonly string[]).includes(spec[block].envName)) {
            errors.push(`coop:digitalocean.${block}.envName: ${spec[block].envName} belongs to the image and the loader, not to a URL; choose another name`);
        }
    }
    return spec;
}

function parseCoops(value: unknown, environment: Environment, errors: string[]): Array<CoopSpec & { index: number }> {
    const fail = (path: string, message: string) => errors.push(`${path}: ${message}`);
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
        fail("coop:coops", "must be a list");
        return [];
    }
    const strict = environment === "uat" || environment === "prod";
    const schema = coopSchema();
    const ids = new Map<string, number>();
    const domains = new Map<string, string>();
    const out: Array<CoopSpec & { index: number }> = [];
    value.forEach((raw, i) => {
        const path = `coop:coops[${i}]`;
        const id = dig(raw, "id");
        if (typeof id === "string") {
            if (ids.has(id)) fail(`${path}.id`, `duplicates coop:coops[${ids.get(id)}].id ("${id}")`);
            else ids.set(id, i);
        }
        const rawDomains = dig(raw, "domains");
        if (Array.isArray(rawDomains)) {
            rawDomains.forEach((d, j) => {
                if (typeof d !== "string") return;
                const owner = domains.get(d);
                if (owner !== undefined) fail(`${path}.domains[${j}]`, `"${d}" is already served by ${owner}`);
                else domains.set(d, typeof id === "string" ? `coop "${id}"` : path);
            });
        }
        const c = parseInto(schema, raw, ["coops", i], errors);
        // Checked on the raw entry, so that they show beside the entry's field errors.
        const rawNames = [...Object.keys(objectOr(dig(raw, "env"))), ...Object.keys(objectOr(dig(raw, "secretEnv"))), ...stringsOr(dig(raw, "generatedSecrets"))];
        rawNames.forEach((n, k) => {
            if (rawNames.indexOf(n) !== k) fail(path, `environment variable ${n} is set more than once (env, secretEnv, generatedSecrets)`);
        });
        for (const n of RESERVED_ENV_NAMES) {
            if (rawNames.includes(n)) fail(path, `sets ${n}, which the stack sets itself (the co-op's id)`);
        }
        for (const n of IMAGE_ENV_NAMES) {
            if (rawNames.includes(n)) fail(path, `sets ${n}, which belongs to the image and the loader (it would replace the image's own, or load a library into every process)`);
        }
        const dbName = dig(raw, "databaseEnvName");
        if (typeof dbName === "string" && ([...IMAGE_ENV_NAMES, ...RESERVED_ENV_NAMES] as readonly string[]).includes(dbName)) {
            fail(`${path}.databaseEnvName`, `${dbName} belongs to the image or the stack, not to a URL; choose another name`);
        }
        if (!c) return;
        if (c.uptimePath.split("?")[0] === c.healthPath.split("?")[0]) {
            fail(
                `${path}.uptimePath`,
                `"${c.uptimePath}" is the health path, which the proxy answers with 200 itself while the co-op's traffic is held (a database restore): the uptime checks would never see it down; name a page the app serves, such as /`,
            );
        }
        for (const [k, v] of Object.entries(c.env)) {
            const bytes = Buffer.byteLength(`${k}=${v}`) + 1;
            if (bytes > ENV_ENTRY_MAX_BYTES)
                fail(
                    `${path}.env.${k}`,
                    `is ${bytes} bytes as NAME=value, more than the ${ENV_ENTRY_MAX_BYTES} the kernel passes a process for one variable (the container would not start); put it in configFiles`,
                );
        }
        if (strict) {
            const placeholder = (at: string, v: string) => isPlaceholder(v) && fail(at, `holds a placeholder value; set the real value before deploying to ${environment}`);
            for (const [k, v] of Object.entries(c.env)) placeholder(`${path}.env.${k}`, v);
            for (const [k, v] of Object.entries(c.configFiles)) placeholder(`${path}.configFiles.${k}`, v);
            c.migrate?.forEach((v, k) => placeholder(`${path}.migrate[${k}]`, v));
            c.domains.forEach((v, k) => placeholder(`${path}.domains[${k}]`, v));
        }
        out.push({ ...c, index: i });
    });
    return out;
}

/** Where a secret key is named: the Slack webhook, a registry's token, a co-op's environment (in that order). */
interface SecretUse {
    path: string;
    key: string;
    /** What the key is there, for a message (`the token of ghcr.io (coop:registries[0].passwordKey)`). */
    what: string;
    /** For a co-op's environment: the co-op's index and the variable's name. */
    coop?: number;
    envName?: string;
}

function secretUses(coops: Array<CoopSpec & { index: number }>, webhook: string | undefined, logins: RegistryLogin[]): SecretUse[] {
    const path = "coop:digitalocean.alerts.slack.webhookKey";
    return [
        ...(webhook !== undefined ? [{ path, key: webhook, what: `the Slack webhook URL (${path})` }] : []),
        ...logins.map((l, i) => ({ path: `coop:registries[${i}].passwordKey`, key: l.passwordKey, what: `the token of ${l.server} (coop:registries[${i}].passwordKey)` })),
        ...coops.flatMap((c) =>
            Object.entries(c.secretEnv).map(([name, key]) => {
                const at = `coop:coops[${c.index}].secretEnv.${name}`;
                return { path: at, key, what: `co-op "${c.id}"'s environment (${at})`, coop: c.index, envName: name };
            }),
        ),
    ];
}

/**
 * What is known of each secret that reaches a co-op, the Slack webhook or a registry: not a list
 * (a secret set with --path KEY[0] reaches the env as the JSON text of a list), small enough to
 * be one variable of a process, and in uat and prod no placeholder.
 */
function checkSecretValues(uses: SecretUse[], facts: Record<string, SecretFacts>, strictEnvironment: string | undefined, fail: (path: string, message: string) => void): void {
    for (const { path, key, envName } of uses) {
        const f = Object.prototype.hasOwnProperty.call(facts, key) ? facts[key] : undefined;
        if (f === undefined) continue;
        if (f.list) {
            fail(
                path,
                `coop:${key} holds a list with a secret inside (pulumi config set --secret --path coop:${key}[0] writes one); set the secret itself: pulumi config set --secret coop:${key} VALUE`,
            );
        } else if (strictEnvironment && f.placeholder) {
            fail(path, `coop:${key} holds a placeholder value; set the real secret before deploying to ${strictEnvironment}`);
        } else if (envName !== undefined && f.bytes !== undefined && Buffer.byteLength(envName) + 2 + f.bytes > ENV_ENTRY_MAX_BYTES) {
            fail(
                path,
                `the value of coop:${key} is more than the ${ENV_ENTRY_MAX_BYTES} bytes the kernel passes a process for one variable (the container would not start); put it in a config file`,
            );
        }
    }
}

/** The size of a droplet's user data with this stack's deploy user, root and key (a host key's size does not vary). */
function userDataBytes(environment: string, count: number, deployUser: string, hostRoot: string, deployPublicKey: string): number {
    const pair = sshUtils.generateKeyPairSync("ed25519", { comment: `${environment}-app-${count}` });
    return Buffer.byteLength(cloudInit({ deployUser, deployPublicKey, hostRoot, hostKey: { publicKey: pair.public.trim(), privateKey: pair.private } }));
}

/** Each secretEnv entry names a key set as a secret, one the stack does not keep for itself, with a value an env file can hold. */
function checkSecretEnv(coops: Array<CoopSpec & { index: number }>, secrets: Set<string>, facts: Record<string, SecretFacts>, fail: (path: string, message: string) => void): void {
    for (const c of coops) {
        for (const [name, key] of Object.entries(c.secretEnv)) {
            const path = `coop:coops[${c.index}].secretEnv.${name}`;
            if ((KNOWN_KEYS as readonly string[]).includes(key)) {
                fail(path, `coop:${key} is the stack's own setting${key === "sshPrivateKey" ? " (the deploy key)" : ""}; a co-op never gets it`);
            } else if (!secrets.has(key)) {
                fail(path, `coop:${key} must be set as a secret (pulumi config set --secret coop:${key} ...)`);
            } else if (facts[key] && !facts[key].singleLine) {
                fail(path, `the value of coop:${key} spans lines or holds a NUL byte, which an env file cannot hold`);
            }
        }
    }
}

/** Each registry login's token is a secret key of its own, one line (a login cannot hold a line break). */
function checkRegistryLogins(logins: RegistryLogin[], secrets: Set<string>, facts: Record<string, SecretFacts>, fail: (path: string, message: string) => void): void {
    logins.forEach((l, i) => {
        const path = `coop:registries[${i}].passwordKey`;
        if ((KNOWN_KEYS as readonly string[]).includes(l.passwordKey)) {
            fail(
                path,
                `coop:${l.passwordKey} is the stack's own setting${l.passwordKey === "sshPrivateKey" ? " (the deploy key)" : ""}, never a registry's token: it would be sent to ${l.server}; name a key of its own`,
            );
        } else if (!secrets.has(l.passwordKey)) {
            fail(path, `coop:${l.passwordKey} must be set as a secret (pulumi config set --secret coop:${l.passwordKey} < token)`);
        } else if (facts[l.passwordKey] && !facts[l.passwordKey].singleLine) {
            fail(path, `the value of coop:${l.passwordKey} spans lines or holds a NUL byte, which no registry token does`);
        }
    });
}

/**
 * A secret key serves one purpose: the Slack webhook URL, one registry's token, or the
 * environment of one co-op (the stack's own keys, such as the deploy key and the Spaces keys, are
 * refused for each of them elsewhere). A key named by two purposes would hand one purpose's
 * secret to the other: a co-op's token to another co-op or to a registry, the webhook URL to a
 * co-op's environment.
 */
function checkSecretPurposes(uses: SecretUse[], fail: (path: string, message: string) => void): void {
    const purposes = new Map<string, SecretUse>();
    for (const use of uses) {
        // The stack's own keys are refused for each purpose by checkRegistryLogins and checkSecretEnv.
        if ((KNOWN_KEYS as readonly string[]).includes(use.key)) continue;
        const used = purposes.get(use.key);
        if (used === undefined) purposes.set(use.key, use);
        // One co-op may name a key for two of its variables; anything else is a second purpose.
        else if (use.coop === undefined || used.coop !== use.coop)
            fail(use.path, `coop:${use.key} is already ${used.what}; a secret key serves one purpose, so give this one a key of its own`);
    }
}

/** A `digitalocean:` setting: one the provider reads, a credential only as a secret, an endpoint only DigitalOcean's. */
function checkProviderSetting(key: string, name: string, facts: ProviderFacts | undefined, fail: (path: string, message: string) => void): void {
    if (!(PROVIDER_KEYS as readonly string[]).includes(name)) {
        fail(key, `unknown key: the DigitalOcean provider reads ${PROVIDER_KEYS.join(", ")}`);
    } else if (PROVIDER_SECRETS.includes(name) && facts !== undefined && !facts.secret) {
        fail(key, `must be set as a secret (pulumi config set --secret ${key} ...): a plain value would be committed with the stack file`);
    } else if (facts?.problem) {
        fail(key, facts.problem);
    }
}

/**
 * A co-op's `/data` volume lives on each host apart, and a load balancer sends each request to any
 * of them: with more than one host there is no single copy, so a co-op whose volume holds state
 * is refused rather than given one copy per host that drift apart.
 */
function checkDataVolumes(coops: Array<CoopSpec & { index: number }>, hostCount: number, countPath: string, fail: (path: string, message: string) => void): void {
    if (hostCount <= 1) return;
    for (const c of coops.filter((x) => x.dataVolume === "state")) {
        fail(
            `coop:coops[${c.index}].dataVolume`,
            `"state" needs the one copy of /data on one host, and this stack has ${hostCount} hosts (${countPath}), each with its own copy behind the load balancer; keep the state in the database or object storage and say "scratch", or run one host`,
        );
    }
}

/** Each co-op domain needs a managed zone; limits fit the droplets; the pools fit the database. */
function checkCoopsAgainstInfrastructure(
    coops: Array<CoopSpec & { index: number }>,
    raw: unknown,
    spec: DigitalOceanSpec | undefined,
    loadBalanced: boolean,
    fail: (path: string, message: string) => void,
): void {
    const rawZones = dig(raw, "dnsZones");
    const zones = spec?.dnsZones ?? (Array.isArray(rawZones) ? rawZones.filter((z): z is string => typeof z === "string") : []);
    const envNames = spec ? [spec.database.envName, spec.cache.envName] : [DEFAULT_ENV_NAMES.database, DEFAULT_ENV_NAMES.cache];
    const capacity = spec ? dropletCapacity(spec.droplets.size) : undefined;
    for (const c of coops) {
        const path = `coop:coops[${c.index}]`;
        c.domains.forEach((domain, j) => {
            if (zones.length > 0 && !zoneOf(domain, zones)) fail(`${path}.domains[${j}]`, `"${domain}" is in none of coop:digitalocean.dnsZones (${zones.join(", ")})`);
        });
        const own = [...Object.keys(c.env), ...Object.keys(c.secretEnv), ...c.generatedSecrets];
        const names = c.databaseEnvName !== undefined ? [c.databaseEnvName, envNames[1]] : envNames;
        for (const name of names) {
            if (own.includes(name)) fail(path, `sets ${name}, which the stack sets from its managed database or cache`);
        }
        if (c.databaseEnvName !== undefined && c.databaseEnvName === envNames[1]) {
            fail(`${path}.databaseEnvName`, `${c.databaseEnvName} is the cache's variable (coop:digitalocean.cache.envName); choose another name`);
        }
        if (capacity && c.cpus !== undefined && Number(c.cpus) > capacity.cpus) {
            fail(`${path}.cpus`, `${c.cpus} is more than the ${capacity.cpus} vCPUs of a ${spec!.droplets.size} droplet`);
        }
        if (capacity && c.memory !== undefined && memoryBytes(c.memory) > capacity.memoryBytes) {
            fail(`${path}.memory`, `${c.memory} is more than the memory of a ${spec!.droplets.size} droplet`);
        }
    }
    if (spec) {
        const connections = postgresConnections(spec.database.size);
        const needed = coops.length * spec.database.poolSize;
        if (connections !== undefined && needed > connections) {
            fail(
                "coop:digitalocean.database.poolSize",
                `${coops.length} co-ops × ${spec.database.poolSize} connections = ${needed}, more than the ${connections} a ${spec.database.size} node serves; use a larger size or a smaller pool`,
            );
        }
    }
    const domains = coops.flatMap((c) => c.domains).filter((x) => zoneOf(x, zones));
    const names = loadBalanced ? certificateNames(domains, zones).length : 0;
    if (names > MAX_CERTIFICATE_NAMES) {
        fail(
            "coop:coops",
            `the co-op domains need ${names} names on the load balancer's certificate; Let's Encrypt allows ${MAX_CERTIFICATE_NAMES} (put co-ops one label below a zone: one wildcard covers them all)`,
        );
    }
}

/** What the parser may know of each secret (see {@link SecretFacts}), from the decrypted values. Never logs them. */
export function secretFacts(values: Record<string, string>): Record<string, SecretFacts> {
    const out: Record<string, SecretFacts> = {};
    for (const [key, value] of Object.entries(values)) {
        let list = false;
        try {
            list = Array.isArray(JSON.parse(value));
        } catch {
            // not JSON: a plain secret
        }
        Object.defineProperty(out, key, {
            value: { singleLine: !hasLineBreakOrNul(value), bytes: Buffer.byteLength(value), placeholder: isPlaceholder(value), list },
            enumerable: true,
            writable: true,
        });
        if (key === "sshPrivateKey") out[key].privateKey = privateKeyFacts(value);
    }
    return out;
}

function privateKeyFacts(text: string): SecretFacts["privateKey"] {
    const parsed = sshUtils.parseKey(text);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key instanceof Error || key === undefined) {
        const reason = key instanceof Error && /encrypted/i.test(key.message) ? "it is encrypted with a passphrase, which the deploy cannot give" : "ssh2 cannot read it";
        return { problem: `is not a usable OpenSSH private key: ${reason}` };
    }
    if (!key.isPrivateKey()) {
        return { problem: "is a public key; the deploy needs the private key" };
    }
    return { publicKey: `${key.type} ${key.getPublicSSH().toString("base64")}` };
}

/**
 * Decodes Pulumi's raw config map (`{"coop:hosts": "[...]"}`, values JSON or plain strings) into
 * the namespace-free form {@link parseStackConfig} takes, the facts about secrets, and the keys of
 * other namespaces. Secret values never reach the parser or a message.
 */
export function readConfig(
    all: Record<string, string>,
    secretKeys: readonly string[],
    namespace = "coop",
): { raw: Record<string, unknown>; secretKeys: string[]; ctx: ParseContext } {
    const raw: Record<string, unknown> = {};
    // Defined, not assigned: `coop:__proto__` stays a key the parser sees (and refuses), never the prototype.
    const set = (key: string, value: unknown) => Object.defineProperty(raw, key, { value, enumerable: true, writable: true, configurable: true });
    const coopSecrets: string[] = [];
    const secretValues: Record<string, string> = {};
    const otherKeys: string[] = [];
    const providers: Record<string, ProviderFacts> = {};
    for (const [fullKey, value] of Object.entries(all)) {
        const colon = fullKey.indexOf(":");
        const ns = fullKey.slice(0, colon);
        const key = fullKey.slice(colon + 1);
        if (ns !== namespace) {
            otherKeys.push(fullKey);
            if (ns === "digitalocean") {
                const problem = providerValueProblem(key, value);
                Object.defineProperty(providers, fullKey, { value: { secret: secretKeys.includes(fullKey), ...(problem ? { problem } : {}) }, enumerable: true });
            }
            continue;
        }
        if (secretKeys.includes(fullKey)) {
            set(key, SECRET_PRESENT);
            coopSecrets.push(key);
            Object.defineProperty(secretValues, key, { value, enumerable: true });
            continue;
        }
        try {
            set(key, JSON.parse(value));
        } catch {
            set(key, value);
        }
    }
    return { raw, secretKeys: coopSecrets, ctx: { secretFacts: secretFacts(secretValues), otherKeys, providerFacts: providers } };
}

/** Kept for the callers that decode without facts (tests, scripts): like {@link readConfig}, values only. */
export function decodeRawConfig(all: Record<string, string>, secretKeys: readonly string[] = [], namespace = "coop"): Record<string, unknown> {
    const full = secretKeys.map((k) => (k.includes(":") ? k : `${namespace}:${k}`));
    return readConfig(all, [...full, `${namespace}:sshPrivateKey`], namespace).raw;
}
