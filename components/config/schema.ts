/**
 * The stack config as a schema: each field declared once, with its type, its default and the
 * message a wrong value gets. Some rules depend on the environment (a tag is an image in dev, not
 * in prod), so the schemas of those blocks are made per environment. Types are inferred from here.
 *
 * zod (4.x) because it collects every issue with its path in one pass, refuses unknown keys with
 * strictObject, fills defaults and infers the TypeScript type from the same declaration; valibot
 * would do the same in a smaller bundle (not a concern for a Pulumi program) and typebox would
 * give JSON Schema (which nothing here consumes).
 */
import { DatabaseSlug, DropletSlug, Region } from "@pulumi/digitalocean/types/enums";
import { z } from "zod";
import {
    COOP_ID_HINT,
    DNS_LABEL_HINT,
    DOMAIN_HINT,
    ENV_NAME_HINT,
    IMAGE_DIGEST_HINT,
    LIMITS,
    REGISTRY_HOST_HINT,
    admitsEveryAddress,
    Cidr,
    canonicalCidr,
    hasLineBreakOrNul,
    isCanonicalCidr,
    isCoopId,
    isDnsLabel,
    isDomain,
    isEnvName,
    isImageDigest,
    isIpAddress,
    isPrivateIPv4Range,
    isRegistryHost,
    ipv4RangesOverlap,
    parseCidr,
    rangesAdmitEverything,
    sshPublicKeyProblem,
    sshRangeTooWide,
} from "../rules";
import { bool, int, list, object, record, str } from "./fields";

/** The environments a stack can be. `local` deploys to hosts on this machine. */
export const ENVIRONMENTS = ["local", "dev", "uat", "prod"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];
export type CloudEnvironment = Exclude<Environment, "local">;

/** Variables the stack itself writes into every co-op's environment. */
export const RESERVED_ENV_NAMES = ["COOP_ID"] as const;
/**
 * Variables the image and the loader own: set from the stack they would replace the image's
 * search path or home, or load a library into every process of the container.
 */
