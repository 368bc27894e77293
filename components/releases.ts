/**
 * Releases and rollback, read from the stack's update history. Pure: the CLIs in scripts/ feed it
 * the history the Automation API returns and apply what it decides.
 *
 * A release is an update; the digests it applied are the co-ops' `image` fields in the config that
 * update ran with. Only digests are ever taken from an old update: never secrets, never anything else.
 */

/** The part of an Automation API `UpdateSummary` this module reads. */
export interface HistoryEntry {
    kind: string;
    startTime: Date | string;
    message: string;
    result: string;
    environment?: Record<string, string>;
    config?: Record<string, { value?: string; secret?: boolean }>;
}

export interface Release {
    /**
     * Position in the history, oldest first, from 1. The file backend records version 0 for every
     * update, so the position is the only stable number; it is what `--to N` takes.
     */
    number: number;
    kind: string;
    time: string;
    result: string;
    message: string;
    who: string;
    /** Image per co-op id in the config this update ran with (empty for destroy, or no co-ops). */
    images: Record<string, string>;
    /** Co-ops whose image differs from the update before. */
    changed: string[];
    /** Co-ops that run migrations, as configured in this update. */
    migrating: string[];
}

export class RollbackError extends Error {}

function coopsOf(entry: HistoryEntry): Array<{ id?: unknown; image?: unknown; migrate?: unknown }> {
    const raw = entry.config?.["coop:coops"]?.value;
    if (!raw) {
        return [];
    }
    try {
        const parsed = JSON.parse(raw);
        return Array.isArray(parsed) ? parsed : [];
    } catch {
        return [];
    }
}

/** The history oldest first, as the release numbers count it. */
function oldestFirst<T extends HistoryEntry>(history: T[]): T[] {
    // The CLI lists the newest first, and start times have one-second resolution: two updates in
    // the same second (a quick destroy, then an up) keep the CLI's order, reversed.
    return history
        .map((entry, i) => ({ entry, i }))
        .sort((a, b) => new Date(a.entry.startTime).getTime() - new Date(b.entry.startTime).getTime() || b.i - a.i)
        .map((x) => x.entry);
}

/** The history entry of the live release (see {@link liveRelease}): its config is what the hosts run. */
export function liveUpdate<T extends HistoryEntry>(history: T[]): T | undefined {
    return oldestFirst(history)
        .reverse()
        .find((e) => e.kind === "update" && e.result === "succeeded");
}

/** Numbers the history oldest first and reads each update's co-op images. */
export function releasesFromHistory(history: HistoryEntry[]): Release[] {
    let previous: Record<string, string> = {};
    return oldestFirst(history).map((entry, i) => {
        const coops = coopsOf(entry);
        const images: Record<string, string> = {};
        for (const c of coops) {
            if (typeof c.id === "string" && typeof c.image === "string") {
                images[c.id] = c.image;
            }
        }
        const ids = new Set([...Object.keys(images), ...Object.keys(previous)]);
        const changed = [...ids].filter((id) => images[id] !== previous[id]).sort();
        if (entry.kind === "update") {
            previous = images;
        }
        const env = entry.environment ?? {};
        return {
            number: i + 1,
            kind: entry.kind,
            time: new Date(entry.startTime).toISOString(),
            result: entry.result,
            message: (entry.message ?? "").split("\n")[0],
            who: env["git.author"] ?? env["pulumi.user"] ?? env["exec.kind"] ?? "",
            images,
            changed: entry.kind === "update" ? changed : [],
            migrating: coops.filter((c) => Array.isArray(c.migrate) && c.migrate.length > 0 && typeof c.id === "string").map((c) => c.id as string),
        };
    });
}

/** The release that is live: the last successful update (a failed update after it deployed nothing). */
export function liveRelease(releases: Release[]): Release | undefined {
    return [...releases].reverse().find((r) => r.kind === "update" && r.result === "succeeded");
}

export interface RollbackPlan {
    /** The update whose digests come back. */
    target: Release;
    /** The update whose digests are live now (the last successful update). */
    current: Release;
    /** The digest changes, per co-op. */
    changes: Array<{ coop: string; from: string; to: string }>;
    /** Co-ops whose migrations ran after the target; they are not undone. */
    warnings: string[];
    /** The co-ops whose migrations ran after the target (a backup from before them may be restored). */
    migrated: string[];
}

/**
 * Decides a rollback: to `to` (a release number) or, by default, to the last successful update
 * before the live one; for every co-op in both, or only `coop`. Throws a {@link RollbackError}
 * with the reason when there is nothing sound to do.
 */
