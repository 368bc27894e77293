/**
 * RandomSecret: a random value generated once, at create, and kept in state as a secret. It is a
 * dynamic resource for the reason command.ts gives (the random provider plugin cannot be built
 * here); Node's CSPRNG makes the bytes.
 */
import * as pulumi from "@pulumi/pulumi";
import { randomBytes, randomUUID } from "crypto";

export interface RandomSecretArgs {
    /** Bytes of randomness; the value is their base64url text. Default 32. Changing it makes a new value. */
    bytes?: pulumi.Input<number>;
}

interface RandomState {
    bytes: number;
    value: string;
}

const provider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: RandomState) {
        const bytes = inputs.bytes ?? 32;
        return { id: randomUUID(), outs: { bytes, value: randomBytes(bytes).toString("base64url") } };
    },
    async diff(_id: string, olds: RandomState, news: RandomState) {
        const changed = (olds.bytes ?? 32) !== (news.bytes ?? 32);
        return { changes: changed, replaces: changed ? ["bytes"] : [], deleteBeforeReplace: false };
    },
};

export class RandomSecret extends pulumi.dynamic.Resource {
    /** The generated value (a secret). */
    declare public readonly value: pulumi.Output<string>;

    constructor(name: string, args: RandomSecretArgs = {}, opts?: pulumi.CustomResourceOptions) {
        super(provider, name, { bytes: args.bytes ?? 32, value: undefined }, pulumi.mergeOptions(opts, { additionalSecretOutputs: ["value"] }), "coop", "RandomSecret");
    }
}
