/**
 * The contract between the program and the host agent (host/, Go): what a co-op's release on a
 * host is, as one typed document sent as data (JSON on the agent's stdin, decoded strictly on the
 * host), and what the agent answers, checked against its schema where it is read. Pure.
 */
import { z } from "zod";
import type { CoopSpec, ProxySpec } from "./config";

/** Seconds in-flight requests get to finish on the old slot unless told otherwise. */
export const DRAIN_SECONDS = 30;

/** A co-op's release on a host: the agent's `deploy` reads exactly these fields (host/internal/release). */
export interface ReleaseDocument {
    coop: string;
    /** Image pinned by digest. */
    image: string;
    port: number;
    healthPath: string;
    domains: string[];
    /** Arguments of the one-off migration container; empty for none. */
    migrate: string[];
    memory?: string;
    cpus?: string;
    /** Docker network of the host. */
    network: string;
    /** Previous releases kept for rollback. */
    retain: number;
    /** Ask the proxy for certificates for the domains. */
    tls: boolean;
    healthTimeoutSeconds: number;
    drainTimeoutSeconds: number;
    /** Seconds the previous release keeps running, idle, after the switch (a rollback inside them is a switch alone). */
    rollbackWindowSeconds: number;
}

/**
 * The backup section the agent gets with a release (host/internal/release: Backup): secrets, so it
 * is a separate, secret input of CoopRelease and never part of the visible release document.
 */
export interface BackupSection {
    /** The coop-pgtools image, pinned by digest. */
    image: string;
    /** Dumps of the co-op the store keeps. */
    keep: number;
    /** The co-op's database URL: a direct connection (pg_dump cannot go through a transaction pool). */
    database: string;
    store: { endpoint: string; region: string; bucket: string; prefix: string; accessKeyId: string; secretAccessKey: string };
}

/** The release document of a co-op on a host of `network`. */
export function releaseDocument(coop: CoopSpec, o: { network: string; tls: boolean; drainTimeoutSeconds?: number }): ReleaseDocument {
    return {
        coop: coop.id,
        image: coop.image,
        port: coop.port,
        healthPath: coop.healthPath,
        domains: coop.domains,
        migrate: coop.migrate,
        ...(coop.memory !== undefined ? { memory: coop.memory } : {}),
        ...(coop.cpus !== undefined ? { cpus: coop.cpus } : {}),
        network: o.network,
        retain: coop.retain,
        tls: o.tls,
        healthTimeoutSeconds: coop.healthTimeout,
        drainTimeoutSeconds: o.drainTimeoutSeconds ?? DRAIN_SECONDS,
        rollbackWindowSeconds: coop.rollbackWindow,
    };
}

/** What `host-up` and `host-down` read: the network and the proxy. */
export interface HostDocument {
    network: string;
    proxy: { image: string; bindAddress: string; httpPort: number; httpsPort: number };
}

export function hostDocument(network: string, proxy: ProxySpec): HostDocument {
    return { network, proxy: { image: proxy.image, bindAddress: proxy.bindAddress, httpPort: proxy.httpPort, httpsPort: proxy.httpsPort } };
}

/**
 * How long a deploy may take before the SSH command is given up: the health gate and the drain,
 * plus a quarter of an hour for the pull and the migrations. Derived, so that a long health
 * timeout never outlasts the command that waits for it.
 */
export function deployTimeoutMs(doc: Pick<ReleaseDocument, "healthTimeoutSeconds" | "drainTimeoutSeconds">): number {
    return (doc.healthTimeoutSeconds + doc.drainTimeoutSeconds + 15 * 60) * 1000;
}

/**
 * The host's current agent: the link its last install made (host/internal/cmd/install.go), which
 * the host's watch runs. The commands run from a laptop (rollback, status, logs) run it too.
 */
export function agentLink(root: string): string {
    return `${root}/bin/coop-agent`;
}

