/**
 * The coop-policies pack (issue 6), started by the Pulumi engine:
 *
 *   pulumi preview --stack S --policy-pack policy --policy-pack-config policy/config/S.json
 *
 * The rules are pure functions in src/rules.ts; src/pack.ts wires them into policies.
 */
import { PolicyPack } from "@pulumi/policy";
import { PACK_NAME, policies } from "./src/pack";

new PolicyPack(PACK_NAME, { enforcementLevel: "mandatory", policies });