export const IMAGE_ENV_NAMES = ["PATH", "HOME", "HOSTNAME", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"] as const;
/** Variables the managed database's and cache's URLs reach the co-ops as, unless configured. */
export const DEFAULT_ENV_NAMES = { database: "DATABASE_URL", cache: "REDIS_URL" } as const;

/** Accounts a deploy must never log in as: root and the system accounts of Debian and Ubuntu images. */
const SYSTEM_USERS = [
    "root",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "gnats",
    "nobody",
    "_apt",
    "messagebus",
    "sshd",
    "syslog",
    "uuidd",
    "tcpdump",
    "tss",
    "landscape",
    "pollinate",
    "fwupd-refresh",
    "usbmux",
    "dnsmasq",
    "polkitd",
    "lxd",
    "docker",
    "containerd",
    "postgres",
    "redis",
    // Groups of Ubuntu's image: useradd refuses a user named after an existing group.
    "adm",
    "sudo",
    "staff",
    "users",
    "admin",
    "plugdev",
    "netdev",
    "dip",
    "cdrom",
    "floppy",
    "audio",
    "video",
    "operator",
    "shadow",
    "utmp",
    "tty",
    "disk",
    "kmem",
    "dialout",
    "fax",
    "voice",
    "src",
    "sasl",
    "input",
    "sgx",
    "kvm",
    "render",
    "crontab",
    "ssh",
    "nogroup",
    "ubuntu",
];
const SYSTEM_USER_PREFIXES = ["systemd-"];

/**
 * Where a host root may be: a directory of the program's own under /opt or /srv. cloud-init runs
 * `install -d -o DEPLOY_USER` on it, which makes the deploy user the owner of a directory that
 * already exists, and the program cannot know what an image already holds (/var/lib/dpkg,
 * /opt/digitalocean, cloud-init's per-boot scripts are each a path to root). So no list of system
 * directories is refused: one shape is accepted, /opt/coop or /srv/coop (or coop-NAME, coop_NAME,
 * coop.NAME) and any directories below it, a name no package of a distribution or a vendor uses.
 */
const HOST_ROOT_PARENTS = ["opt", "srv"];
const HOST_ROOT_OWN = /^coop(?:[._-][A-Za-z0-9._-]+)?$/;

/** Docker's own networks: a co-op network with one of these names would be the host's or none. */
const DOCKER_NETWORKS = ["host", "none", "bridge", "default", "ingress"];

const SINGLE_LINE = "must be a single line without carriage returns or NUL bytes (env files hold one variable a line)";
const CONFIG_KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Values that were never filled in (after {@link isPlaceholder}'s folding). Refused in uat and prod. */
export const PLACEHOLDER = /CHANGE[\s_.-]*ME|REPLACE[\s_.-]*ME|FIX[\s_.-]*ME|\bTODO\b|<[A-Z_ ]+>|\$\{[^}]*\}/i;
/** Cyrillic and Greek letters that look like Latin ones, folded before the placeholder test. */
const LOOK_ALIKES: Record<string, string> = Object.fromEntries([..."АВЕКМНОРСТХУІЅЈаеорсухіѕјΑΒΕΗΙΚΜΝΟΡΤΥΧΖο"].map((c, i) => [c, "ABEKMHOPCTXYISJaeopcyxisjABEHIKMNOPTYXZo"[i]]));
/**
 * True when `value` is a placeholder someone forgot to fill in: CHANGE-ME, CHANGE ME, FIXME,
 * TODO, <YOUR TOKEN>, ${VAR}, also written with full-width or look-alike letters or with
 * invisible characters between them.
 */
export function isPlaceholder(value: string): boolean {
    const folded = [...value.normalize("NFKC").replace(/[\p{Cf}]/gu, "")].map((c) => LOOK_ALIKES[c] ?? c).join("");
    return PLACEHOLDER.test(folded);
}
/**
 * Regions DigitalOcean offers: the provider's list (@pulumi/digitalocean's Region), and atl1,
 * which its own documentation uses and its list lacks. A slug outside it would fail at `up`.
 */
export const REGIONS: readonly string[] = [...Object.values(Region), "atl1"];
/** Droplet sizes DigitalOcean offers: the provider's list (@pulumi/digitalocean's DropletSlug). */
export const DROPLET_SIZES: readonly string[] = Object.values(DropletSlug);
/** Database node sizes: the basic plans exactly as the provider lists them (`db-s-1vcpu-1gb`), the other families by form (`gd-2vcpu-8gb`, `so1_5-2vcpu-16gb`...). */
const DB_SIZE = /^(?=.{1,64}$)[a-z0-9][a-z0-9_]*(-[a-z0-9_]+)*-[0-9]+vcpu-[0-9]+gb[a-z0-9_-]*$/;
const BASIC_DB_SIZES: readonly string[] = Object.values(DatabaseSlug);
const isDbSize = (v: string) => DB_SIZE.test(v) && (!v.startsWith("db-s-") || BASIC_DB_SIZES.includes(v));
const DB_SIZE_HINT = `must be a database size DigitalOcean offers, such as db-s-1vcpu-1gb (the basic plans: ${BASIC_DB_SIZES.join(", ")})`;
const REGION_HINT = `must be a region DigitalOcean offers: ${REGIONS.join(", ")}`;
/** The droplet images the cloud-init is written for: Ubuntu's LTS releases from 22.04. */
const UBUNTU_LTS = /^ubuntu-(2[2-9]|[3-9][0-9])-04-x64$/;
/** DigitalOcean offers standby nodes on every database plan but the smallest (1 GB). */
const noStandbyOnSmallest = (d: { size: string; nodes: number }) => d.nodes === 1 || !/-1gb$/.test(d.size);
const STANDBY_HINT = { error: "must be 1 on a 1 GB node: DigitalOcean offers standby nodes from 2 GB up", path: ["nodes"] };
const FINGERPRINT = /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/;
const ZONE = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] as const;
/** The provider's list for valkey_maxmemory_policy (checked at preview). */
export const EVICTION_POLICIES = ["noeviction", "allkeys-lru", "allkeys-random", "volatile-lru", "volatile-random", "volatile-ttl"] as const;
/** DigitalOcean VPC ranges: private, from /16 to /28, clear of the ranges DigitalOcean keeps for itself. */
const VPC_PREFIX = { min: 16, max: 28 };
const DO_RESERVED_RANGES = ["10.244.0.0/16", "10.245.0.0/16", "10.246.0.0/24", "10.229.0.0/16"];

// ---- plain fields -------------------------------------------------------------------------------

