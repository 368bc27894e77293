/**
 * `npm run status`: per co-op and host, what serves (digest, since when), what is kept for an
 * instant rollback, whether the live release answers its health path, who holds the lock while a
 * release runs, and whether the host agrees with the stack's history. Pure: the agents' reports
 * and the stack's live digests in, rows out.
 */
import type { HostStatusReport } from "./release";
import { formatTable } from "./releases";

export interface StatusRow {
    coop: string;
    host: string;
    /** The live release's image (digest), or null when nothing of the co-op serves there. */
    live: string | null;
    /** When the live slot's container started. */
    since: string | null;
    /** The release kept in the idle slot for an instant rollback, whether it runs, and until when (its rollback window). */
    idle: { image: string; running: boolean; until?: string } | null;
    healthy: boolean | null;
    /** The lock's holder while a release runs on the host. */
    lock: string | null;
    /** The stack's live digest for the co-op (from its history). */
    stack: string | null;
    /** The host serves what the stack says. */
    agrees: boolean;
}

/** One row per co-op of the stack (and per co-op a host has that the stack does not) and host. */
export function statusRows(stackLive: Record<string, string>, hosts: Array<{ host: string; report: HostStatusReport }>): StatusRow[] {
    const rows: StatusRow[] = [];
    for (const { host, report } of hosts) {
        const byId = new Map(report.coops.map((c) => [c.coop, c]));
        const ids = [...new Set([...Object.keys(stackLive), ...byId.keys()])].sort();
        for (const coop of ids) {
            const c = byId.get(coop);
            const live = c?.live?.image ?? null;
            const stack = stackLive[coop] ?? null;
            rows.push({
                coop,
                host,
                live,
                since: c?.live?.since || null,
                idle: c?.idle ? { image: c.idle.image, running: c.idle.running, ...(c.idle.until ? { until: c.idle.until } : {}) } : null,
                healthy: c?.healthy ?? null,
                lock: c?.lock || null,
                stack,
                agrees: live === stack && (live === null || c?.live?.running === true),
            });
        }
    }
    return rows;
}

const short = (image: string | null): string =>
    image === null ? "-" : image.includes("@sha256:") ? `${image.split("@sha256:")[0].split("/").pop()}@${image.split("@sha256:")[1].slice(0, 12)}` : image;

/** The rows as the table a person reads. */
export function formatStatus(rows: StatusRow[]): string {
    const table = [
        ["CO-OP", "HOST", "LIVE", "SINCE", "IDLE (ROLLBACK)", "HEALTH", "RELEASE RUNNING", "STACK"],
        ...rows.map((r) => [
            r.coop,
            r.host,
            short(r.live),
            r.since ?? "-",
            r.idle ? `${short(r.idle.image)}${r.idle.running ? (r.idle.until ? ` (running until ${r.idle.until})` : " (running)") : ""}` : "-",
            r.healthy === null ? "-" : r.healthy ? "ok" : "FAILING",
            r.lock ?? "-",
            r.agrees ? "agrees" : `DIFFERS: stack ${short(r.stack)}`,
        ]),
    ];
    return formatTable(table);
}
