// The image check the program runs before it registers anything, against real registries: the
// open one of scripts/local-hosts.sh (127.0.0.1:5001) and the one that needs a login (htpasswd,
// 127.0.0.1:5002, the same images).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Credential, checkImage, checkImages } from "../../components/registryCheck";
import { behindLogin, localHostsUp, localImages, privateRegistry } from "../support";

describe("the image check, against real registries", () => {
    let image: string;
    let login: Credential;
    before(() => {
        localHostsUp();
        image = localImages()["demo:v1"];
        const p = privateRegistry();
        login = { server: p.server, username: p.username, password: p.password, passwordKey: "registryToken", path: "coop:registries[0]" };
    });

    it("finds an image of the open registry with no login", async () => {
        assert.deepEqual(await checkImage(image, undefined), { kind: "found" });
    });

    it("finds it behind the login with the right token, and is refused without one or with a wrong one", async () => {
        const privateImage = behindLogin(image);
        assert.deepEqual(await checkImage(privateImage, login), { kind: "found" });
        const anonymous = await checkImage(privateImage, undefined);
        assert.equal(anonymous.kind, "refused");
        assert.match(
            (anonymous as { message: string }).message,
            /^127\.0\.0\.1:5002 refused the pull anonymously \(coop:registries has no login for 127\.0\.0\.1:5002\): HTTP 401 UNAUTHORIZED: .*; add a login for 127\.0\.0\.1:5002 to coop:registries$/,
        );
        const wrong = await checkImage(privateImage, { ...login, password: "not-the-token" });
        assert.equal(wrong.kind, "refused");
        assert.match((wrong as { message: string }).message, /refused the pull as coop \(coop:registries\[0\]\): HTTP 401 .*; check the token in coop:registryToken$/);
    });

    it("says which image is not there, by path, and what it could not reach", async () => {
        const missing = image.replace(/@sha256:.*/, `@sha256:${"0".repeat(64)}`);
        const r = await checkImages(
            [
                { path: "coop:agent", image },
                { path: "coop:coops[0].image", image: missing },
                { path: "coop:coops[1].image", image: behindLogin(image) },
                { path: "coop:proxy.image", image: `127.0.0.1:5009/kamal-proxy@sha256:${"1".repeat(64)}` },
            ],
            [login],
        );
        assert.deepEqual(r.errors.length, 1, r.errors.join("\n"));
        assert.match(
            r.errors[0],
            new RegExp(`^coop:coops\\[0\\]\\.image: ${missing.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: 127\\.0\\.0\\.1:5001 has no such image \\(HTTP 404 MANIFEST_UNKNOWN`),
        );
        assert.deepEqual(r.unchecked, ["127.0.0.1:5009 could not be reached from here (ECONNREFUSED): coop:proxy.image not checked"]);
        assert.ok(!JSON.stringify(r).includes(login.password), "no message shows the token");
    });
});