const hostKey = str().superRefine((v, ctx) => {
    const problem = sshPublicKeyProblem(v);
    if (problem)
        ctx.addIssue({
            code: "custom",
            message: `must be the host's OpenSSH public key, such as "ssh-ed25519 AAAA..." (remote commands never trust an unknown host key): ${problem}`,
        });
});

const digest = str(IMAGE_DIGEST_HINT, isImageDigest);

/** A memory size as Docker takes it (`512m`, `1g`), at least Docker's minimum of 6 MiB. */
const MEMORY = /^([0-9]+)([bkmg])$/;
const UNIT = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const;
export function memoryBytes(v: string): number {
    const m = MEMORY.exec(v)!;
    return Number(m[1]) * UNIT[m[2] as keyof typeof UNIT];
}
const MIN_MEMORY = 6 * 1024 ** 2;
const MAX_MEMORY = 1024 ** 4;
const memory = str("must be a size such as 512m or 1g", (v) => MEMORY.test(v)).refine((v) => memoryBytes(v) >= MIN_MEMORY && memoryBytes(v) <= MAX_MEMORY, {
    error: "must be from 6m (Docker's minimum) to 1024g",
});

/** CPUs as Docker's --cpus takes them: a number from 0.01, written as a number or a string. */
const cpus = z
    .unknown()
    .superRefine((v, ctx) => {
        const text = typeof v === "number" ? String(v) : v;
        if (typeof text !== "string" || !/^[0-9]+(\.[0-9]+)?$/.test(text)) {
            ctx.addIssue({ code: "custom", message: "must be a number of CPUs such as 0.5 or 2" });
        } else if (Number(text) < 0.01 || Number(text) > 256) {
            ctx.addIssue({ code: "custom", message: "must be from 0.01 to 256 (0 would mean no limit)" });
        }
    })
    .transform((v) => String(v));

// ---- the blocks ---------------------------------------------------------------------------------

export const Host = object({
    /** Short DNS-safe name; the host's resources are named after it. */
    name: str(DNS_LABEL_HINT, isDnsLabel),
    /** Address the deploy connects to (an IP address or a host name). */
    address: str("must be an IP address or a host name", (v) => isIpAddress(v) || /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(v)),
    /** SSH port. */
    port: int(1, 65535).default(22),
    /** The host's OpenSSH public key; connections to any other key fail. */
    hostKey,
});
export type HostSpec = z.output<typeof Host>;

export function proxySchema(defaultTls: boolean) {
    return object({
        /** Proxy image pinned by digest. */
        image: digest,
        /** Host address the proxy's ports bind to. */
        bindAddress: str("must be an IP address such as 0.0.0.0 or 127.0.0.1", isIpAddress).default("0.0.0.0"),
        /** Host port for HTTP. */
        httpPort: int(1, 65535).default(80),
        /** Host port for HTTPS. */
        httpsPort: int(1, 65535).default(443),
        /** Obtain certificates on the host (it faces the internet; no load balancer in front). */
        tls: bool().default(defaultTls),
    });
}
export type ProxySpec = z.output<ReturnType<typeof proxySchema>>;

