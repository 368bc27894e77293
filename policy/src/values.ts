/**
 * Resource properties as the rules see them: plain JSON-like data in which a value that cannot be
 * known during preview (an ID not yet assigned, an output of a resource not yet created) is the
 * {@link UNKNOWN} marker.
 *
 * @pulumi/policy hands a rule its properties behind a proxy that throws `UnknownValueError` when
 * the rule reads an unknown value, and the SDK then turns the whole policy into an advisory
 * "can't run during preview" note. {@link toPlain} reads every field once, up front, so a rule
 * can decide field by field (a VPC id unknown at preview is "set"; an unknown release image is
 * skipped and checked at `up`, where it is known).
 */
import { UnknownValueError } from "@pulumi/policy";

/** A value that is only known after the update (shown as `[unknown]` in messages). */
export const UNKNOWN: unique symbol = Symbol("unknown during preview");
export type Unknown = typeof UNKNOWN;

export type Value = string | number | boolean | null | undefined | Unknown | Value[] | { [key: string]: Value };
export type Props = { [key: string]: Value };

/** `base.key`, or `base["odd key"]`, or `key` at the top. */
export function joinKey(base: string, key: string): string {
    if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) {
        return base === "" ? key : `${base}.${key}`;
    }
    return `${base}[${JSON.stringify(key)}]`;
}

/** `base[i]`. */
export function joinIndex(base: string, i: number): string {
    return `${base}[${i}]`;
}

function read(obj: Record<string | number, unknown>, key: string | number): unknown {
    try {
        return obj[key];
    } catch (e) {
        if (e instanceof UnknownValueError) {
            return UNKNOWN;
        }
        throw e;
    }
}

function isPlainObject(v: object): boolean {
    const proto = Object.getPrototypeOf(v);
    return proto === Object.prototype || proto === null;
}

/**
 * A deep, plain copy of a policy SDK property bag in which every unknown value is {@link UNKNOWN}.
 * Objects that are not plain data (assets, archives) are kept as they are.
 */
export function toPlain(props: unknown): Value {
    if (props === null || typeof props !== "object") {
        return props as Value;
    }
    if (Array.isArray(props)) {
        const out: Value[] = [];
        for (let i = 0; i < props.length; i++) {
            out.push(toPlain(read(props as unknown as Record<number, unknown>, i)));
        }
        return out;
    }
    if (!isPlainObject(props)) {
        return props as unknown as Value;
    }
    const out: { [key: string]: Value } = {};
    for (const key of Object.keys(props)) {
        out[key] = toPlain(read(props as Record<string, unknown>, key));
    }
    return out;
}

/** The properties of a resource as a plain object (an unknown bag becomes an empty one). */
export function plainProps(props: unknown): Props {
    const v = toPlain(props);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? v : {};
}