export function planRollback(releases: Release[], current: Record<string, string>, opts: { to?: number; coop?: string } = {}): RollbackPlan {
    const updates = releases.filter((r) => r.kind === "update");
    const live = liveRelease(releases);
    if (!live) {
        throw new RollbackError("no successful update in this stack's history: nothing to roll back to");
    }
    let target: Release | undefined;
    if (opts.to !== undefined) {
        target = releases.find((r) => r.number === opts.to);
        if (!target) {
            throw new RollbackError(`--to ${opts.to}: no such update (this stack has updates 1 to ${releases.length}; see npm run releases)`);
        }
        if (target.kind !== "update") {
            throw new RollbackError(`--to ${opts.to}: update ${opts.to} was a ${target.kind}, not an update that deployed co-ops`);
        }
        if (target.result !== "succeeded") {
            throw new RollbackError(`--to ${opts.to}: update ${opts.to} ${target.result}; only a successful update can be rolled back to`);
        }
    } else {
        target = [...updates].reverse().find((r) => r.result === "succeeded" && r.number < live.number);
        if (!target) {
            throw new RollbackError(`no successful update before update ${live.number} (the live one): nothing to roll back to`);
        }
    }
    if (opts.coop !== undefined && !(opts.coop in current)) {
        throw new RollbackError(`--coop ${opts.coop}: no such co-op in the stack's config (co-ops: ${Object.keys(current).sort().join(", ")})`);
    }
    if (opts.coop !== undefined && !(opts.coop in target.images)) {
        throw new RollbackError(`--coop ${opts.coop}: update ${target.number} did not deploy it`);
    }
    const ids = (opts.coop !== undefined ? [opts.coop] : Object.keys(current)).filter((id) => id in target!.images).sort();
    const changes = ids.filter((id) => current[id] !== target!.images[id]).map((id) => ({ coop: id, from: current[id], to: target!.images[id] }));
    if (changes.length === 0) {
        throw new RollbackError(`update ${target.number}'s digests are already the stack's${opts.coop ? ` for ${opts.coop}` : ""}: nothing to roll back`);
    }
    const migrated: string[] = [];
    const warnings = changes.flatMap(({ coop }) => {
        // Failed updates count: migrations run before the health gate that may have failed them.
        const later = releases.find((r) => r.number > target!.number && r.kind === "update" && r.changed.includes(coop) && r.migrating.includes(coop));
        if (later) migrated.push(coop);
        return later
            ? [
                  `${coop}: migrations ran with update ${later.number} (after update ${target!.number}); they are not rolled back — check that the old release works with the newer schema`,
              ]
            : [];
    });
    return { target, current: live, changes, warnings, migrated };
}

/** A database backup in the store, as the agent's `backups` lists it (oldest first). */
export interface StoredBackup {
    key: string;
    bytes: number;
    time: string;
    /** The image of the release it preceded. */
    before: string;
    /** The image that served while it was taken. */
    live: string;
}

/**
 * The backup that puts `coop`'s database back as it was when `target` served: the first one
 * taken before the first release after the target whose migrations ran (while the target's image
 * served, before that release's image). The first: a stack that took a dump on every host (before
 * one dump a release) holds several for that release, and only the first host's was taken before
 * any migration. Failing that, the newest taken while the target's image served. Never one taken
 * before the target's update began: none at all is the answer then. `stored` is the agent's list,
 * oldest first.
 */
export function backupBefore(releases: Release[], target: Release, coop: string, stored: StoredBackup[]): StoredBackup | undefined {
    const live = target.images[coop];
    // Only dumps taken since the target's update: one of an earlier time the same image served
    // (before a rollback back to it) predates the writes made on the target's schema since, and
    // restoring it would lose them. A time that cannot be read counts as too old.
    const since = Date.parse(target.time);
    const whileLive = stored.filter((b) => b.live === live && Date.parse(b.time) >= since);
    for (const r of releases) {
        if (r.number <= target.number || r.kind !== "update" || !r.changed.includes(coop) || !r.migrating.includes(coop)) continue;
        const before = whileLive.find((b) => b.before === r.images[coop]);
        if (before) return before;
    }
    return whileLive.pop();
}

function short(image: string | undefined): string {
    if (!image) {
        return "-";
    }
    const at = image.indexOf("@sha256:");
    return at >= 0 ? `${image.slice(0, at).split("/").pop()}@${image.slice(at + 8, at + 20)}` : image;
}

/** The history as a table, oldest first: number, time, result, who/message, then per co-op its image (* = changed). */
export function formatReleases(releases: Release[]): string {
    const coops = [...new Set(releases.flatMap((r) => Object.keys(r.images)))].sort();
    const header = ["#", "time", "kind", "result", "who: message", ...coops];
    const rows = releases.map((r) => [
        String(r.number),
        r.time.replace("T", " ").slice(0, 19),
        r.kind,
        r.result,
        `${r.who}: ${r.message}`.slice(0, 50),
        ...coops.map((c) => (r.kind === "update" ? `${short(r.images[c])}${r.changed.includes(c) ? " *" : ""}` : "")),
    ]);
    return formatTable([header, ...rows]);
}

/** Rows (the first the header) as columns padded to their widest cell, two spaces apart. */
export function formatTable(table: string[][]): string {
    const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
    return table
        .map((row) =>
            row
                .map((cell, i) => cell.padEnd(widths[i]))
                .join("  ")
                .trimEnd(),
        )
        .join("\n");
}