/** A co-op's schema (some rules of a co-op depend on its environment: see index.ts). */
export function coopSchema() {
    return object({
        /** DNS-safe id, unique in the stack; names its containers, volume, proxy service and database. */
        id: str(COOP_ID_HINT, isCoopId),
        /** Domains the proxy routes to this co-op; no two co-ops share one. */
        domains: list(str(DOMAIN_HINT, isDomain), "must list at least one domain").max(LIMITS.domainsPerCoop, {
            error: `must list at most ${LIMITS.domainsPerCoop} domains (the host agent's limit)`,
        }),
        /** Image to run, pinned by digest (the host agent pulls and runs nothing else). */
        image: str("must be pinned by digest (REPOSITORY@sha256:<64 hex digits>): a tag names no fixed release, and the host agent refuses it", isImageDigest),
        /** Port the app listens on inside the container. */
        port: int(1, 65535).default(8080),
        /** Path that answers 2xx when the app is healthy. */
        healthPath: str("must be an absolute URL path such as /health", (v) => /^\/[A-Za-z0-9._~\-/?=&%]*$/.test(v)).default("/health"),
        /**
         * Path the uptime checks request (dev, uat, prod): a page the app serves with a 2xx to
         * anyone. Never the health path: the proxy answers that with 200 itself while the
         * co-op's traffic is held (a database restore), so a check of it would see nothing.
         */
        uptimePath: str("must be an absolute URL path such as /", (v) => /^\/[A-Za-z0-9._~\-/?=&%]*$/.test(v)).default("/"),
        /** Seconds a new release gets to answer its health path before the deploy fails. */
        healthTimeout: int(1, 3600).default(60),
        /** Arguments a one-off container of the new image runs before the cutover (migrations). */
        migrate: list(
            str(
                `must be a single-line argument of at most ${LIMITS.argumentLength} characters, without carriage returns or NUL bytes`,
                (v) => !hasLineBreakOrNul(v) && v.length <= LIMITS.argumentLength,
            ),
        ).default([]),
        /** Plain environment variables. */
        env: record(
            isEnvName,
            ENV_NAME_HINT,
            z.string({ error: "must be a string" }).refine((v) => !hasLineBreakOrNul(v), { error: SINGLE_LINE }),
        ).default({}),
        /** Secret environment: variable name -> name of a `coop:` config key set with --secret. */
        secretEnv: record(
            isEnvName,
            ENV_NAME_HINT,
            str("must name a coop: config key (letters, digits, '_', '-')", (v) => CONFIG_KEY.test(v)),
        ).default({}),
        /** Variables whose values are random, generated once and kept (SECRET_KEY, JWT secrets). */
        generatedSecrets: list(str(ENV_NAME_HINT, isEnvName)).default([]),
        /**
         * The variable this co-op's database URL reaches it as, for an app that reads another
         * name (Ory Hydra reads DSN). Default: the stack's (coop:digitalocean.database.envName
         * on the cloud stacks, DATABASE_URL on the local one).
         */
        databaseEnvName: str(ENV_NAME_HINT, isEnvName).optional(),
        /** Files mounted read-only under /config: file name -> content. */
        configFiles: record(
            (k) => FILE_NAME.test(k) && Buffer.byteLength(k) <= 255,
            "must be a plain file name of at most 255 bytes (letters, digits, '.', '_', '-')",
            z.string({ error: "must be a string" }),
        ).default({}),
        /** Memory limit (`512m`, `1g`); none by default. */
        memory: memory.optional(),
        /** CPU limit (`0.5`, `2`); none by default. */
        cpus: cpus.optional(),
        /** Previous releases whose images stay on the host for rollback. */
        retain: int(1, 20).default(2),
        /**
         * Seconds the previous release keeps running, idle, after each release, so that a rollback
         * inside them is a proxy switch alone (it costs that release's memory meanwhile); 0 stops
         * it as soon as it has drained, and a rollback then starts it again.
         */
        rollbackWindow: int(0, 86400).default(900),
        /** Delete the data volume when the co-op is removed; by default data outlives the co-op. */
        deleteDataOnRemove: bool().default(false),
        /**
         * What the co-op keeps in its `/data` volume, which lives on each host apart: `scratch`
         * (caches, files it can make again: the default) or `state` (the one copy of something it
         * cannot lose, such as uploads or a SQLite file), which only a stack of one host can hold.
         */
        dataVolume: z.enum(["scratch", "state"], { error: 'must be "scratch" or "state"' }).default("scratch"),
    });
}
export type CoopSpec = z.output<ReturnType<typeof coopSchema>>;

// ---- DigitalOcean (dev, uat, prod) -------------------------------------------------------------

function cidrList(anywhere: "allow" | "refuse", environment: string) {
    return list(str()).superRefine((list, ctx) => {
        const ranges: Cidr[] = [];
        list.forEach((v, i) => {
            const c = parseCidr(v);
            const wide = anywhere === "refuse" && c ? sshRangeTooWide(c) : undefined;
            if (!c) {
                ctx.addIssue({ code: "custom", path: [i], message: `"${v}" is not a valid CIDR` });
            } else if (!isCanonicalCidr(c)) {
                ctx.addIssue({ code: "custom", path: [i], message: `"${v}" has bits set beyond its /${c.prefix} prefix; the range it means is ${canonicalCidr(c)}` });
            } else if (anywhere === "refuse" && admitsEveryAddress(v)) {
                ctx.addIssue({ code: "custom", path: [i], message: `"${v}" opens SSH to the whole internet, which ${environment} refuses; list the operators' addresses` });
            } else if (wide) {
                ctx.addIssue({ code: "custom", path: [i], message: `"${v}" ${wide}, which ${environment} refuses for SSH; list the operators' addresses` });
            } else {
                ranges.push(c);
            }
        });
        // The ranges together, once each passed on its own: halves of the internet add up to all of it.
        const all = anywhere === "refuse" && ranges.length === list.length ? rangesAdmitEverything(ranges) : undefined;
        if (all) {
            ctx.addIssue({ code: "custom", message: `together admit ${all} to SSH, which ${environment} refuses; list the operators' addresses` });
        }
    });
}

