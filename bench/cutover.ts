// npm run bench:cutover — 20 cutovers back to back under a fixed-rate keep-alive load through
// the proxy, plus 10 five-second requests in flight during one cutover. Prints figures last.
import { localHostsUp, installTool } from "../test/support";
import { BenchCoop, buildLoadgen, get, images, median, printFigures, sleep, startLoad } from "./common";

const RATE = Number(process.env.BENCH_RATE ?? 2000);
const CUTOVERS = Number(process.env.BENCH_CUTOVERS ?? 20);

async function main(): Promise<void> {
    localHostsUp();
    const loadgen = buildLoadgen();
    const img = images();
    const coop = new BenchCoop(await installTool("coop-agent-bench"), "bench-cutover");
    await coop.reset();
    await coop.env(0);
    await coop.deploy(img["demo:v1"]);
    await coop.env(-1);
    await coop.deploy(img["demo:v2"]); // both images are on the host from here on

    const load = startLoad(loadgen, ["-url", "http://127.0.0.1:8080/version", "-host", coop.domain, "-rate", String(RATE), "-duration", "30m", "-connections", "64"]);
    await sleep(2000);
    const cutoverMs: number[] = [];
    let slowOk = 0;
    const SLOW = 10;
    for (let i = 1; i <= CUTOVERS; i++) {
        await coop.env(i);
        let slow: Promise<number[]> | undefined;
        if (i === Math.ceil(CUTOVERS / 2)) {
            slow = Promise.all(Array.from({ length: SLOW }, () => get("/slow?ms=5000", coop.domain)));
            await sleep(300); // they are in flight on the live slot before the cutover starts
        }
        const { wallMs } = await coop.deploy(img[i % 2 ? "demo:v1" : "demo:v2"]);
        cutoverMs.push(wallMs);
        if (slow) {
            slowOk = (await slow).filter((s) => s === 200).length;
        }
    }
    await sleep(2000);
    const r = await load.stop();
    await coop.remove();

    printFigures({
        rate_target_rps: RATE,
        achieved_rps: r.achieved_rps,
        requests: r.requests,
        ok_2xx: r.ok_2xx,
        non_2xx: r.non_2xx,
        socket_errors: r.socket_errors,
        p50_ms: r.p50_ms,
        p99_ms: r.p99_ms,
        max_ms: r.max_ms,
        cutovers: cutoverMs.length,
        cutover_wall_ms_median: median(cutoverMs),
        cutover_wall_ms_max: Math.max(...cutoverMs),
        inflight_5s_requests: SLOW,
        inflight_5s_completed_ok: slowOk,
        failed_requests: r.failed_requests + (SLOW - slowOk),
    });
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