/** Where a host keeps the agent of an image: its path changes with the image's digest. */
export function agentPath(root: string, image: string): string {
    const digest = image.slice(image.indexOf("@sha256:") + "@sha256:".length);
    return `${root}/bin/coop-agent-${digest.slice(0, 12)}`;
}

const Timings = z.strictObject({ pullMs: z.number(), backupMs: z.number().optional(), migrateMs: z.number(), startMs: z.number(), switchMs: z.number(), totalMs: z.number() });

/** The agent's answer to `deploy` (host/internal/deploy: Report, NoChange). */
export const DeployReport = z.union([
    z.strictObject({
        coop: z.string(),
        changed: z.literal(true),
        reused: z.boolean(),
        slot: z.enum(["blue", "green"]),
        previousSlot: z.string(),
        image: z.string(),
        releaseKey: z.string(),
        timings: Timings,
        /** The key of the database dump taken before the migrations (host/internal/backup); absent when none was. */
        backup: z.string().optional(),
    }),
    z.strictObject({ coop: z.string(), changed: z.literal(false), slot: z.enum(["blue", "green"]), image: z.string(), releaseKey: z.string() }),
]);
export type DeployReport = z.infer<typeof DeployReport>;

/** The agent's answer to `host-up` (host/internal/cmd: HostUpReport). */
export const HostUpReport = z.strictObject({
    network: z.string(),
    networkCreated: z.boolean(),
    proxy: z.strictObject({ container: z.string(), image: z.string(), changed: z.boolean() }),
});
export type HostUpReport = z.infer<typeof HostUpReport>;

/** A line of a co-op's release record on a host (ROOT/coops/ID/releases.log; the agent's `releases`). */
export const ReleaseRecord = z.strictObject({
    time: z.string(),
    coop: z.string(),
    image: z.string(),
    slot: z.enum(["blue", "green"]),
    reused: z.boolean(),
    releaseKey: z.string(),
    by: z.string(),
    ms: z.number(),
    /** The id the deploy was given (CoopRelease gives each one); absent in records of older agents. */
    deployId: z.string().optional(),
    /** The key of the database dump taken before this release's migrations. */
    backup: z.string().optional(),
});
export type ReleaseRecord = z.infer<typeof ReleaseRecord>;

/** Parses what an agent printed against its schema; the error names what did not match. */
export function parseReport<T extends z.ZodType>(schema: T, what: string, stdout: string): z.output<T> {
    let value: unknown;
    try {
        value = JSON.parse(stdout);
    } catch {
        throw new Error(`${what}: the agent's report is not JSON: ${stdout.slice(0, 200)}`);
    }
    const r = schema.safeParse(value);
    if (!r.success) {
        throw new Error(`${what}: the agent's report does not match its schema: ${r.error.issues.map((i) => `${i.path.join(".") || "(report)"}: ${i.message}`).join("; ")}`);
    }
    return r.data;
}

const Slot = z.strictObject({
    slot: z.enum(["blue", "green"]),
    image: z.string(),
    running: z.boolean(),
    since: z.string(),
    /** The idle slot kept running in its rollback window: when it is stopped. */
    until: z.string().optional(),
});

/** The agent's answer to `status --coops` (host/internal/cmd: StatusReport; host/internal/deploy: CoopStatus). */
export const HostStatusReport = z.strictObject({
    proxy: z.strictObject({
        running: z.boolean(),
        image: z.string(),
        routes: z.array(z.strictObject({ service: z.string(), hosts: z.array(z.string()), targets: z.array(z.string()), tls: z.boolean() })),
    }),
    coops: z
        .array(
            z.strictObject({
                coop: z.string(),
                live: Slot.nullable(),
                idle: Slot.nullable(),
                healthy: z.boolean().nullable(),
                lock: z.string(),
                last: ReleaseRecord.nullable(),
            }),
        )
        .default([]),
});
export type HostStatusReport = z.infer<typeof HostStatusReport>;