const vpcIpRange = str().superRefine((v, ctx) => {
    const c = parseCidr(v);
    const problem =
        !c || c.version !== 4
            ? "must be a private IPv4 range in CIDR form such as 10.110.0.0/20"
            : !isCanonicalCidr(c)
              ? `has bits set beyond its /${c.prefix} prefix; the range it means is ${canonicalCidr(c)}`
              : !isPrivateIPv4Range(c)
                ? "must be a private range (inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16); DigitalOcean refuses public ranges for a VPC"
                : c.prefix < VPC_PREFIX.min || c.prefix > VPC_PREFIX.max
                  ? `must be from /${VPC_PREFIX.min} to /${VPC_PREFIX.max} (DigitalOcean's VPC sizes)`
                  : DO_RESERVED_RANGES.find((r) => ipv4RangesOverlap(c, parseCidr(r)!));
    if (problem && DO_RESERVED_RANGES.includes(problem)) {
        ctx.addIssue({ code: "custom", message: `overlaps ${problem}, which DigitalOcean keeps for its own networks` });
    } else if (problem) {
        ctx.addIssue({ code: "custom", message: problem });
    }
});

const deployPublicKey = str().superRefine((v, ctx) => {
    const problem = sshPublicKeyProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: `must be an OpenSSH public key such as "ssh-ed25519 AAAA..." (the pair of coop:sshPrivateKey): ${problem}` });
});

const envNameOf = (fallback: string) => str("must be an environment variable name", isEnvName).default(fallback);

function dropletsSchema(prod: boolean) {
    return object({
        /** How many droplets; more than one puts a load balancer in front. */
        count: int(1, 20),
        /** Droplet size slug, e.g. `s-1vcpu-2gb`. */
        size: str("must be a droplet size DigitalOcean offers, such as s-1vcpu-2gb or s-2vcpu-4gb (doctl compute size list)", (v) => DROPLET_SIZES.includes(v)),
        /** Base image slug: an Ubuntu LTS release, which the droplets' cloud-init is written for. */
        image: str("must be an Ubuntu LTS image such as ubuntu-24-04-x64: the droplets' cloud-init is written for Ubuntu's packages, users and groups", (v) =>
            UBUNTU_LTS.test(v),
        ).default("ubuntu-24-04-x64"),
        /** Backups with DigitalOcean's policy below; on in prod, and prod refuses them off. */
        backups: prod
            ? bool()
                  .refine((v) => v, { error: "must be true in prod" })
                  .default(true)
            : bool().default(false),
        /** Backup window: daily or weekly, the weekday and the hour (UTC) it starts. */
        backupPolicy: object({
            plan: z.enum(["daily", "weekly"], { error: "must be daily or weekly" }).default("weekly"),
            weekday: z.enum(WEEKDAYS, { error: `must be one of ${WEEKDAYS.join(", ")}` }).default("SUN"),
            hour: int(0, 20)
                .refine((h) => h % 4 === 0, { error: "must be 0, 4, 8, 12, 16 or 20 (DigitalOcean's backup windows)" })
                .default(4),
        }).default({ plan: "weekly", weekday: "SUN", hour: 4 }),
    });
}

