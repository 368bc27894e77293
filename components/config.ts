/**
 * Stack configuration: the typed shape of every `coop:*` key, and one pure function that
 * turns the raw config map into that shape or into a list of errors, each naming its path
 * (`coop:hosts[0].hostKey: ...`). Nothing is registered with Pulumi until this passes.
 */

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

/** The validated stack configuration. Secrets are kept out of it: see {@link SECRET_KEYS}. */
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
}

/** Keys that must be set as Pulumi secrets; they are read with `requireSecret`, never parsed here. */
export const SECRET_KEYS = ["sshPrivateKey"] as const;

/** Every key this program reads under the `coop:` namespace. */
export const KNOWN_KEYS = ["environment", "sshUser", "hosts", "hostRoot", "network", "proxy", ...SECRET_KEYS] as const;

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

/** Collects errors by path while reading an untyped value. */
class Reader {
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
}

/**
 * Reads the raw `coop:*` values (keys without the namespace, values already JSON-decoded)
 * into a {@link StackConfig}. Throws a {@link ConfigError} listing every problem found.
 */
export function parseStackConfig(raw: Record<string, unknown>): StackConfig {
    const r = new Reader();
    for (const key of Object.keys(raw)) {
        if (!(KNOWN_KEYS as readonly string[]).includes(key)) {
            r.fail(`coop:${key}`, `unknown key (known: ${KNOWN_KEYS.join(", ")})`);
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

    let proxy: ProxySpec | undefined;
    const p = raw.proxy === undefined ? r.fail("coop:proxy", "is required") : r.object("coop:proxy", raw.proxy, ["image", "bindAddress", "httpPort", "httpsPort", "tls"]);
    if (p) {
        const image = r.string("coop:proxy.image", p.image, { pattern: DIGEST_REF, hint: "must be pinned by digest: REPOSITORY@sha256:<64 hex digits>" });
        const bindAddress = r.string("coop:proxy.bindAddress", p.bindAddress, { default: "0.0.0.0", pattern: /^[0-9.]+$|^[0-9a-f:]+$/, hint: "must be an IP address" });
        const httpPort = r.integer("coop:proxy.httpPort", p.httpPort, { default: 80, min: 1, max: 65535 });
        const httpsPort = r.integer("coop:proxy.httpsPort", p.httpsPort, { default: 443, min: 1, max: 65535 });
        const tls = r.boolean("coop:proxy.tls", p.tls, environment !== "local");
        if (httpPort !== undefined && httpPort === httpsPort) {
            r.fail("coop:proxy.httpsPort", "must differ from coop:proxy.httpPort");
        }
        if (image && bindAddress && httpPort !== undefined && httpsPort !== undefined && tls !== undefined) {
            proxy = { image, bindAddress, httpPort, httpsPort, tls };
        }
    }

    if (r.errors.length > 0 || !environment || !sshUser || !hostRoot || !network || !proxy) {
        throw new ConfigError(r.errors);
    }
    return { environment, sshUser, hosts, hostRoot, network, proxy };
}

/**
 * Decodes Pulumi's raw config map (`{"coop:hosts": "[...]"}`, values JSON or plain strings)
 * into the namespace-free form {@link parseStackConfig} takes. Secret keys are dropped so that
 * their values never reach a parser or an error message.
 */
export function decodeRawConfig(all: Record<string, string>, namespace = "coop"): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [fullKey, value] of Object.entries(all)) {
        const [ns, key] = fullKey.split(":", 2);
        if (ns !== namespace || key === undefined || (SECRET_KEYS as readonly string[]).includes(key)) {
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
