/**
 * What an interrupted `pulumi up` leaves in the stack's state: operations the engine started and
 * never saw finish (`pending_operations`). A pending create makes every later `up` warn, and
 * `pulumi refresh --yes` does not clear it. Which ones can be dropped without a person: those of
 * this project's own remote steps, which the next `up` simply runs again (an agent install,
 * host-up, a co-op's release: idempotent on the host) or which leave nothing outside the state (a
 * generated secret or host key that was never recorded). A pending create of a cloud resource
 * (a droplet, a cluster) may have made a real, billed resource: that needs a person (README,
 * "Runbook"). Pure.
 */

/** Resource types whose pending creates the next `up` redoes safely. */
export const REDONE_BY_UP = [
    "pulumi-nodejs:dynamic/coop:RemoteCommand",
    "pulumi-nodejs:dynamic/coop:CoopRelease",
    "pulumi-nodejs:dynamic/coop:RandomSecret",
    // Its create is idempotent (the role and database are made when missing, the password set anew).
    "pulumi-nodejs:dynamic/coop:LocalDatabase",
] as const;

/** A pending operation as a state export holds it (apitype.OperationV2). */
export interface PendingOperation {
    type: string;
    resource: { urn: string; type: string };
}

export interface PendingVerdict {
    /** Pending creates the next up redoes: drop them. */
    drop: PendingOperation[];
    /** Pending operations a person must look at (a cloud resource may exist without the state knowing). */
    keep: PendingOperation[];
}

export function judgePending(ops: readonly PendingOperation[]): PendingVerdict {
    const drop = ops.filter((o) => o.type === "creating" && (REDONE_BY_UP as readonly string[]).includes(o.resource.type));
    return { drop, keep: ops.filter((o) => !drop.includes(o)) };
}

/** Reads the pending operations of a state export; anything unexpected is an error that says so. */
export function pendingOperations(exported: unknown): PendingOperation[] {
    const ops = (exported as { deployment?: { pending_operations?: unknown } } | null)?.deployment?.pending_operations;
    if (ops === undefined) return [];
    if (!Array.isArray(ops)) throw new Error("the state's pending_operations is not a list");
    return ops.map((o, i) => {
        const type = (o as { type?: unknown })?.type;
        const r = (o as { resource?: { urn?: unknown; type?: unknown } })?.resource;
        if (typeof type !== "string" || typeof r?.urn !== "string" || typeof r?.type !== "string") {
            throw new Error(`the state's pending_operations[${i}] is not an operation on a resource`);
        }
        return { type, resource: { urn: r.urn, type: r.type } };
    });
}