const databaseSchema = object({
    /** Postgres major version. */
    version: z
        .union([z.string(), z.number()], { error: "must be a Postgres major version from 13 to 18" })
        .transform(String)
        .pipe(str("must be a Postgres major version from 13 to 18", (v) => /^1[3-8]$/.test(v)))
        .default("16"),
    /** Node size slug, e.g. `db-s-1vcpu-1gb`. */
    size: str(DB_SIZE_HINT, isDbSize),
    /** Nodes: 1, or 2-3 for standbys. */
    nodes: int(1, 3).default(1),
    /** Region of the cluster; must be the VPC's. Default: the stack's region. */
    region: str(REGION_HINT, (v) => REGIONS.includes(v)).optional(),
    /** Server connections each co-op's pool holds. */
    poolSize: int(1, 100).default(3),
    /** Variable the pool's connection string reaches each co-op as. */
    envName: envNameOf(DEFAULT_ENV_NAMES.database),
}).refine(noStandbyOnSmallest, STANDBY_HINT);

const cacheSchema = object({
    /** Valkey major version. */
    version: z
        .union([z.string(), z.number()], { error: "must be a Valkey major version: 7 or 8" })
        .transform(String)
        .pipe(str("must be a Valkey major version: 7 or 8", (v) => /^[78]$/.test(v)))
        .default("8"),
    /** Node size slug. */
    size: str(DB_SIZE_HINT, isDbSize),
    /** Nodes: 1, or 2 for a standby. */
    nodes: int(1, 2).default(1),
    /** Region; must be the VPC's. Default: the stack's region. */
    region: str(REGION_HINT, (v) => REGIONS.includes(v)).optional(),
    /** Valkey maxmemory policy. */
    evictionPolicy: z
        .string({ error: `must be one of ${EVICTION_POLICIES.join(", ")}` })
        .superRefine((v, ctx) => {
            if (!(EVICTION_POLICIES as readonly string[]).includes(v)) {
                const hyphen = v.replace(/_/g, "-");
                const hint = (EVICTION_POLICIES as readonly string[]).includes(hyphen) ? ` (did you mean "${hyphen}"? the provider takes hyphens)` : "";
                ctx.addIssue({ code: "custom", message: `must be one of ${EVICTION_POLICIES.join(", ")}${hint}` });
            }
        })
        .default("allkeys-lru"),
    /** Variable the cache URL reaches each co-op as (Valkey speaks the Redis protocol). */
    envName: envNameOf(DEFAULT_ENV_NAMES.cache),
}).refine(noStandbyOnSmallest, STANDBY_HINT);

