import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { judgePending, pendingOperations } from "../../components/pending";

const op = (type: string, resourceType: string, name: string) => ({
    type,
    resource: { urn: `urn:pulumi:local::coop::${resourceType}::${name}`, type: resourceType, custom: true },
});

describe("pending operations of an interrupted update", () => {
    it("drops the pending creates of steps the next up redoes, and keeps the rest for a person", () => {
        const ops = pendingOperations({
            deployment: {
                pending_operations: [
                    op("creating", "pulumi-nodejs:dynamic/coop:CoopRelease", "alpha/local-1"),
                    op("creating", "pulumi-nodejs:dynamic/coop:RemoteCommand", "local-1/up"),
                    op("creating", "pulumi-nodejs:dynamic/coop:RandomSecret", "alpha/secret/SECRET_KEY"),
                    op("creating", "digitalocean:index/droplet:Droplet", "prod-hosts-1"),
                    op("updating", "pulumi-nodejs:dynamic/coop:CoopRelease", "beta/local-1"),
                ],
            },
        });
        const v = judgePending(ops);
        assert.deepEqual(
            v.drop.map((o) => o.resource.urn.split("::").at(-1)),
            ["alpha/local-1", "local-1/up", "alpha/secret/SECRET_KEY"],
        );
        assert.deepEqual(
            v.keep.map((o) => `${o.type} ${o.resource.urn.split("::").at(-1)}`),
            ["creating prod-hosts-1", "updating beta/local-1"],
        );
    });

    it("reads a state without pending operations as none, and refuses a malformed one by its path", () => {
        assert.deepEqual(pendingOperations({ deployment: {} }), []);
        assert.throws(() => pendingOperations({ deployment: { pending_operations: [{ type: "creating" }] } }), /pending_operations\[0\] is not an operation/);
    });
});
