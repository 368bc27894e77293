/**
 * SshHostKey: an ed25519 SSH host key made once by the program, so a droplet's key is known
 * (and pinned by every remote command) before the droplet boots. It stands in for
 * `@pulumi/tls`'s PrivateKey, whose provider plugin cannot be built here (README, "The
 * toolchain"); ssh2's key generator writes both halves in OpenSSH form.
 */
import * as pulumi from "@pulumi/pulumi";
import { randomUUID } from "crypto";
import { isSshPublicKey } from "../rules";

export interface SshHostKeyArgs {
    /** Comment at the end of the public key (the host's name). Changing it does not make a new key. */
    comment: pulumi.Input<string>;
}

interface KeyState {
    comment: string;
    publicKey: string;
    privateKey: string;
}

/**
 * A new ed25519 key pair in OpenSSH form. ssh2's generator writes about one key in 230 with its
 * public half one byte short (a leading zero byte is dropped, as if it were a number), and then
 * cannot read its own private half: such a pair is thrown away and another made.
 */
export function generateHostKey(comment: string): { publicKey: string; privateKey: string } {
    // Required here, not at the top: the provider's code is serialized into state.
    const { utils } = require("ssh2") as typeof import("ssh2");
    for (let attempt = 1; attempt <= 16; attempt++) {
        const pair = utils.generateKeyPairSync("ed25519", { comment });
        const publicKey = pair.public.trim();
        if (isSshPublicKey(publicKey) && !(utils.parseKey(pair.private) instanceof Error)) {
            return { publicKey, privateKey: pair.private };
        }
    }
    throw new Error("could not make a well-formed ed25519 key pair in 16 attempts");
}

/** The provider, exported so a test can run its serialized code as the engine does. */
export const provider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: KeyState) {
        return { id: randomUUID(), outs: { comment: inputs.comment, ...generateHostKey(inputs.comment) } };
    },
    async diff() {
        // A key is for the life of its host: nothing about the inputs replaces it.
        return { changes: false };
    },
};

export class SshHostKey extends pulumi.dynamic.Resource {
    /** `ssh-ed25519 AAAA... comment`: what connections pin. */
    declare public readonly publicKey: pulumi.Output<string>;
    /** The OpenSSH private key, a secret; it reaches the host only through cloud-init. */
    declare public readonly privateKey: pulumi.Output<string>;

    constructor(name: string, args: SshHostKeyArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            { ...args, publicKey: undefined, privateKey: undefined },
            pulumi.mergeOptions(opts, { additionalSecretOutputs: ["privateKey"] }),
            "coop",
            "SshHostKey",
        );
    }
}