/** DigitalOcean's uptime check regions. */
export const UPTIME_REGIONS = ["us_east", "us_west", "eu_west", "se_asia"] as const;
/** An address as mail systems take it: ASCII, at most 254 characters (RFC 5321's path less its brackets). */
const EMAIL = /^(?=.{3,254}$)[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$/;

/** Where and when alerts go: uptime checks of every co-op domain, droplet and database metrics. */
const alertsSchema = object({
    /** Addresses alerts are mailed to. */
    emails: list(str("must be an email address of at most 254 ASCII characters, such as ops@example.org", (v) => EMAIL.test(v))).default([]),
    /** A Slack channel; its webhook URL is a secret config key (it lets anyone post there). */
    slack: object({
        channel: str("must be a Slack channel such as #ops", (v) => /^#?[a-z0-9._-]{1,80}$/.test(v)),
        webhookKey: str("must name a coop: config key (letters, digits, '_', '-') set with --secret", (v) => CONFIG_KEY.test(v)),
    }).optional(),
    /** Alert when a droplet's CPU stays above this percentage for 5 minutes. */
    cpuPercent: int(1, 100).default(80),
    /** Alert when a droplet's memory use stays above this percentage for 5 minutes. */
    memoryPercent: int(1, 100).default(85),
    /** Alert when a droplet's disk use goes above this percentage. */
    diskPercent: int(1, 100).default(85),
    /** Regions that check each co-op domain. */
    uptimeRegions: list(z.enum(UPTIME_REGIONS, { error: `must be one of ${UPTIME_REGIONS.join(", ")}` }), "must list at least one region").default(["eu_west", "us_east"]),
});
export type AlertsSpec = z.output<typeof alertsSchema>;

/** The `coop:digitalocean` block for a cloud environment. */
export function digitaloceanSchema(environment: CloudEnvironment | undefined) {
    const strict = environment === "uat" || environment === "prod";
    const prod = environment === "prod";
    return object({
        /** Region slug of every resource, e.g. `ams3`. */
        region: str(REGION_HINT, (v) => REGIONS.includes(v)),
        /** The VPC's private range (CIDR), e.g. `10.110.0.0/20`. */
        vpcIpRange,
        /** CIDRs allowed to reach SSH; never the whole internet in uat or prod. */
        sshAllowlist: cidrList(strict ? "refuse" : "allow", environment ?? "this environment").min(1, {
            error: "must list at least one CIDR that may reach SSH (the operators' or the CI runners' addresses)",
        }),
        /** Fingerprints of account SSH keys put on the droplets for root (break-glass; root cannot log in over SSH). */
        sshKeyFingerprints: list(str("must be an MD5 key fingerprint such as 3b:16:bf:...:8c (doctl compute ssh-key list)", (v) => FINGERPRINT.test(v))).default([]),
        /** The deploy user's OpenSSH public key (the pair of `coop:sshPrivateKey`). */
        deployPublicKey,
        droplets: dropletsSchema(prod),
        database: databaseSchema,
        cache: cacheSchema,
        /** DNS zones managed here; every co-op domain must fall in one of them. */
        dnsZones: list(
            str("must be a DNS zone such as example.org", (v) => ZONE.test(v)),
            "must list at least one DNS zone (the co-ops' domains are records in these zones)",
        ).superRefine((zones, ctx) => {
            zones.forEach((z, i) => {
                const first = zones.indexOf(z);
                if (first !== i)
                    ctx.addIssue({ code: "custom", path: [i], message: `"${z}" is already coop:digitalocean.dnsZones[${first}]: each zone is one DigitalOcean domain` });
            });
        }),
        /** Load balancer size units when there is one (droplets.count > 1). */
        loadBalancerSizeUnits: int(1, 100).default(1),
        /** Uptime checks and alerts, and where the alerts go (uat and prod must name a recipient). */
        alerts: (strict
            ? alertsSchema.refine((a) => a.emails.length > 0 || a.slack !== undefined, {
                  error: `must name a recipient (emails or slack) in ${environment}: an alert nobody receives is no alert`,
              })
            : alertsSchema
        ).default({ emails: [], cpuPercent: 80, memoryPercent: 85, diskPercent: 85, uptimeRegions: ["eu_west", "us_east"] }),
        /** Protect stateful resources (clusters, droplets, zones) from deletion; on in prod, and prod refuses it off. */
        protect: prod
            ? bool()
                  .refine((v) => v, { error: "must stay true in prod: it is what stops a destroy from deleting the databases" })
                  .default(true)
            : bool().default(false),
    });
}
type DigitalOceanParsed = z.output<ReturnType<typeof digitaloceanSchema>>;
/** The DigitalOcean block with the clusters' regions filled from the stack's. */
export type DigitalOceanSpec = Omit<DigitalOceanParsed, "database" | "cache"> & {
    database: DigitalOceanParsed["database"] & { region: string };
    cache: DigitalOceanParsed["cache"] & { region: string };
};
export type DropletsSpec = DigitalOceanSpec["droplets"];
export type DatabaseSpec = DigitalOceanSpec["database"];
export type CacheSpec = DigitalOceanSpec["cache"];

// ---- top-level fields ---------------------------------------------------------------------------

export const environmentField = z.enum(ENVIRONMENTS, { error: (iss) => (iss.input === undefined ? "is required" : `must be one of ${ENVIRONMENTS.join(", ")}`) });

export const sshUserField = str("must be a Unix user name", (v) => /^[a-z_][a-z0-9_-]{0,31}$/.test(v))
    .refine((v) => !SYSTEM_USERS.includes(v) && !SYSTEM_USER_PREFIXES.some((p) => v.startsWith(p)), {
        error: "must be the deploy user, not root or a system account or group of the image (the droplets create it, and useradd refuses a name the image has; it runs Docker and nothing else)",
    })
    .default("deploy");

export const hostRootField = str("must be an absolute path of letters, digits, '.', '_', '-' and '/'", (v) => /^\/[A-Za-z0-9._\-/]*$/.test(v))
    .superRefine((v, ctx) => {
        const parts = v.split("/").slice(1);
        if (parts.some((p) => p === "" || p === "." || p === "..")) {
            ctx.addIssue({ code: "custom", message: "must be a plain path: no empty, '.' or '..' parts and no trailing '/'" });
        } else if (parts.length < 2 || !HOST_ROOT_PARENTS.includes(parts[0]) || !HOST_ROOT_OWN.test(parts[1])) {
            ctx.addIssue({
                code: "custom",
                message:
                    "must be a directory of the program's own: /opt/coop or /srv/coop (or coop-NAME under either), or a directory below one; the deploy user is made its owner, and any directory the image already has (/var/lib, /opt/digitalocean, ...) would hand it a path to root",
            });
        }
    })
    .default("/opt/coop");

export const networkField = str(DNS_LABEL_HINT, isDnsLabel)
    .refine((v) => !DOCKER_NETWORKS.includes(v), { error: `must not be one of Docker's own networks (${DOCKER_NETWORKS.join(", ")}): the co-ops need a network of their own` })
    .default("coop");

/** The keys of the `coop:` namespace this program reads (beside the secret keys co-ops name). */
export const KNOWN_KEYS = [
    "environment",
    "sshUser",
    "hosts",
    "hostRoot",
    "network",
    "proxy",
    "agent",
    "coops",
    "digitalocean",
    "sshPrivateKey",
    "backups",
    "spacesAccessKeyId",
    "spacesSecretAccessKey",
    "registries",
] as const;

/** Backups kept per co-op unless coop:backups.keep says otherwise. */
export const DEFAULT_BACKUPS_KEPT = 7;

/**
 * coop:backups: a dump of each co-op's database before every release that runs migrations
 * (README, "Backups"). On dev, uat and prod the dumps go to a Spaces bucket the program makes,
 * written with the keys coop:spacesAccessKeyId and coop:spacesSecretAccessKey (secrets); on the
 * local stack to the S3 server scripts/local-data.sh runs.
 */
export const backupsSchema = object({
    /** How many dumps of each co-op the bucket keeps (the oldest beyond go). */
    keep: int(1, 100).default(DEFAULT_BACKUPS_KEPT),
    /** The coop-pgtools image (pg_dump, pg_restore, psql), pinned by digest; its client must be as new as the cluster. */
    image: str(`${IMAGE_DIGEST_HINT} (the coop-pgtools image; scripts/build-images.sh builds one here)`, isImageDigest),
});
export type BackupsSpec = z.output<typeof backupsSchema>;

/**
 * coop:registries: the logins every host pulls with (the agent, the proxy, the co-ops' images,
 * their migrations and backups), one per registry. The token is a secret config key of its own;
 * it reaches the hosts through stdin into ROOT/registries/ (0600), never a command line.
 */
export const registriesSchema = list(
    object({
        /** The registry, as the image names start: `ghcr.io`, `registry.example.org:5000`. */
        server: str(REGISTRY_HOST_HINT, isRegistryHost),
        /** Who logs in (on GHCR: the account the token belongs to). */
        username: str("must be a user name of printable characters with no ':' or space (a registry login cannot carry them)", (v) => /^[!-9;-~]{1,255}$/.test(v)),
        /** The coop: config key, set with --secret, that holds the token (on GHCR: one with read:packages only). */
        passwordKey: str("must name a coop: config key (letters, digits, '_', '-') set with --secret", (v) => CONFIG_KEY.test(v)),
    }),
);
export type RegistryLogin = z.output<typeof registriesSchema>[number];

/** The host agent's image, pinned by digest: its version on every host (README, "The host agent"). */
export const agentField = str(`${IMAGE_DIGEST_HINT} (the host agent's image; scripts/local-hosts.sh builds one here)`, isImageDigest);

/** The whole validated stack config. */
export interface StackConfig {
    environment: Environment;
    /** SSH user the deploy logs in as; must be allowed to use Docker. */
    sshUser: string;
    /** Hosts to deploy to (the local stack lists them; cloud stacks get them from droplets). */
    hosts: HostSpec[];
    /** Directory on each host that holds the deploy tool and co-op files. */
    hostRoot: string;
    /** Name of the Docker network the proxy and co-ops share. */
    network: string;
    proxy: ProxySpec;
    /** The host agent's image, pinned by digest. */
    agent: string;
    coops: CoopSpec[];
    /** The DigitalOcean infrastructure (dev, uat, prod); absent on the local stack. */
    digitalocean?: DigitalOceanSpec;
    /** Database backups before migrations; absent: none are taken. */
    backups?: BackupsSpec;
    /** The registry logins the hosts pull with; empty: anonymous pulls (and the deploy user's own docker login). */
    registries: RegistryLogin[];
}
